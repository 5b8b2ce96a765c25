"""Expression evaluation: one rule per kind of AST expression (:data:`RULES`).

Values are plain Python values (ints, floats, strings, bools, lists), tensors, callables and
symbols of value choices (:mod:`nasc.dsl.values`); no Python is ever evaluated.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from nasc.dsl import ast, choices
from nasc.dsl.builtins import BUILTINS
from nasc.dsl.diagnostics import did_you_mean
from nasc.dsl.modules import ModuleEnv
from nasc.dsl.scope import Pending, Scope
from nasc.dsl.symbolic import assignments, value_at, when
from nasc.dsl.typecheck import is_num
from nasc.dsl.values import (
    CALLABLES,
    BoundValue,
    ModuleValue,
    PickValue,
    RangeValue,
    Tensor,
    type_name,
)
from nasc.ir.location import SourceLoc
from nasc.ir.sym import Sym

if TYPE_CHECKING:
    from nasc.dsl.elaborate import Elaborator

Rule = Callable[["Elaborator", Any, Scope, ModuleEnv], Any]


def evaluate(el: Elaborator, e: ast.Expr, scope: Scope, env: ModuleEnv) -> Any:
    return RULES[type(e)](el, e, scope, env)


def _str(el: Elaborator, e: ast.Str, scope: Scope, env: ModuleEnv) -> str:
    out = []
    for part in e.parts:
        out.append(part if isinstance(part, str) else el.text(el.eval(part, scope, env)))
    text = "".join(out)
    el.budget.string(len(text), e.loc)
    el.budget.created(text, e.loc)
    return text


def _name(el: Elaborator, e: ast.Name, scope: Scope, env: ModuleEnv) -> Any:
    owner = scope.find(e.id)
    if owner is not None:
        return owner.vars[e.id]
    if e.id in env.scope:
        value = env.scope[e.id]
        if isinstance(value, Pending):
            raise el.error(f"{e.id!r} is used before its 'let' runs", e.loc)
        return value
    if e.id in BUILTINS:
        return BUILTINS[e.id]
    names = scope.names() | set(env.scope) | set(BUILTINS)
    raise el.error(f"{e.id!r} is not defined{did_you_mean(e.id, names)}", e.loc)


def _list(el: Elaborator, e: ast.ListExpr, scope: Scope, env: ModuleEnv) -> list[Any]:
    out = [el.eval(x, scope, env) for x in e.items]
    el.budget.created(out, e.loc)
    return out


def _comprehension(el: Elaborator, e: ast.Comprehension, scope: Scope, env: ModuleEnv) -> Any:
    it = el.eval(e.iter, scope, env)
    if isinstance(it, PickValue):
        return choices.map_pick(el, e, it, scope, env)
    out = []
    for item in el.iterate(it, e.iter.loc):
        el.budget.step(e.loc)
        inner = Scope(scope)
        el.bind_targets(inner, e.targets, item, e.loc)
        if e.cond is not None and not el.truth(el.eval(e.cond, inner, env), e.cond.loc):
            continue
        out.append(el.eval(e.elt, inner, env))
        el.budget.created(out, e.loc)
    return out


def _cond(el: Elaborator, e: ast.CondExpr, scope: Scope, env: ModuleEnv) -> Any:
    test = el.truth(el.eval(e.test, scope, env), e.test.loc)
    return el.eval(e.then if test else e.orelse, scope, env)


def _unary(el: Elaborator, e: ast.Unary, scope: Scope, env: ModuleEnv) -> Any:
    v = el.eval(e.operand, scope, env)
    if e.op == "not":
        return not el.truth(v, e.operand.loc)
    if isinstance(v, bool) or not isinstance(v, int | float | Sym):
        raise el.error(f"cannot negate {type_name(v)}", e.loc)
    return -v


def _binop(el: Elaborator, e: ast.BinOp, scope: Scope, env: ModuleEnv) -> Any:
    if e.op == "and":
        return el.truth(el.eval(e.left, scope, env), e.left.loc) and el.truth(
            el.eval(e.right, scope, env), e.right.loc
        )
    if e.op == "or":
        return el.truth(el.eval(e.left, scope, env), e.left.loc) or el.truth(
            el.eval(e.right, scope, env), e.right.loc
        )
    return binop(el, e.op, el.eval(e.left, scope, env), el.eval(e.right, scope, env), e.loc)


def binop(el: Elaborator, op: str, a: Any, b: Any, loc: SourceLoc) -> Any:
    """``a op b`` for every operator but ``and``/``or`` (which short-circuit)."""
    if op == "..":
        return RangeValue(start=el.as_int(a, loc), stop=el.as_int(b, loc))
    if op in ("in", "not in"):
        if isinstance(b, RangeValue):
            found = isinstance(a, int) and b.start <= a < b.stop
        elif isinstance(b, list | str):
            found = a in b if isinstance(b, list) else el.text(a) in b
        else:
            raise el.error(f"'in' needs a list, range or string, got {type_name(b)}", loc)
        return found if op == "in" else not found
    if op in ("==", "!="):
        if isinstance(a, Sym) or isinstance(b, Sym):
            raise el.structure_error(loc)
        eq = _equal(a, b)
        return eq if op == "==" else not eq
    if isinstance(a, Tensor) and isinstance(b, Tensor) and op == "+":
        return choices.merge(el, [a, b], "sum", loc)
    if op == "+" and isinstance(a, list) and isinstance(b, list):
        out = a + b
        el.budget.created(out, loc)
        return out
    if op == "+" and isinstance(a, str) and isinstance(b, str):
        el.budget.string(len(a) + len(b), loc)
        el.budget.created(a + b, loc)
        return a + b
    if not is_num(a) or not is_num(b):
        raise el.error(f"cannot apply '{op}' to {type_name(a)} and {type_name(b)}", loc)
    if op in ("<", "<=", ">", ">=") and (isinstance(a, Sym) or isinstance(b, Sym)):
        raise el.structure_error(loc)
    if op in ("//", "%", "/") and not isinstance(b, Sym) and b == 0:
        raise el.error("division by zero", loc)
    if op in ("//", "%", "/") and isinstance(b, Sym):
        for env in assignments(b.labels(), el.labels.domains):
            if value_at(b, env, el.error, loc) == 0:
                raise el.error(f"division by zero when {when(env)}", loc)
    result = Sym.binary(op, a, b)
    if isinstance(result, float) and not math.isfinite(result):
        raise el.error(f"'{op}' gives {result}; numbers must stay finite", loc)
    return el.budget.int_(result, loc)


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, Tensor) and isinstance(b, Tensor):
        return a.node == b.node
    if isinstance(a, CALLABLES) or isinstance(b, CALLABLES):
        return a is b
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    return bool(a == b)


def _call(el: Elaborator, e: ast.Call, scope: Scope, env: ModuleEnv) -> Any:
    fn = el.eval(e.func, scope, env)
    args = [el.eval(a, scope, env) for a in e.args]
    kwargs = {k: el.eval(v, scope, env) for k, v in e.kwargs}
    return el.call(fn, args, kwargs, e.loc)


def _index(el: Elaborator, e: ast.Index, scope: Scope, env: ModuleEnv) -> Any:
    obj = el.eval(e.obj, scope, env)
    idx = el.eval(e.index, scope, env)
    if isinstance(obj, RangeValue):
        obj = range(obj.start, obj.stop)
    if not isinstance(obj, list | str | range):
        raise el.error(f"cannot index {type_name(obj)}", e.loc)
    i = el.as_int(idx, e.index.loc)
    if not -len(obj) <= i < len(obj):
        raise el.error(f"index {i} out of range for length {len(obj)}", e.index.loc)
    return obj[i]


def _slice(el: Elaborator, e: ast.Slice, scope: Scope, env: ModuleEnv) -> Any:
    obj = el.eval(e.obj, scope, env)
    if isinstance(obj, RangeValue):
        obj = range(obj.start, obj.stop)
    if not isinstance(obj, list | str | range):
        raise el.error(f"cannot slice {type_name(obj)}", e.loc)
    lo = None if e.lo is None else el.as_int(el.eval(e.lo, scope, env), e.lo.loc)
    hi = None if e.hi is None else el.as_int(el.eval(e.hi, scope, env), e.hi.loc)
    part = obj[lo:hi]
    if isinstance(part, range):
        if part.step != 1:  # pragma: no cover - slices have no step in .nas
            raise el.error("ranges have step 1", e.loc)
        return RangeValue(start=part.start, stop=max(part.start, part.stop))
    return part


def _bind(el: Elaborator, e: ast.Bind, scope: Scope, env: ModuleEnv) -> BoundValue:
    fn = el.eval(e.obj, scope, env)
    if not isinstance(fn, CALLABLES):
        raise el.error(f"cannot bind arguments of {type_name(fn)}", e.loc)
    kwargs = tuple((k, el.eval(v, scope, env)) for k, v in e.kwargs)
    if isinstance(fn, BoundValue):
        merged = dict(fn.kwargs)
        merged.update(kwargs)
        return BoundValue(fn=fn.fn, kwargs=tuple(merged.items()))
    return BoundValue(fn=fn, kwargs=kwargs)


def _attr(el: Elaborator, e: ast.Attr, scope: Scope, env: ModuleEnv) -> Any:
    obj = el.eval(e.obj, scope, env)
    if isinstance(obj, Tensor):
        if e.name == "channels":
            return obj.type.channels
        if e.name == "stride":
            return obj.type.stride
        if e.name == "layout":
            return obj.type.layout.value
        if e.name == "index":
            if obj.index is None:
                raise el.error("'.index' exists only on members of a pick", e.loc)
            return obj.index
        raise el.error(
            f"a tensor has no {e.name!r}"
            + did_you_mean(e.name, ["channels", "stride", "layout", "index"]),
            e.loc,
        )
    if isinstance(obj, ModuleValue):
        if e.name not in obj.env.scope:
            hint = did_you_mean(e.name, obj.env.scope)
            raise el.error(f"module {obj.name!r} has no {e.name!r}{hint}", e.loc)
        return obj.env.scope[e.name]
    if isinstance(obj, PickValue) and e.name in ("k",):
        return obj.k_min
    raise el.error(f"{type_name(obj)} has no attribute {e.name!r}", e.loc)


RULES: dict[type, Rule] = {
    ast.Num: lambda el, e, scope, env: e.value,
    ast.Bool: lambda el, e, scope, env: e.value,
    ast.Str: _str,
    ast.Name: _name,
    ast.ListExpr: _list,
    ast.Comprehension: _comprehension,
    ast.CondExpr: _cond,
    ast.Unary: _unary,
    ast.BinOp: _binop,
    ast.Call: _call,
    ast.Index: _index,
    ast.Slice: _slice,
    ast.Bind: _bind,
    ast.Attr: _attr,
    ast.ChooseValue: choices.choose_value,
    ast.ChooseOp: choices.choose_op,
    ast.Pick: choices.pick,
}

__all__ = ["RULES", "binop", "evaluate"]
