"""Source text before parsing: decoding, the grammar, and a coarse scan of brackets, comments and
strings (bounds on nesting, unterminated strings, the comments the formatter keeps)."""

from __future__ import annotations

import functools
from importlib import resources

import lark
from nasc.dsl import ast
from nasc.dsl.diagnostics import NasError, Sources
from nasc.ir.location import SourceLoc

#: Bounds on what a file may ask of the parser.
MAX_FILE_BYTES = 1 << 20
MAX_BRACKET_DEPTH = 64
MAX_EXPR_DEPTH = 200
MAX_INT = (1 << 63) - 1


@functools.lru_cache(maxsize=1)
def grammar() -> lark.Lark:
    """The LALR parser of ``nas.lark`` (start symbols ``start`` and ``expr``)."""
    text = resources.files("nasc.dsl").joinpath("nas.lark").read_text()
    return lark.Lark(
        text,
        parser="lalr",
        strict=True,
        propagate_positions=True,
        maybe_placeholders=True,
        start=["start", "expr"],
    )


def decode(text: str | bytes, file: str) -> str:
    if isinstance(text, bytes):
        if len(text) > MAX_FILE_BYTES:
            raise NasError(
                f"file is {len(text)} bytes; the limit is {MAX_FILE_BYTES}", loc(file, 1, 1)
            )
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as e:
            line = text.count(b"\n", 0, e.start) + 1
            start = text.rfind(b"\n", 0, e.start) + 1
            end = text.find(b"\n", e.start)
            shown = text[start : end if end >= 0 else len(text)].decode("utf-8", "replace")
            where = SourceLoc(
                file=file, line=line, col=len(text[start : e.start].decode("utf-8", "replace")) + 1
            )
            raise NasError(f"not valid UTF-8 (byte 0x{text[e.start]:02x})", where, shown) from None
    if len(text) > MAX_FILE_BYTES:
        raise NasError(
            f"file is {len(text)} characters; the limit is {MAX_FILE_BYTES}", loc(file, 1, 1)
        )
    text = text.removeprefix("\ufeff")  # a UTF-8 byte order mark
    bad = text.find("\x00")
    if bad >= 0:
        line = text.count("\n", 0, bad) + 1
        start = text.rfind("\n", 0, bad) + 1
        end = text.find("\n", bad)
        shown = text[start : end if end >= 0 else len(text)].replace("\x00", " ")
        raise NasError(
            "NUL byte in source (is this a binary file?)", loc(file, line, bad - start + 1), shown
        )
    return text


def loc(file: str, line: int, col: int, end_line: int | None = None, end_col: int | None = None):
    return SourceLoc(file=file, line=line, col=col, end_line=end_line, end_col=end_col)


def scan(text: str):
    """Brackets, comments and strings of ``text``, as events ``(kind, line, col, detail)``:
    ``open``/``close`` (the bracket), ``comment`` (its text), ``unterminated`` (a string left
    open at a line end or the end of the file). Lexing here is only this coarse."""
    line, col, in_str, in_comment, prev = 1, 0, False, False, ""
    start = str_col = comment_col = 0
    for i, ch in enumerate(text):
        col += 1
        if ch == "\n":
            if in_str:
                yield ("unterminated", line, str_col, col)
            if in_comment:
                yield ("comment", line, comment_col, text[start:i])
            line, col, in_str, in_comment = line + 1, 0, False, False
        elif in_comment:
            pass
        elif in_str:
            if ch == '"' and prev != "\\":
                in_str = False
        elif ch == "#":
            in_comment, start, comment_col = True, i, col
        elif ch == '"':
            in_str, str_col = True, col
        elif ch in "([{":
            yield ("open", line, col, ch)
        elif ch in ")]}":
            yield ("close", line, col, ch)
        prev = "" if prev == "\\" else ch
    if in_comment:
        yield ("comment", line, comment_col, text[start:])
    if in_str:
        yield ("unterminated", line, str_col, None)


def check_brackets(text: str, file: str, sources: Sources) -> list[ast.Comment]:
    """Refuse absurd nesting and open strings before the parser builds a tree; collect the
    comments (the formatter keeps them)."""
    comments: list[ast.Comment] = []
    depth = 0
    for kind, line, col, detail in scan(text):
        if kind == "comment":
            comments.append(ast.Comment(line=line, col=col, text=detail))
        elif kind == "unterminated":
            raise sources.error(
                "unterminated string: a string ends on the line it starts",
                loc(file, line, col, line, detail),
            )
        elif kind == "open":
            depth += 1
            if depth > MAX_BRACKET_DEPTH:
                raise sources.error(
                    f"brackets nested deeper than {MAX_BRACKET_DEPTH} levels", loc(file, line, col)
                )
        else:
            depth = max(0, depth - 1)
    return comments


def innermost_unclosed(text: str) -> tuple[str, int, int] | None:
    """The innermost bracket still open at the end of ``text`` (strings and comments aside)."""
    stack: list[tuple[str, int, int]] = []
    for kind, line, col, detail in scan(text):
        if kind == "open":
            stack.append((detail, line, col))
        elif kind == "close" and stack:
            stack.pop()
    return stack[-1] if stack else None


__all__ = [
    "MAX_BRACKET_DEPTH",
    "MAX_EXPR_DEPTH",
    "MAX_FILE_BYTES",
    "MAX_INT",
    "check_brackets",
    "decode",
    "grammar",
    "innermost_unclosed",
    "loc",
    "scan",
]
