"""Text to AST. The grammar is ``nas.lark`` beside this file; lark's errors never leave here.

Reading a file goes through :mod:`~nasc.dsl.lexing` (decoding, bracket and comment scan),
lark's LALR parser, :mod:`~nasc.dsl.syntax_errors` (messages for people) and
:mod:`~nasc.dsl.transform` (tree to AST).

>>> m = parse_module('space s(C: int = 16) { input x: image(3) output x }', "s.nas")
>>> m.items[0].name
's'
"""

from __future__ import annotations

from typing import Any

import attrs
import lark
from nasc.dsl import ast
from nasc.dsl.diagnostics import NasError, Sources
from nasc.dsl.lexing import (
    MAX_BRACKET_DEPTH,
    MAX_EXPR_DEPTH,
    MAX_FILE_BYTES,
    MAX_INT,
    check_brackets,
    decode,
    grammar,
)
from nasc.dsl.syntax_errors import syntax_error
from nasc.dsl.transform import ToAst
from nasc.ir.location import SourceLoc


def parse_module(text: str | bytes, file: str = "<string>") -> ast.Module:
    """Parse a whole file. Raises :class:`NasError` with a location on any problem."""
    text = decode(text, file)
    sources = Sources()
    sources.add(file, text)
    comments = check_brackets(text, file, sources)
    try:
        tree = grammar().parse(text, start="start")
    except lark.exceptions.UnexpectedInput as e:
        raise syntax_error(e, text, file, sources) from None
    module = _transform(ToAst(file, sources, parse_expr), tree)
    _check_depth(module, sources)
    blank = tuple(i for i, line in enumerate(text.split("\n"), 1) if not line.strip())
    return attrs.evolve(module, comments=tuple(comments), blank_lines=blank)


def parse_expr(text: str, file: str = "<expr>", base: SourceLoc | None = None) -> ast.Expr:
    """Parse one expression (used for ``-D name=value`` and string interpolation)."""
    sources = Sources()
    sources.add(file, text)
    check_brackets(text, file, sources)
    try:
        tree = grammar().parse(text, start="expr")
    except lark.exceptions.UnexpectedInput as e:
        err = syntax_error(e, text, file, sources)
        if base is not None:
            raise NasError(err.message, base) from None
        raise err from None
    expr = _transform(ToAst(file, sources, parse_expr, base=base), tree)
    _check_depth(expr, sources)
    return expr


def _transform(t: ToAst, tree: lark.Tree) -> Any:
    try:
        return t.transform(tree)
    except lark.exceptions.VisitError as e:
        if isinstance(e.orig_exc, NasError):
            raise e.orig_exc from None
        raise


def _check_depth(node: Any, sources: Sources) -> None:
    stack = [(node, 0)]
    while stack:
        x, d = stack.pop()
        if d > MAX_EXPR_DEPTH:
            raise sources.error(
                f"expression nested deeper than {MAX_EXPR_DEPTH} levels; split it with 'let'",
                getattr(x, "loc", None),
            )
        for child in _children(x):
            stack.append((child, d + 1 if isinstance(x, ast.Expr) else d))


def _children(x: Any) -> list[Any]:
    if not attrs.has(type(x)) or isinstance(x, ast.Comment | SourceLoc):
        return []
    out = []
    for f in attrs.fields(type(x)):
        v = getattr(x, f.name)
        items = v if isinstance(v, tuple) else (v,)
        for item in items:
            for y in item if isinstance(item, tuple) else (item,):
                if attrs.has(type(y)) and not isinstance(y, SourceLoc):
                    out.append(y)
    return out


__all__ = [
    "MAX_BRACKET_DEPTH",
    "MAX_EXPR_DEPTH",
    "MAX_FILE_BYTES",
    "MAX_INT",
    "decode",
    "parse_expr",
    "parse_module",
]
