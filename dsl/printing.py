"""Expressions as one line of canonical ``.nas`` text, with minimal parentheses.

The formatter (:mod:`nasc.dsl.format`) breaks long lines with :mod:`nasc.dsl.layout`; both print
every piece through the functions here, so a broken line reads exactly like the flat one.

>>> from nasc.dsl.parser import parse_expr
>>> expr_flat(parse_expr("(a + (b * c)) - (d - e)"))
'a + b * c - (d - e)'
"""

from __future__ import annotations

from typing import Any

from nasc.dsl import ast

PREC = {
    "cond": 1,
    "or": 2,
    "and": 3,
    "not": 4,
    "compare": 5,
    "..": 6,
    "+": 7,
    "-": 7,
    "*": 8,
    "/": 8,
    "//": 8,
    "%": 8,
    "neg": 9,
    "postfix": 10,
    "atom": 11,
}
COMPARE = frozenset({"==", "!=", "<", "<=", ">", ">=", "in", "not in"})


def literal(v: Any, *, template: bool = True) -> str:
    """A Python value (int, float, bool, str, list) as ``.nas`` source.

    Strings in expressions are templates, so their braces are doubled; ``template=False`` is for
    the plain strings of import paths and ``require`` messages.
    """
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        text = repr(v)
        return text if ("." in text or "e" in text) else text + ".0"
    if isinstance(v, str):
        body = v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        if template:
            body = body.replace("{", "{{").replace("}", "}}")
        return '"' + body + '"'
    if isinstance(v, list | tuple):
        return "[" + ", ".join(literal(x) for x in v) + "]"
    raise TypeError(f"no .nas literal for {type(v).__name__}")


def prec(e: ast.Expr) -> int:
    """How tightly ``e`` binds (a higher number binds tighter)."""
    if isinstance(e, ast.CondExpr):
        return PREC["cond"]
    if isinstance(e, ast.BinOp):
        return PREC["compare"] if e.op in COMPARE else PREC[e.op]
    if isinstance(e, ast.Unary):
        return PREC["not"] if e.op == "not" else PREC["neg"]
    if isinstance(e, ast.Call | ast.Index | ast.Slice | ast.Bind | ast.Attr):
        return PREC["postfix"]
    return PREC["atom"]


def wrap(e: ast.Expr, min_prec: int) -> str:
    """``e``, in parentheses when it binds less tightly than ``min_prec``."""
    text = expr_flat(e)
    return f"({text})" if prec(e) < min_prec else text


def args_flat(args: tuple[ast.Expr, ...], kwargs: tuple[tuple[str, ast.Expr], ...]) -> str:
    return ", ".join([expr_flat(a) for a in args] + [f"{k}={expr_flat(v)}" for k, v in kwargs])


def pick_count(e: ast.Pick) -> str:
    """The ``K`` of ``pick K of ...``."""
    if e.k is None:
        return "some"
    if isinstance(e.k, ast.BinOp) and e.k.op == "..":
        return f"{wrap(e.k.left, 10)}..{wrap(e.k.right, 10)}"
    return wrap(e.k, 10)


def expr_flat(e: ast.Expr) -> str:
    """An expression as one line of canonical text."""
    if isinstance(e, ast.Num | ast.Str):
        return e.text
    if isinstance(e, ast.Bool):
        return "true" if e.value else "false"
    if isinstance(e, ast.Name):
        return e.id
    if isinstance(e, ast.ListExpr):
        return "[" + ", ".join(expr_flat(x) for x in e.items) + "]"
    if isinstance(e, ast.Comprehension):
        tail = f" if {expr_flat(e.cond)}" if e.cond is not None else ""
        return f"[{expr_flat(e.elt)} for {', '.join(e.targets)} in {expr_flat(e.iter)}{tail}]"
    if isinstance(e, ast.CondExpr):
        return f"{wrap(e.test, 2)} ? {expr_flat(e.then)} : {expr_flat(e.orelse)}"
    if isinstance(e, ast.BinOp):
        p = prec(e)
        if e.op == "..":
            return f"{wrap(e.left, p + 1)}..{wrap(e.right, p + 1)}"
        if e.op in COMPARE:
            return f"{wrap(e.left, p + 1)} {e.op} {wrap(e.right, p + 1)}"
        return f"{wrap(e.left, p)} {e.op} {wrap(e.right, p + 1)}"
    if isinstance(e, ast.Unary):
        if e.op == "not":
            return f"not {wrap(e.operand, PREC['not'])}"
        return f"-{wrap(e.operand, PREC['neg'])}"
    if isinstance(e, ast.Call):
        return f"{wrap(e.func, 10)}({args_flat(e.args, e.kwargs)})"
    if isinstance(e, ast.Index):
        return f"{wrap(e.obj, 10)}[{expr_flat(e.index)}]"
    if isinstance(e, ast.Slice):
        lo = expr_flat(e.lo) if e.lo is not None else ""
        hi = expr_flat(e.hi) if e.hi is not None else ""
        return f"{wrap(e.obj, 10)}[{lo}:{hi}]"
    if isinstance(e, ast.Bind):
        return f"{wrap(e.obj, 10)}[{args_flat((), e.kwargs)}]"
    if isinstance(e, ast.Attr):
        return f"{wrap(e.obj, 10)}.{e.name}"
    if isinstance(e, ast.ChooseValue):
        return f"choose {{{', '.join(expr_flat(v) for v in e.values)}}} @{e.label.text}"
    if isinstance(e, ast.ChooseOp):
        kw = "optional" if e.optional else "choose"
        return f"{kw} {wrap(e.candidates, 10)} @{e.label.text} ({args_flat(e.args, e.kwargs)})"
    if isinstance(e, ast.Pick):
        return f"pick {pick_count(e)} of {wrap(e.items, 10)} @{e.label.text}"
    raise TypeError(f"cannot format {type(e).__name__}")


__all__ = ["COMPARE", "PREC", "args_flat", "expr_flat", "literal", "pick_count", "prec", "wrap"]
