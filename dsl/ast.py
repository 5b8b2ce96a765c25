"""The abstract syntax of ``.nas`` files: frozen records, each with its source location.

The parser (:mod:`nasc.dsl.parser`) builds them from the lark tree; the elaborator
(:mod:`nasc.dsl.elaborate`) runs them; the formatter (:mod:`nasc.dsl.format`) prints them back.
"""

from __future__ import annotations

from typing import Any

import attrs
from nasc.ir.location import SourceLoc

frozen = attrs.frozen(kw_only=True)


@frozen
class Expr:
    loc: SourceLoc


# ---- expressions ---------------------------------------------------------------------------
@frozen
class Num(Expr):
    value: int | float
    text: str


@frozen
class Str(Expr):
    """A string; ``{expr}`` inside is interpolated (labels are templated this way)."""

    parts: tuple[str | Expr, ...]
    text: str


@frozen
class Bool(Expr):
    value: bool


@frozen
class Name(Expr):
    id: str


@frozen
class ListExpr(Expr):
    items: tuple[Expr, ...]


@frozen
class Comprehension(Expr):
    elt: Expr
    targets: tuple[str, ...]
    iter: Expr
    cond: Expr | None


@frozen
class CondExpr(Expr):
    test: Expr
    then: Expr
    orelse: Expr


@frozen
class BinOp(Expr):
    """Arithmetic, comparison, ``and``/``or`` and ``..`` ranges."""

    op: str
    left: Expr
    right: Expr


@frozen
class Unary(Expr):
    op: str  # "-" or "not"
    operand: Expr


@frozen
class Call(Expr):
    func: Expr
    args: tuple[Expr, ...]
    kwargs: tuple[tuple[str, Expr], ...]


@frozen
class Index(Expr):
    obj: Expr
    index: Expr


@frozen
class Slice(Expr):
    obj: Expr
    lo: Expr | None
    hi: Expr | None


@frozen
class Bind(Expr):
    """``f[k=3, e=6]``: ``f`` with some keyword arguments fixed (a candidate of a choice)."""

    obj: Expr
    kwargs: tuple[tuple[str, Expr], ...]


@frozen
class Attr(Expr):
    obj: Expr
    name: str


@frozen
class ChooseValue(Expr):
    """``choose {16, 24, 32} @"label"``."""

    values: tuple[Expr, ...]
    label: Str


@frozen
class ChooseOp(Expr):
    """``choose CANDIDATES @"label" (args)``; ``optional`` has one candidate and a skip."""

    candidates: Expr
    label: Str
    args: tuple[Expr, ...]
    kwargs: tuple[tuple[str, Expr], ...]
    optional: bool = False


@frozen
class Pick(Expr):
    """``pick K of ITEMS @"label"``; ``k`` is an expression, a range, or ``None`` for ``some``."""

    k: Expr | None
    items: Expr
    label: Str


# ---- declarations and statements -----------------------------------------------------------
@frozen
class TypeAnn:
    """A parameter's type: ``int``, ``list[int]``, ... or an enumeration of literals,
    ``"relu" | "relu6"`` (then ``name`` is ``str`` or ``int``, the kind of its ``values``)."""

    name: str
    arg: TypeAnn | None = None
    values: tuple[str | int, ...] = ()

    def __str__(self) -> str:
        if self.values:
            return " | ".join(enum_literal(v) for v in self.values)
        return self.name if self.arg is None else f"{self.name}[{self.arg}]"


def enum_literal(v: str | int) -> str:
    """A member of an enumerated type as source text (a plain string, or an integer)."""
    if isinstance(v, int):
        return str(v)
    body = v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return '"' + body + '"'


@frozen
class Param:
    loc: SourceLoc
    name: str
    ann: TypeAnn | None
    default: Expr | None


@frozen
class TypeExpr:
    loc: SourceLoc
    name: str
    args: tuple[Expr, ...]
    kwargs: tuple[tuple[str, Expr], ...]


@frozen
class Stmt:
    loc: SourceLoc


@frozen
class Let(Stmt):
    targets: tuple[str, ...]
    values: tuple[Expr, ...]


@frozen
class Assign(Stmt):
    targets: tuple[str, ...]
    values: tuple[Expr, ...]


@frozen
class AugAssign(Stmt):
    target: str
    op: str
    value: Expr


@frozen
class For(Stmt):
    targets: tuple[str, ...]
    iter: Expr
    body: tuple[Stmt, ...]


@frozen
class If(Stmt):
    branches: tuple[tuple[Expr, tuple[Stmt, ...]], ...]
    orelse: tuple[Stmt, ...] | None


@frozen
class Return(Stmt):
    values: tuple[Expr, ...]


@frozen
class InputStmt(Stmt):
    name: str
    type: TypeExpr


@frozen
class OutputStmt(Stmt):
    name: str | None
    value: Expr


@frozen
class Repeat(Stmt):
    depths: tuple[Expr, ...]
    label: Str
    var: str | None
    body: tuple[Stmt, ...]


@frozen
class Assert(Stmt):
    test: Expr
    message: Expr | None


@frozen
class Import(Stmt):
    module: str
    is_path: bool
    alias: str | None


@frozen
class Requirement:
    test: Expr
    message: str | None


@frozen
class OpDecl(Stmt):
    name: str
    params: tuple[Param, ...]
    out: TypeExpr
    requires: tuple[Requirement, ...]


@frozen
class BlockDef(Stmt):
    kind: str  # "block" or "cell"
    name: str
    params: tuple[Param, ...]
    body: tuple[Stmt, ...]


@frozen
class SpaceDef(Stmt):
    name: str
    params: tuple[Param, ...]
    body: tuple[Stmt, ...]


@frozen
class Comment:
    line: int
    col: int
    text: str


@frozen
class Module:
    """A parsed file. ``comments`` and ``blank_lines`` (the numbers of the empty lines; ``None``
    for a module not read from text) let the formatter keep the file's layout."""

    file: str
    items: tuple[Stmt, ...]
    comments: tuple[Comment, ...] = ()
    blank_lines: tuple[int, ...] | None = None


def walk_exprs(e: Any):
    """Every expression inside ``e`` (depth first, ``e`` included)."""
    stack = [e]
    while stack:
        x = stack.pop()
        if isinstance(x, Expr):
            yield x
        if attrs.has(type(x)):
            for f in attrs.fields(type(x)):
                v = getattr(x, f.name)
                if isinstance(v, tuple):
                    for item in v:
                        stack.extend(item if isinstance(item, tuple) else (item,))
                elif isinstance(v, Expr):
                    stack.append(v)
