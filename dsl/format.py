"""The canonical formatter: AST back to ``.nas`` text (``nasc fmt``, ``Space.to_nas``).

Formatting is canonical: four-space indents, one statement per line, minimal parentheses, and
comments kept in place. ``parse(format(parse(text)))`` equals ``parse(text)`` up to locations.
"""

from __future__ import annotations

from typing import Any

from nasc.dsl import ast

_PREC = {
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
_COMPARE = {"==", "!=", "<", "<=", ">", ">=", "in", "not in"}


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


def _prec(e: ast.Expr) -> int:
    if isinstance(e, ast.CondExpr):
        return _PREC["cond"]
    if isinstance(e, ast.BinOp):
        return _PREC["compare"] if e.op in _COMPARE else _PREC[e.op]
    if isinstance(e, ast.Unary):
        return _PREC["not"] if e.op == "not" else _PREC["neg"]
    if isinstance(e, ast.Call | ast.Index | ast.Slice | ast.Bind | ast.Attr):
        return _PREC["postfix"]
    return _PREC["atom"]


def expr(e: ast.Expr) -> str:
    """An expression as canonical text."""
    return _expr(e)


def _wrap(e: ast.Expr, min_prec: int) -> str:
    text = _expr(e)
    return f"({text})" if _prec(e) < min_prec else text


def _args(args: tuple[ast.Expr, ...], kwargs: tuple[tuple[str, ast.Expr], ...]) -> str:
    return ", ".join([_expr(a) for a in args] + [f"{k}={_expr(v)}" for k, v in kwargs])


def _expr(e: ast.Expr) -> str:
    if isinstance(e, ast.Num):
        return e.text
    if isinstance(e, ast.Str):
        return e.text
    if isinstance(e, ast.Bool):
        return "true" if e.value else "false"
    if isinstance(e, ast.Name):
        return e.id
    if isinstance(e, ast.ListExpr):
        return "[" + ", ".join(_expr(x) for x in e.items) + "]"
    if isinstance(e, ast.Comprehension):
        tail = f" if {_expr(e.cond)}" if e.cond is not None else ""
        return f"[{_expr(e.elt)} for {', '.join(e.targets)} in {_expr(e.iter)}{tail}]"
    if isinstance(e, ast.CondExpr):
        return f"{_wrap(e.test, 2)} ? {_expr(e.then)} : {_expr(e.orelse)}"
    if isinstance(e, ast.BinOp):
        p = _prec(e)
        if e.op == "..":
            return f"{_wrap(e.left, p + 1)}..{_wrap(e.right, p + 1)}"
        if e.op in _COMPARE:
            return f"{_wrap(e.left, p + 1)} {e.op} {_wrap(e.right, p + 1)}"
        return f"{_wrap(e.left, p)} {e.op} {_wrap(e.right, p + 1)}"
    if isinstance(e, ast.Unary):
        if e.op == "not":
            return f"not {_wrap(e.operand, _PREC['not'])}"
        return f"-{_wrap(e.operand, _PREC['neg'])}"
    if isinstance(e, ast.Call):
        return f"{_wrap(e.func, 10)}({_args(e.args, e.kwargs)})"
    if isinstance(e, ast.Index):
        return f"{_wrap(e.obj, 10)}[{_expr(e.index)}]"
    if isinstance(e, ast.Slice):
        lo = _expr(e.lo) if e.lo is not None else ""
        hi = _expr(e.hi) if e.hi is not None else ""
        return f"{_wrap(e.obj, 10)}[{lo}:{hi}]"
    if isinstance(e, ast.Bind):
        return f"{_wrap(e.obj, 10)}[{_args((), e.kwargs)}]"
    if isinstance(e, ast.Attr):
        return f"{_wrap(e.obj, 10)}.{e.name}"
    if isinstance(e, ast.ChooseValue):
        return f"choose {{{', '.join(_expr(v) for v in e.values)}}} @{e.label.text}"
    if isinstance(e, ast.ChooseOp):
        kw = "optional" if e.optional else "choose"
        return f"{kw} {_wrap(e.candidates, 10)} @{e.label.text} ({_args(e.args, e.kwargs)})"
    if isinstance(e, ast.Pick):
        if e.k is None:
            k = "some"
        elif isinstance(e.k, ast.BinOp) and e.k.op == "..":
            k = f"{_wrap(e.k.left, 10)}..{_wrap(e.k.right, 10)}"
        else:
            k = _wrap(e.k, 10)
        return f"pick {k} of {_wrap(e.items, 10)} @{e.label.text}"
    raise TypeError(f"cannot format {type(e).__name__}")


def _params(params: tuple[ast.Param, ...], defaults: dict[str, Any] | None = None) -> str:
    out = []
    for p in params:
        s = p.name
        if p.ann is not None:
            s += f": {p.ann}"
        if defaults is not None and p.name in defaults:
            s += f" = {literal(defaults[p.name])}"
        elif p.default is not None:
            s += f" = {_expr(p.default)}"
        out.append(s)
    return ", ".join(out)


def _type_expr(t: ast.TypeExpr) -> str:
    return f"{t.name}({_args(t.args, t.kwargs)})"


class _Printer:
    def __init__(self, comments: tuple[ast.Comment, ...]) -> None:
        self.comments = sorted(comments, key=lambda c: (c.line, c.col))
        self.lines: list[str] = []

    def _comments_before(self, line: int, indent: str) -> None:
        while self.comments and self.comments[0].line < line:
            self.lines.append(indent + self.comments.pop(0).text.rstrip())

    def _trailing(self, line: int) -> None:
        if self.comments and self.comments[0].line == line and self.lines:
            self.lines[-1] += "  " + self.comments.pop(0).text.rstrip()

    def stmt(self, s: ast.Stmt, indent: str, defaults: dict[str, Any] | None = None) -> None:
        self._comments_before(s.loc.line, indent)
        head = self._head(s, defaults)
        body = _body_of(s)
        if body is None:
            self.lines.append(indent + head)
            self._trailing(s.loc.line)
            return
        self._block(indent, head, body, s)

    def _block(self, indent: str, head: str, body: Any, s: ast.Stmt) -> None:
        if isinstance(s, ast.If):
            first = True
            for test, b in s.branches:
                kw = "if" if first else "} else if"
                line = f"{kw} {_expr(test)} {{"
                if first:
                    self.lines.append(indent + line)
                    self._trailing(s.loc.line)
                else:
                    self.lines.append(indent + line)
                self._body(b, indent + "    ", None)
                first = False
            if s.orelse is not None:
                self.lines.append(indent + "} else {")
                self._body(s.orelse, indent + "    ", s.loc.end_line)
            self.lines.append(indent + "}")
            return
        self.lines.append(indent + head + " {")
        self._trailing(s.loc.line)
        self._body(body, indent + "    ", s.loc.end_line)
        self.lines.append(indent + "}")

    def _body(self, body: tuple[ast.Stmt, ...], indent: str, end_line: int | None) -> None:
        for st in body:
            self.stmt(st, indent)
        if end_line is not None:
            self._comments_before(end_line, indent)

    def _head(self, s: ast.Stmt, defaults: dict[str, Any] | None) -> str:
        if isinstance(s, ast.Import):
            target = literal(s.module, template=False) if s.is_path else s.module
            return f"import {target}" + (f" as {s.alias}" if s.alias else "")
        if isinstance(s, ast.OpDecl):
            reqs = "".join(
                f" require {_expr(r.test)}"
                + (f", {literal(r.message, template=False)}" if r.message is not None else "")
                for r in s.requires
            )
            return f"op {s.name}({_params(s.params)}) -> {_type_expr(s.out)}{reqs}"
        if isinstance(s, ast.BlockDef):
            return f"{s.kind} {s.name}({_params(s.params)})"
        if isinstance(s, ast.SpaceDef):
            return f"space {s.name}({_params(s.params, defaults)})"
        if isinstance(s, ast.Let):
            return f"let {', '.join(s.targets)} = {', '.join(_expr(v) for v in s.values)}"
        if isinstance(s, ast.Assign):
            return f"{', '.join(s.targets)} = {', '.join(_expr(v) for v in s.values)}"
        if isinstance(s, ast.AugAssign):
            return f"{s.target} {s.op}= {_expr(s.value)}"
        if isinstance(s, ast.For):
            return f"for {', '.join(s.targets)} in {_expr(s.iter)}"
        if isinstance(s, ast.If):
            return "if"
        if isinstance(s, ast.Return):
            return f"return {', '.join(_expr(v) for v in s.values)}"
        if isinstance(s, ast.InputStmt):
            return f"input {s.name}: {_type_expr(s.type)}"
        if isinstance(s, ast.OutputStmt):
            return "output " + (f"{s.name} = " if s.name else "") + _expr(s.value)
        if isinstance(s, ast.Repeat):
            depths = ", ".join(_expr(d) for d in s.depths)
            tail = f" as {s.var}" if s.var else ""
            return f"repeat {{{depths}}} @{s.label.text}{tail}"
        if isinstance(s, ast.Assert):
            return f"assert {_expr(s.test)}" + (f", {_expr(s.message)}" if s.message else "")
        raise TypeError(f"cannot format {type(s).__name__}")


def _body_of(s: ast.Stmt) -> tuple[ast.Stmt, ...] | None:
    if isinstance(s, ast.BlockDef | ast.SpaceDef | ast.For | ast.Repeat):
        return s.body
    if isinstance(s, ast.If):
        return s.branches[0][1]
    return None


def format_module(
    module: ast.Module,
    *,
    space_defaults: dict[str, dict[str, Any]] | None = None,
    comments: bool = True,
) -> str:
    """The whole module; ``space_defaults`` replaces the defaults of the named spaces' params."""
    p = _Printer(module.comments if comments else ())
    prev: ast.Stmt | None = None
    for item in module.items:
        if prev is not None and (
            _body_of(item) is not None or _body_of(prev) is not None or type(item) is not type(prev)
        ):
            p.lines.append("")
        defaults = (space_defaults or {}).get(getattr(item, "name", ""))
        p.stmt(item, "", defaults if isinstance(item, ast.SpaceDef) else None)
        prev = item
    p._comments_before(1 << 30, "")
    return "\n".join(p.lines).strip("\n") + "\n"


def format_items(items: list[ast.Stmt]) -> str:
    return format_module(ast.Module(file="<fmt>", items=tuple(items)), comments=False)
