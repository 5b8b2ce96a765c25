"""Syntax errors for people: the message is chosen from a table of example bad inputs (lark's
``match_examples`` idea): the example that fails in the same parser state as the user's input
names the problem."""

from __future__ import annotations

import functools

import lark
from lark import Token
from nasc.dsl.diagnostics import NasError, Sources
from nasc.dsl.lexing import grammar, innermost_unclosed, loc

# Example bad inputs for each message (lark's ``match_examples``): the first that fails in the
# same parser state as the user's input names the problem.
_EXAMPLES: dict[str, list[str]] = {
    "unclosed '{': a body needs a closing '}'": [
        "space s() {",
        "space s() { let a = 1",
        "block b(x) { for i in 0..2 { let a = 1 }",
    ],
    "expected an expression": [
        "space s() { let a = }",
        "let a =",
        "space s() { let a = 1 + }",
        "space s() { output }",
    ],
    "unclosed '(' in a call or parameter list": [
        "space s() { let a = f(1 }",
        "space s( {",
        "space s() { let a = f(1, }",
    ],
    "unclosed '[' in a list": ["space s() { let a = [1, 2 }", "let a = [1"],
    "a choice needs a label: '@\"name\"' after its candidates": [
        "space s() { let a = choose {1, 2} }",
        "space s() { let a = choose OPS (x) }",
        "space s() { let a = pick 2 of xs }",
        "space s() { repeat {1, 2} { } }",
    ],
    "'let' needs '=' and a value": ["space s() { let a }", "let a 3"],
    "only 'import', 'op', 'block', 'cell', 'space' and 'let' may appear at the top level": [
        "a = 1",
        "import nn\nx = 1",
        "for i in 0..3 { }",
        "output x",
        "1",
    ],
    "a statement must start with a keyword or a name; expressions alone are not statements": [
        "space s() { 1 }",
        "space s() { f(x) }",
        "space s() { (x) }",
    ],
    "a definition needs a name and a parameter list in '(...)'": [
        "space { }",
        "block b { }",
        "space s { }",
    ],
}


def syntax_error(
    e: lark.exceptions.UnexpectedInput, text: str, file: str, sources: Sources
) -> NasError:
    """The located error for lark's ``e`` on ``text``."""
    line, col = max(getattr(e, "line", 1) or 1, 1), max(getattr(e, "column", 1) or 1, 1)
    at_end = isinstance(e, lark.exceptions.UnexpectedEOF) or (
        isinstance(e, lark.exceptions.UnexpectedToken) and e.token.type == "$END"
    )
    if at_end:
        lines = text.splitlines() or [""]
        line, col = len(lines), len(lines[-1]) + 1
        opened = innermost_unclosed(text)
        if opened is not None:
            ch, oline, ocol = opened
            return sources.error(
                f"unclosed {ch!r}: the file ends before its closing "
                f"{ {'{': '}', '(': ')', '[': ']'}[ch]!r}",
                loc(file, line, col),
                [sources.note(loc(file, oline, ocol), "opened here")],
            )
    message = _table_message(e)
    if message is None:
        message = _generic_message(e)
    elif isinstance(e, lark.exceptions.UnexpectedToken) and e.token.type != "$END":
        message = f"{message} (found {_describe(e.token)})"
    return sources.error(message, loc(file, line, col))


@functools.lru_cache(maxsize=1)
def _message_table() -> tuple[tuple[frozenset[str], str, str], ...]:
    """(expected terminals, offending terminal, message) for every example bad input."""
    rows = []
    for message, examples in _EXAMPLES.items():
        for example in examples:
            try:
                grammar().parse(example, start="start")
            except lark.exceptions.UnexpectedToken as err:
                rows.append((frozenset(err.expected), err.token.type, message))
            except lark.exceptions.UnexpectedInput:
                pass
    return tuple(rows)


def _table_message(e: lark.exceptions.UnexpectedInput) -> str | None:
    """The message of the example that failed the same way: same expected terminals and the
    same offending token (then the same expected terminals alone), wherever it happened."""
    if not isinstance(e, lark.exceptions.UnexpectedToken):
        return None
    expected = frozenset(e.expected)
    rows = _message_table()
    for exp, tok, message in rows:
        if exp == expected and tok == e.token.type:
            return message
    for exp, _, message in rows:
        if exp == expected:
            return message
    return None


def _generic_message(e: lark.exceptions.UnexpectedInput) -> str:
    if isinstance(e, lark.exceptions.UnexpectedCharacters):
        ch = e.char if hasattr(e, "char") else "?"
        return f"unexpected character {ch!r}"
    if isinstance(e, lark.exceptions.UnexpectedToken):
        if set(e.expected) == {"AT"}:
            found = _describe(e.token)
            return f"a choice needs a label: '@\"name\"' after its candidates (found {found})"
        expected = sorted(_pretty_terminal(t) for t in e.expected)[:8]
        tail = f"; expected {', '.join(expected)}" if expected else ""
        return f"unexpected {_describe(e.token)}{tail}"
    return "unexpected end of file"


def _describe(tok: Token) -> str:
    if tok.type == "$END":
        return "end of file"
    return f"{str(tok)!r}"


def _pretty_terminal(name: str) -> str:
    try:
        pattern = grammar().get_terminal(name).pattern
    except KeyError:
        return name.lower()
    if pattern.type == "str":
        return repr(pattern.value)
    return name.lower()


__all__ = ["syntax_error"]
