"""The canonical formatter: AST back to ``.nas`` text (``nasc fmt``, ``Space.to_nas``).

Formatting is canonical: four-space indents, one statement per line, minimal parentheses, lines
of at most ``width`` columns (100 by default) wherever a break point exists (see
:mod:`nasc.dsl.layout`), each ``require`` of an op on a line of its own, comments kept in place
and blank lines kept where the source had them (one for a run of several). A body of one simple
statement written on one line stays on one line when it fits. ``parse(format(parse(text)))``
equals ``parse(text)`` up to locations, and formatting formatted text changes nothing.

>>> from nasc.dsl.parser import parse_module
>>> print(format_module(parse_module("space s(C: int = 8) { input x: image(3)\\n\\n output x }")))
space s(C: int = 8) {
    input x: image(3)
<BLANKLINE>
    output x
}
<BLANKLINE>
"""

from __future__ import annotations

import bisect
from typing import Any

from nasc.dsl import ast
from nasc.dsl.layout import Layout, Lines, Piece, excess, prefixed, suffixed
from nasc.dsl.printing import args_flat, expr_flat, literal

#: The default line width of ``nasc fmt``.
WIDTH = 100

__all__ = ["WIDTH", "expr", "format_items", "format_module", "literal"]


def expr(e: ast.Expr) -> str:
    """An expression as one line of canonical text."""
    return expr_flat(e)


def _type_expr(t: ast.TypeExpr) -> str:
    return f"{t.name}({args_flat(t.args, t.kwargs)})"


def _body_of(s: ast.Stmt) -> tuple[ast.Stmt, ...] | None:
    if isinstance(s, ast.BlockDef | ast.SpaceDef | ast.For | ast.Repeat):
        return s.body
    if isinstance(s, ast.If):
        return s.branches[0][1]
    return None


class _Printer:
    def __init__(
        self, comments: tuple[ast.Comment, ...], blank_lines: tuple[int, ...] | None, width: int
    ) -> None:
        self.comments = sorted(comments, key=lambda c: (c.line, c.col))
        self.blank = sorted(blank_lines) if blank_lines is not None else None
        self.width = width
        self.lay = Layout(width)
        self.lines: list[str] = []
        self.last = 0  # the last source line printed
        self.fresh = True  # at the start of the file or of a body: no blank line here

    # ---- comments and blank lines --------------------------------------------------------------
    def _emit(self, line: str) -> None:
        self.lines.append(line)
        self.fresh = False

    def _gap(self, line: int) -> None:
        """A blank line before source line ``line`` when the source has one since the last."""
        if self.blank is None or self.fresh:
            return
        i = bisect.bisect_right(self.blank, self.last)
        if i < len(self.blank) and self.blank[i] < line:
            self._emit("")

    def _comments_before(self, line: int, indent: str) -> None:
        while self.comments and self.comments[0].line < line:
            c = self.comments.pop(0)
            self._gap(c.line)
            self._emit(indent + c.text.rstrip())
            self.last = max(self.last, c.line)

    def _take(self, first: int, last: int) -> list[ast.Comment]:
        out = []
        while self.comments and self.comments[0].line <= last:
            c = self.comments.pop(0)
            if c.line >= first:
                out.append(c)
        return out

    def _place(self, indent: str, lines: Lines, s: ast.Stmt, end: int) -> None:
        """``lines`` of statement ``s``, with the comments on its source lines up to ``end``:
        one on its first line ends the first line, one on line ``end`` ends the last, others
        (and any that would overflow) go on lines of their own before it."""
        out = [indent + lines[0], *lines[1:]]
        before = []
        for c in self._take(s.loc.line, end):
            text = c.text.rstrip()
            at = 0 if c.line == s.loc.line else len(out) - 1 if c.line == end else None
            if at is not None and len(out[at]) + 2 + len(text) <= self.width:
                out[at] += "  " + text
            else:
                before.append(indent + text)
            self.last = max(self.last, c.line)
        for line in before + out:
            self._emit(line)

    # ---- statements ----------------------------------------------------------------------------
    def stmt(self, s: ast.Stmt, indent: str, defaults: dict[str, Any] | None = None) -> None:
        self._comments_before(s.loc.line, indent)
        self._gap(s.loc.line)
        if isinstance(s, ast.OpDecl):
            self._place(indent, self._op_decl(s, len(indent)), s, s.loc.end_line or s.loc.line)
        elif _body_of(s) is None:
            piece = self._head(s, defaults)
            end = s.loc.end_line or s.loc.line
            self._place(indent, piece.lay(len(indent), 0, len(indent)), s, end)
        else:
            self._block(s, indent, defaults)
        self.last = max(self.last, s.loc.end_line or s.loc.line)

    def _block(self, s: ast.Stmt, indent: str, defaults: dict[str, Any] | None) -> None:
        ind = len(indent)
        branches = s.branches if isinstance(s, ast.If) else ((None, _body_of(s)),)
        head = self._head(s, defaults)
        one = self._one_line(s, head)
        if one is not None and ind + len(one) <= self.width:
            self._place(indent, [one], s, s.loc.line)
            return
        for k, (test, body) in enumerate(branches):
            if k > 0:
                head = prefixed("} else if ", self.lay.piece(test))
            lines = suffixed(head, " {").lay(ind, 0, ind)
            if k == 0:
                self._place(indent, lines, s, s.loc.line)
            else:
                self._emit(indent + lines[0])
                for line in lines[1:]:
                    self._emit(line)
            self.fresh = True
            last = k == len(branches) - 1 and getattr(s, "orelse", None) is None
            self._body(body, indent + "    ", s.loc.end_line if last else None)
        if isinstance(s, ast.If) and s.orelse is not None:
            self._emit(indent + "} else {")
            self.fresh = True
            self._body(s.orelse, indent + "    ", s.loc.end_line)
        self._emit(indent + "}")

    def _one_line(self, s: ast.Stmt, head: Piece) -> str | None:
        """``head { stmt }`` when the source wrote it so: one simple statement, one line."""
        body = _body_of(s)
        if (
            self.blank is None
            or body is None
            or len(body) != 1
            or _body_of(body[0]) is not None
            or isinstance(body[0], ast.OpDecl)
            or s.loc.end_line != s.loc.line
            or (isinstance(s, ast.If) and (len(s.branches) > 1 or s.orelse is not None))
        ):
            return None
        return f"{head.flat} {{ {self._head(body[0], None).flat} }}"

    def _body(self, body: tuple[ast.Stmt, ...], indent: str, end_line: int | None) -> None:
        for st in body:
            self.stmt(st, indent)
        if end_line is not None:
            self._comments_before(end_line, indent)

    # ---- heads -------------------------------------------------------------------------------
    def _list(self, pieces: list[Piece]) -> Piece:
        """Comma-separated pieces, continued under the first when broken."""
        return Piece(
            ", ".join(p.flat for p in pieces),
            lambda c, t, i: self.lay.fill(pieces, c, c, t, i),
        )

    def _bracket(self, open_: str, pieces: list[Piece], close: str) -> Piece:
        flat = open_ + ", ".join(p.flat for p in pieces) + close
        return Piece(flat, lambda c, t, i: self.lay.bracket(open_, pieces, close, c, t, i))

    def _params(self, params: tuple[ast.Param, ...], defaults: dict[str, Any] | None) -> Piece:
        pieces = []
        for p in params:
            s = p.name + (f": {p.ann}" if p.ann is not None else "")
            if defaults is not None and p.name in defaults:
                pieces.append(Piece(f"{s} = {literal(defaults[p.name])}"))
            elif p.default is not None:
                pieces.append(prefixed(f"{s} = ", self.lay.piece(p.default)))
            else:
                pieces.append(Piece(s))
        return self._bracket("(", pieces, ")")

    def _type_expr(self, t: ast.TypeExpr) -> Piece:
        body = self._bracket("(", self.lay.args(t.args, t.kwargs), ")")
        return prefixed(t.name, body)

    def _exprs(self, values: tuple[ast.Expr, ...]) -> Piece:
        return self._list([self.lay.piece(v) for v in values])

    def _op_decl(self, s: ast.OpDecl, ind: int) -> Lines:
        head = prefixed(f"op {s.name}", self._params(s.params, None))
        out = prefixed("-> ", self._type_expr(s.out))
        lines = head.lay(ind, 0, ind)
        if excess(lines, ind, 1 + len(out.flat), self.width) == 0:
            lines[-1] += " " + out.flat
        else:  # "-> type" on a line of its own
            more = out.lay(ind + 4, 0, ind + 4)
            lines += [" " * (ind + 4) + more[0], *more[1:]]
        for r in s.requires:
            parts = [self.lay.piece(r.test)]
            if r.message is not None:
                parts.append(Piece(literal(r.message, template=False)))
            req = prefixed("require ", self._list(parts)).lay(ind + 4, 0, ind + 4)
            lines += [" " * (ind + 4) + req[0], *req[1:]]
        return lines

    def _head(self, s: ast.Stmt, defaults: dict[str, Any] | None) -> Piece:
        if isinstance(s, ast.Import):
            target = literal(s.module, template=False) if s.is_path else s.module
            return Piece(f"import {target}" + (f" as {s.alias}" if s.alias else ""))
        if isinstance(s, ast.BlockDef):
            return prefixed(f"{s.kind} {s.name}", self._params(s.params, None))
        if isinstance(s, ast.SpaceDef):
            return prefixed(f"space {s.name}", self._params(s.params, defaults))
        if isinstance(s, ast.Let):
            return prefixed(f"let {', '.join(s.targets)} = ", self._exprs(s.values))
        if isinstance(s, ast.Assign):
            return prefixed(f"{', '.join(s.targets)} = ", self._exprs(s.values))
        if isinstance(s, ast.AugAssign):
            return prefixed(f"{s.target} {s.op}= ", self.lay.piece(s.value))
        if isinstance(s, ast.For):
            return prefixed(f"for {', '.join(s.targets)} in ", self.lay.piece(s.iter))
        if isinstance(s, ast.If):
            return prefixed("if ", self.lay.piece(s.branches[0][0]))
        if isinstance(s, ast.Return):
            return prefixed("return ", self._exprs(s.values))
        if isinstance(s, ast.InputStmt):
            return prefixed(f"input {s.name}: ", self._type_expr(s.type))
        if isinstance(s, ast.OutputStmt):
            return prefixed("output " + (f"{s.name} = " if s.name else ""), self.lay.piece(s.value))
        if isinstance(s, ast.Repeat):
            depths = self._bracket("{", [self.lay.piece(d) for d in s.depths], "}")
            label = Piece(f"@{s.label.text}" + (f" as {s.var}" if s.var else ""))
            parts = [prefixed("repeat ", depths), label]
            return Piece(
                f"{parts[0].flat} {label.flat}",
                lambda c, t, i: self.lay.fill(parts, c, c, t, i, sep=""),
            )
        if isinstance(s, ast.Assert):
            parts = [s.test] + ([s.message] if s.message is not None else [])
            return prefixed("assert ", self._exprs(tuple(parts)))
        raise TypeError(f"cannot format {type(s).__name__}")


def format_module(
    module: ast.Module,
    *,
    space_defaults: dict[str, dict[str, Any]] | None = None,
    comments: bool = True,
    width: int = WIDTH,
) -> str:
    """The whole module; ``space_defaults`` replaces the defaults of the named spaces' params.

    Blank lines follow the source where the module records them (a parsed file); a module built
    otherwise gets one between items of different kinds and around every definition with a body.
    """
    p = _Printer(module.comments if comments else (), module.blank_lines, width)
    prev: ast.Stmt | None = None
    for item in module.items:
        if (
            module.blank_lines is None
            and prev is not None
            and (
                _body_of(item) is not None
                or _body_of(prev) is not None
                or type(item) is not type(prev)
            )
        ):
            p._emit("")
        defaults = (space_defaults or {}).get(getattr(item, "name", ""))
        p.stmt(item, "", defaults if isinstance(item, ast.SpaceDef) else None)
        prev = item
    p._comments_before(1 << 60, "")
    return "\n".join(p.lines).strip("\n") + "\n"


def format_items(items: list[ast.Stmt], *, width: int = WIDTH) -> str:
    return format_module(ast.Module(file="<fmt>", items=tuple(items)), comments=False, width=width)
