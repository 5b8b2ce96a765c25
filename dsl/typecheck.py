"""Type checking during elaboration: parameter annotations, tensor types and their agreement,
and the ``require`` clauses of op declarations, each over the value choices that reach it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs
from nasc.dsl import ast
from nasc.dsl.diagnostics import NasError, did_you_mean
from nasc.dsl.modules import ANNOTATIONS, ModuleEnv
from nasc.dsl.scope import Scope
from nasc.dsl.symbolic import assignments, value_at, when
from nasc.dsl.values import CALLABLES, Tensor, show, type_name
from nasc.ir.location import SourceLoc
from nasc.ir.sym import Sym, evaluate, labels_of, same_value
from nasc.ir.types import Layout, TensorType

if TYPE_CHECKING:
    from nasc.dsl.elaborate import Elaborator

_SCALARS = {"int": (int,), "float": (int, float), "bool": (bool,), "str": (str,)}


def is_num(v: Any) -> bool:
    return (isinstance(v, int | float) and not isinstance(v, bool)) or isinstance(v, Sym)


class TypeChecker:
    """The checks of one elaboration (``el`` gives the errors, the graph and the domains)."""

    def __init__(self, el: Elaborator) -> None:
        self.el = el

    @property
    def domains(self) -> dict[str, tuple[Any, ...]]:
        return self.el.labels.domains

    # ---- annotations -------------------------------------------------------------------------
    def annotation(self, v: Any, ann: ast.TypeAnn, what: str, loc: SourceLoc) -> Any:
        """``v`` as a parameter annotated ``ann`` takes it (an ``int`` made ``float``)."""
        ok: bool
        n = ann.name
        if ann.values:
            return self._enum(v, ann, what, loc)
        if isinstance(v, Sym) and n in _SCALARS:
            return self._sym(v, n, what, loc)
        if n == "int":
            ok = (isinstance(v, int) and not isinstance(v, bool)) or isinstance(v, Sym)
        elif n == "float":
            ok = is_num(v)
            v = float(v) if ok and not isinstance(v, Sym) else v
        elif n == "bool":
            ok = isinstance(v, bool)
        elif n == "str":
            ok = isinstance(v, str)
        elif n in ("tensor", "image", "vector", "tokens"):
            ok = isinstance(v, Tensor) and (n == "tensor" or v.type.layout.value == n)
        elif n == "op":
            ok = isinstance(v, CALLABLES)
        elif n == "list":
            ok = isinstance(v, list)
            if ok and ann.arg is not None:
                v = [self.annotation(x, ann.arg, what + " item", loc) for x in v]
        elif n == "any":
            ok = True
        else:
            raise self.el.error(  # (annotations are checked when a module loads; defensive)
                f"unknown type {n!r} in annotation of {what}{did_you_mean(n, ANNOTATIONS)}", loc
            )
        if not ok:
            shown = "" if isinstance(v, Tensor) else f" {show(v)}"
            raise self.el.error(f"{what} must be {ann}, got {type_name(v)}{shown}", loc)
        return v

    def _enum(self, v: Any, ann: ast.TypeAnn, what: str, loc: SourceLoc) -> Any:
        """A parameter of an enumerated type takes one of its values (a value choice: every
        value the choice can take is one)."""

        def member(x: Any) -> bool:
            return not isinstance(x, bool) and isinstance(x, str | int) and x in ann.values

        allowed = f"one of {', '.join(ast.enum_literal(x) for x in ann.values)}"
        if isinstance(v, Sym):
            for env in assignments(v.labels(), self.domains):
                x = value_at(v, env, self.el.error, loc)
                if not member(x):
                    raise self.el.error(
                        f"{what} must be {allowed}, but is {show(x)} when {when(env)}", loc
                    )
            return v
        if not member(v):
            shown = "" if isinstance(v, Tensor) else f" {show(v)}"
            raise self.el.error(f"{what} must be {allowed}; got {type_name(v)}{shown}", loc)
        return v

    def _sym(self, v: Sym, n: str, what: str, loc: SourceLoc) -> Sym:
        """A value choice fits a parameter when every value it can take does."""
        kinds = _SCALARS[n]
        for lab in v.labels():
            for x in self.domains.get(lab, ()):
                if not isinstance(x, kinds) or (n in ("int", "float") and isinstance(x, bool)):
                    raise self.el.error(
                        f"{what} must be {n}, but value choice {lab!r} can be {show(x)}", loc
                    )
        return v

    # ---- tensor types ------------------------------------------------------------------------
    def tensor_type(self, t: ast.TypeExpr, args: list[Any], kwargs: dict[str, Any]) -> TensorType:
        """The type ``t`` (``image(C, s)``, ``like(x, channels=C)``, ...) with its arguments."""
        if t.name == "like":
            if len(args) != 1 or not isinstance(args[0], Tensor):
                raise self.el.error("like(x, ...) takes one tensor", t.loc)
            ty = args[0].type
            for k, v in kwargs.items():
                if k not in ("channels", "stride"):
                    raise self.el.error(f"like() has no field {k!r}", t.loc)
                ty = attrs.evolve(ty, **{k: self.dim(v, t.loc, k)})
            return ty
        if t.name not in ("image", "vector", "tokens"):
            raise self.el.error(
                f"unknown tensor type {t.name!r}"
                + did_you_mean(t.name, ["image", "vector", "tokens", "like"]),
                t.loc,
            )
        fields = dict(zip(("channels", "stride"), args))
        fields.update(kwargs)
        if "channels" not in fields:
            raise self.el.error(f"{t.name}(...) needs a channel count", t.loc)
        ch = self.dim(fields["channels"], t.loc, "channels")
        if t.name == "vector":
            return TensorType.vector(ch)
        stride = self.dim(fields.get("stride", 1), t.loc, "stride")
        return TensorType(layout=Layout(t.name), channels=ch, stride=stride)

    def dim(self, v: Any, loc: SourceLoc, what: str) -> Any:
        """A channel count or stride: a positive integer under every decision."""
        if isinstance(v, Sym):
            for env in assignments(v.labels(), self.domains):
                x = value_at(v, env, self.el.error, loc)
                if not isinstance(x, int) or isinstance(x, bool) or x < 1:
                    raise self.el.error(
                        f"{what} must be a positive integer, but is {show(x)} when {when(env)}",
                        loc,
                    )
            return v
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise self.el.error(f"{what} must be a positive integer, got {show(v)}", loc)
        return v

    def merged_type(self, ts: list[Tensor], mode: str, loc, what: list[str]) -> TensorType:
        """The type of ``sum`` (all alike) or ``concat`` (channels add up) of ``ts``."""
        if mode == "sum":
            self.same_types(ts, what, loc, "sum")
            return ts[0].type
        first = ts[0].type
        for t, w in zip(ts[1:], what[1:]):
            if t.type.layout != first.layout or not same_value(
                t.type.stride, first.stride, self.domains
            ):
                raise self.mismatch("concat", ts[0], t, what[0], w, loc)
        total = first.channels
        for t in ts[1:]:
            total = total + t.type.channels
        return first.with_channels(total)

    def same_types(self, ts: list[Tensor], what: list[str], loc, ctx: str) -> None:
        first = ts[0].type
        for t, w in zip(ts[1:], what[1:]):
            ty = t.type
            if (
                ty.layout != first.layout
                or not same_value(ty.channels, first.channels, self.domains)
                or (
                    ty.layout is not Layout.VECTOR
                    and not same_value(ty.stride, first.stride, self.domains)
                )
            ):
                raise self.mismatch(ctx, ts[0], t, what[0], w, loc)

    def mismatch(self, ctx, a: Tensor, b: Tensor, wa: str, wb: str, loc) -> NasError:
        el = self.el
        la, lb = el.graph[a.node].loc, el.graph[b.node].loc
        notes = [
            el.sources.note(la, f"{wa} has type {a.type}"),
            el.sources.note(lb, f"{wb} has type {b.type}"),
        ]
        return el.error(
            f"{ctx} of tensors with different types: {wa} is {a.type}, {wb} is {b.type}", loc, notes
        )

    # ---- requirements ------------------------------------------------------------------------
    def requirements(self, d: ast.OpDecl, bound: dict[str, Any], module: ModuleEnv, loc) -> None:
        """Check ``require`` clauses, under every decision of the value choices involved.

        A clause is split at its top-level ``and``s and each part is checked over the value
        choices of the parameters it names only: ``c3 >= 0 and c5 >= 0`` is two checks over
        one label each, not one over their product (which a wide search block makes huge).
        """
        el = self.el
        for req in d.requires:
            for part in _conjuncts(req.test):
                names = {x.id for x in ast.walk_exprs(part) if isinstance(x, ast.Name)}
                used = [v for k, v in bound.items() if k in names]
                labels = labels_of(
                    tuple(v.type.channels if isinstance(v, Tensor) else v for v in used)
                )
                labels |= labels_of(tuple(v.type.stride for v in used if isinstance(v, Tensor)))
                for env in assignments(labels, self.domains) if labels else [{}]:
                    scope = Scope()
                    for k, v in bound.items():
                        if k in names:
                            scope.vars[k] = _at(v, env)
                    if el.truth(el.eval(part, scope, module), part.loc):
                        continue
                    msg = req.message or f"requirement of {d.name!r} does not hold"
                    detail = ", ".join(f"{k}={show(v)}" for k, v in scope.vars.items())
                    at = f" when {', '.join(f'{k}={v}' for k, v in env.items())}" if env else ""
                    raise el.error(
                        f"{d.name}: {msg} ({detail}){at}",
                        loc,
                        [el.sources.note(req.test.loc, "required here")],
                    )


def _at(v: Any, env: dict[str, Any]) -> Any:
    """An argument under the decisions ``env`` (a tensor: its channels and stride)."""
    if isinstance(v, Tensor):
        ty = attrs.evolve(
            v.type, channels=evaluate(v.type.channels, env), stride=evaluate(v.type.stride, env)
        )
        return attrs.evolve(v, type=ty)
    return evaluate(v, env) if not isinstance(v, list) else v


def _conjuncts(e: ast.Expr) -> list[ast.Expr]:
    """``a and b and c`` as ``[a, b, c]`` (any other expression as itself)."""
    if isinstance(e, ast.BinOp) and e.op == "and":
        return _conjuncts(e.left) + _conjuncts(e.right)
    return [e]


__all__ = ["TypeChecker", "is_num"]
