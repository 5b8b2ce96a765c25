"""The lark parse tree to the AST (:mod:`nasc.dsl.ast`), with locations, literal checks and the
string templates (``"{expr}"``) parsed into expressions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lark import Token, Transformer_NonRecursive, v_args
from nasc.dsl import ast
from nasc.dsl.diagnostics import NasError, Sources
from nasc.dsl.lexing import MAX_INT, loc
from nasc.ir.location import SourceLoc

#: Parses the expression inside ``{...}`` of a string: ``(text, file, base) -> Expr``.
ExprParser = Callable[[str, str, SourceLoc], ast.Expr]


def unescape(body: str) -> str:
    out, i = [], 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            out.append({"n": "\n", "t": "\t"}.get(nxt, nxt))
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


@v_args(meta=True)
class ToAst(Transformer_NonRecursive):
    """One file's (or one expression's) tree to AST; with ``base``, every location is ``base``
    (an expression inside a string)."""

    def __init__(
        self, file: str, sources: Sources, parse_expr: ExprParser, base: SourceLoc | None = None
    ) -> None:
        super().__init__()
        self.file = file
        self.sources = sources
        self.parse_expr = parse_expr
        self.base = base

    def _loc(self, meta: Any) -> SourceLoc:
        if self.base is not None:
            return self.base
        if getattr(meta, "empty", True):
            return loc(self.file, 1, 1)
        return loc(self.file, meta.line, meta.column, meta.end_line, meta.end_column)

    def _tok_loc(self, tok: Token) -> SourceLoc:
        if self.base is not None:
            return self.base
        return loc(self.file, tok.line, tok.column, tok.end_line, tok.end_column)

    # -- module level
    def start(self, meta, items):
        return ast.Module(file=self.file, items=tuple(i for i in items if i is not None))

    def empty(self, meta, _):
        return None

    def import_stmt(self, meta, ch):
        target, alias = ch
        is_path = target.type == "STRING"
        module = unescape(str(target)[1:-1]) if is_path else str(target)
        return ast.Import(
            loc=self._loc(meta),
            module=module,
            is_path=is_path,
            alias=str(alias) if alias is not None else None,
        )

    def op_decl(self, meta, ch):
        name, params, out, *reqs = ch
        return ast.OpDecl(
            loc=self._loc(meta),
            name=str(name),
            params=params or (),
            out=out,
            requires=tuple(reqs),
        )

    def requirement(self, meta, ch):
        test, msg = ch
        return ast.Requirement(test=test, message=unescape(str(msg)[1:-1]) if msg else None)

    def block_kw(self, meta, ch):
        return str(ch[0])

    def block_def(self, meta, ch):
        kind, name, params, body = ch
        return ast.BlockDef(
            loc=self._loc(meta), kind=kind, name=str(name), params=params or (), body=body
        )

    def space_def(self, meta, ch):
        name, params, body = ch
        return ast.SpaceDef(loc=self._loc(meta), name=str(name), params=params or (), body=body)

    def params(self, meta, ch):
        return tuple(ch)

    def param(self, meta, ch):
        name, ann, default = ch
        return ast.Param(loc=self._loc(meta), name=str(name), ann=ann, default=default)

    def type_ann(self, meta, ch):
        return ast.TypeAnn(name=str(ch[0]), arg=ch[1])

    def enum_ann(self, meta, ch):
        values = tuple(int(str(t)) if t.type == "INT" else unescape(str(t)[1:-1]) for t in ch)
        if len({type(v) for v in values}) > 1:
            raise self.sources.error(
                "an enumerated type lists strings or integers, not both", self._loc(meta)
            )
        if len(set(values)) != len(values):
            dup = next(v for v in values if values.count(v) > 1)
            raise self.sources.error(
                f"an enumerated type lists {ast.enum_literal(dup)} twice", self._loc(meta)
            )
        kind = "int" if isinstance(values[0], int) else "str"
        return ast.TypeAnn(name=kind, values=values)

    def type_expr(self, meta, ch):
        args, kwargs = ch[1] or ((), ())
        return ast.TypeExpr(loc=self._loc(meta), name=str(ch[0]), args=args, kwargs=kwargs)

    # -- statements
    def body(self, meta, ch):
        return tuple(s for s in ch if s is not None)

    def targets(self, meta, ch):
        return tuple(str(t) for t in ch)

    def exprlist(self, meta, ch):
        return tuple(ch)

    def let_stmt(self, meta, ch):
        return self._assign(ast.Let, meta, ch)

    def assign_stmt(self, meta, ch):
        return self._assign(ast.Assign, meta, ch)

    def _assign(self, cls, meta, ch):
        targets, values = ch
        if len(values) != len(targets) and len(values) != 1:
            raise self.sources.error(
                f"{len(targets)} names but {len(values)} values", self._loc(meta)
            )
        return cls(loc=self._loc(meta), targets=targets, values=values)

    def aug_assign(self, meta, ch):
        name, op, value = ch
        return ast.AugAssign(loc=self._loc(meta), target=str(name), op=str(op)[0], value=value)

    def for_stmt(self, meta, ch):
        targets, it, body = ch
        return ast.For(loc=self._loc(meta), targets=targets, iter=it, body=body)

    def if_stmt(self, meta, ch):
        test, body, *rest = ch
        orelse = rest.pop() if rest and (rest[-1] is None or rest[-1][0] == "else") else None
        branches = ((test, body),) + tuple(b for b in rest)
        return ast.If(
            loc=self._loc(meta),
            branches=branches,
            orelse=orelse[1] if orelse is not None else None,
        )

    def elif_clause(self, meta, ch):
        return (ch[0], ch[1])

    def else_clause(self, meta, ch):
        return ("else", ch[0])

    def return_stmt(self, meta, ch):
        return ast.Return(loc=self._loc(meta), values=ch[0])

    def input_stmt(self, meta, ch):
        return ast.InputStmt(loc=self._loc(meta), name=str(ch[0]), type=ch[1])

    def output_stmt(self, meta, ch):
        name, value = ch
        return ast.OutputStmt(
            loc=self._loc(meta), name=str(name) if name is not None else None, value=value
        )

    def repeat_stmt(self, meta, ch):
        depths, label, var, body = ch
        return ast.Repeat(
            loc=self._loc(meta),
            depths=depths,
            label=label,
            var=str(var) if var is not None else None,
            body=body,
        )

    def assert_stmt(self, meta, ch):
        return ast.Assert(loc=self._loc(meta), test=ch[0], message=ch[1])

    # -- expressions
    def cond(self, meta, ch):
        return ast.CondExpr(loc=self._loc(meta), test=ch[0], then=ch[1], orelse=ch[2])

    def or_(self, meta, ch):
        return ast.BinOp(loc=self._loc(meta), op="or", left=ch[0], right=ch[1])

    def and_(self, meta, ch):
        return ast.BinOp(loc=self._loc(meta), op="and", left=ch[0], right=ch[1])

    def not_(self, meta, ch):
        return ast.Unary(loc=self._loc(meta), op="not", operand=ch[0])

    def comp_op(self, meta, ch):
        return " ".join(str(t) for t in ch)

    def compare(self, meta, ch):
        return ast.BinOp(loc=self._loc(meta), op=ch[1], left=ch[0], right=ch[2])

    def range_(self, meta, ch):
        return ast.BinOp(loc=self._loc(meta), op="..", left=ch[0], right=ch[1])

    def binop(self, meta, ch):
        return ast.BinOp(loc=self._loc(meta), op=str(ch[1]), left=ch[0], right=ch[2])

    def neg(self, meta, ch):
        return ast.Unary(loc=self._loc(meta), op="-", operand=ch[0])

    def call(self, meta, ch):
        args, kwargs = ch[1] or ((), ())
        return ast.Call(loc=self._loc(meta), func=ch[0], args=args, kwargs=kwargs)

    def index(self, meta, ch):
        obj, sub = ch
        if isinstance(sub, tuple) and sub and sub[0] == "slice":
            return ast.Slice(loc=self._loc(meta), obj=obj, lo=sub[1], hi=sub[2])
        return ast.Index(loc=self._loc(meta), obj=obj, index=sub)

    def slice(self, meta, ch):
        return ("slice", ch[0], ch[1])

    def bind(self, meta, ch):
        return ast.Bind(loc=self._loc(meta), obj=ch[0], kwargs=ch[1])

    def kwargs(self, meta, ch):
        return tuple(ch)

    def kwarg_(self, meta, ch):
        return (str(ch[0]), ch[1])

    def attr(self, meta, ch):
        return ast.Attr(loc=self._loc(meta), obj=ch[0], name=str(ch[1]))

    def args(self, meta, ch):
        pos = tuple(a for a in ch if not (isinstance(a, tuple) and a and a[0] == "kw"))
        kws = tuple((a[1], a[2]) for a in ch if isinstance(a, tuple) and a and a[0] == "kw")
        seen = set()
        for a in ch:
            is_kw = isinstance(a, tuple) and a and a[0] == "kw"
            if is_kw:
                if a[1] in seen:
                    raise self.sources.error(f"argument {a[1]!r} given twice", a[2].loc)
                seen.add(a[1])
            elif seen:
                raise self.sources.error("positional argument after a keyword argument", a.loc)
        return (pos, kws)

    def kwarg(self, meta, ch):
        return ("kw", str(ch[0]), ch[1])

    def int_(self, meta, ch):
        tok = ch[0]
        digits = str(tok).lstrip("0") or "0"
        if len(digits) > 19 or int(digits) > MAX_INT:
            raise self.sources.error(
                f"integer literal too large (the limit is {MAX_INT})", self._tok_loc(tok)
            )
        return ast.Num(loc=self._tok_loc(tok), value=int(digits), text=str(tok))

    def float_(self, meta, ch):
        tok = ch[0]
        value = float(tok)
        if value != value or value in (float("inf"), float("-inf")):
            raise self.sources.error("float literal out of range", self._tok_loc(tok))
        return ast.Num(loc=self._tok_loc(tok), value=value, text=str(tok))

    def string(self, meta, ch):
        tok = ch[0]
        return self._template(str(tok), self._tok_loc(tok))

    def true(self, meta, ch):
        return ast.Bool(loc=self._loc(meta), value=True)

    def false(self, meta, ch):
        return ast.Bool(loc=self._loc(meta), value=False)

    def name(self, meta, ch):
        return ast.Name(loc=self._tok_loc(ch[0]), id=str(ch[0]))

    def list_(self, meta, ch):
        return ast.ListExpr(loc=self._loc(meta), items=ch[0] or ())

    def items(self, meta, ch):
        return tuple(ch)

    def comprehension(self, meta, ch):
        elt, targets, it, cond = ch
        return ast.Comprehension(loc=self._loc(meta), elt=elt, targets=targets, iter=it, cond=cond)

    def choice_set(self, meta, ch):
        return ch[0]

    def label(self, meta, ch):
        return self.string(meta, ch)

    def choose_value(self, meta, ch):
        return ast.ChooseValue(loc=self._loc(meta), values=ch[0], label=ch[1])

    def choose_op(self, meta, ch):
        return self._choose(meta, ch, optional=False)

    def optional(self, meta, ch):
        return self._choose(meta, ch, optional=True)

    def _choose(self, meta, ch, optional):
        cands, label, args = ch
        pos, kws = args or ((), ())
        return ast.ChooseOp(
            loc=self._loc(meta),
            candidates=cands,
            label=label,
            args=pos,
            kwargs=kws,
            optional=optional,
        )

    def pick_some(self, meta, ch):
        return None

    def pick(self, meta, ch):
        k, items, label = ch
        return ast.Pick(loc=self._loc(meta), k=k, items=items, label=label)

    def _template(self, raw: str, loc: SourceLoc) -> ast.Str:
        body = raw[1:-1]
        parts: list[str | ast.Expr] = []
        buf: list[str] = []
        i = 0
        while i < len(body):
            ch = body[i]
            if ch == "\\" and i + 1 < len(body):
                buf.append(body[i : i + 2])
                i += 2
            elif body.startswith("{{", i) or body.startswith("}}", i):
                buf.append(ch)
                i += 2
            elif ch == "{":
                end = body.find("}", i)
                if end < 0:
                    raise self.sources.error("unclosed '{' in string interpolation", loc)
                if buf:
                    parts.append(unescape("".join(buf)))
                    buf = []
                inner = body[i + 1 : end].strip()
                if not inner:
                    raise self.sources.error("empty '{}' in string interpolation", loc)
                try:
                    parts.append(self.parse_expr(inner, self.file, loc))
                except NasError as e:
                    raise self.sources.error(f"in '{{{inner}}}': {e.message}", loc) from None
                i = end + 1
            elif ch == "}":
                raise self.sources.error("single '}' in string; write '}}'", loc)
            else:
                buf.append(ch)
                i += 1
        if buf:
            parts.append(unescape("".join(buf)))
        return ast.Str(loc=loc, parts=tuple(parts), text=raw)


__all__ = ["ToAst", "unescape"]
