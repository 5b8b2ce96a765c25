"""The constructs that make decisions and merge tensors: value, op and input choices, repeats,
``sum`` and ``concat``. Each registers its label, elaborates every alternative under a guard
saying when it exists, and adds the choice node over them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs
from nasc.dsl import ast
from nasc.dsl.modules import ModuleEnv
from nasc.dsl.scope import Scope
from nasc.dsl.values import CALLABLES, PickValue, RangeValue, Tensor, callable_name, show, type_name
from nasc.ir.guards import Atom
from nasc.ir.location import SourceLoc
from nasc.ir.nodes import InputChoice, Merge, OpChoice, RepeatChoice, ValueChoice
from nasc.ir.sym import Sym

if TYPE_CHECKING:
    from nasc.dsl.elaborate import Elaborator


def choose_value(el: Elaborator, e: ast.ChooseValue, scope: Scope, env: ModuleEnv) -> Sym:
    """``choose {v1, v2, ...} @"label"``: a symbol for the decision."""
    el.no_toplevel_choice(e.loc)
    values = tuple(el.set_items(e.values, scope, env))
    for v in values:
        if not isinstance(v, int | float | str | bool):
            raise el.error(f"a value choice needs plain values, got {type_name(v)}", e.loc)
    if len(set(values)) != len(values):
        raise el.error("a value choice lists a value twice", e.loc)
    el.budget.options(values, e.loc)
    label = el.label(e.label, scope, env)
    el.labels.register(label, "value", values, e.loc)
    el.add(ValueChoice, type=None, label=label, values=values, loc=e.loc)
    return Sym.var(label)


def choose_op(el: Elaborator, e: ast.ChooseOp, scope: Scope, env: ModuleEnv) -> Tensor:
    """``choose CANDIDATES @"label" (args)`` and ``optional f @"label" (args)``."""
    el.no_toplevel_choice(e.loc)
    cands = el.eval(e.candidates, scope, env)
    if isinstance(cands, CALLABLES):
        cands = [cands]
    if not isinstance(cands, list) or not cands:
        raise el.error(
            "candidates of a choice must be a non-empty list of ops or blocks", e.candidates.loc
        )
    for c in cands:
        if not isinstance(c, CALLABLES):
            raise el.error(f"candidate {show(c)} is not an op or a block", e.candidates.loc)
    args = [el.eval(a, scope, env) for a in e.args]
    kwargs = {k: el.eval(v, scope, env) for k, v in e.kwargs}
    names = [callable_name(c) for c in cands]
    if e.optional:
        if len(cands) != 1:
            raise el.error("'optional' takes one op or block", e.candidates.loc)
        names = ["skip"] + names
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise el.error(f"candidate {dup!r} is listed twice", e.candidates.loc)
    el.budget.options(names, e.loc)
    label = el.label(e.label, scope, env)
    el.labels.register(label, "op", tuple(names), e.loc)
    results: list[Tensor] = []
    for name in names:
        with el.guarded(Atom(label=label, test="eq", value=name)):
            if name == "skip" and e.optional:
                if not args or not isinstance(args[0], Tensor):
                    raise el.error("'optional' needs a tensor as first argument", e.loc)
                value = args[0]
            else:
                value = el.call(cands[names.index(name) - e.optional], args, kwargs, e.loc)
        results.append(el.tensor(value, e.loc, f"candidate {name!r}"))
    el.loc = e.loc
    el.types.same_types(results, [f"candidate {n!r}" for n in names], e.loc, "choice")
    nid = el.add(
        OpChoice,
        [t.node for t in results],
        type=results[0].type,
        label=label,
        options=tuple(names),
        loc=e.loc,
    )
    return Tensor(node=nid, type=results[0].type)


def pick(el: Elaborator, e: ast.Pick, scope: Scope, env: ModuleEnv) -> PickValue:
    """``pick K of xs @"label"``: merged later, by ``sum``/``concat`` (of a list over it)."""
    el.no_toplevel_choice(e.loc)
    items = el.eval(e.items, scope, env)
    if not isinstance(items, list) or not items:
        raise el.error("'pick' needs a non-empty list of tensors", e.items.loc)
    tensors = [el.tensor(x, e.items.loc, "each item of a pick") for x in items]
    n = len(tensors)
    if e.k is None:
        k_min, k_max = 1, n
    else:
        k = el.eval(e.k, scope, env)
        if isinstance(k, RangeValue):
            k_min, k_max = k.start, k.stop - 1
        else:
            k_min = k_max = el.as_int(k, e.k.loc)
    if not 1 <= k_min <= k_max <= n:
        raise el.error(f"cannot pick {k_min}..{k_max} of {n} inputs", e.loc)
    label = el.label(e.label, scope, env)
    el.budget.options(range(n), e.loc)
    p = PickValue(
        label=label,
        k_min=k_min,
        k_max=k_max,
        loc=e.loc,
        items=[attrs.evolve(t, index=i) for i, t in enumerate(tensors)],
    )
    el.picks.append(p)
    return p


def map_pick(el: Elaborator, e: ast.Comprehension, p: PickValue, scope: Scope, env: ModuleEnv):
    """``[f(h) for h in pick ...]``: ``f`` of each member, under the guard that it is picked."""
    if e.cond is not None:
        raise el.error("a list over a pick cannot filter with 'if'", e.cond.loc)
    if len(e.targets) != 1:
        raise el.error("a list over a pick binds one name", e.loc)
    p.consumed = True
    items = []
    for i, item in enumerate(p.items):
        el.budget.step(e.loc)
        inner = Scope(scope)
        inner.vars[e.targets[0]] = item
        with el.guarded(Atom(label=p.label, test="has", value=i)):
            value = el.eval(e.elt, inner, env)
        t = el.tensor(value, e.elt.loc, "each member of a pick")
        items.append(attrs.evolve(t, index=i))
    out = PickValue(label=p.label, k_min=p.k_min, k_max=p.k_max, items=items, loc=p.loc)
    el.picks.append(out)
    return out


def repeat(el: Elaborator, s: ast.Repeat, scope: Scope, env: ModuleEnv) -> None:
    """``repeat {depths} @"label" [as j] { body }``: the tensors the body changes, at each
    depth, go through a repeat choice."""
    depths = sorted({el.as_int(v, s.loc) for v in el.set_items(s.depths, scope, env)})
    if any(d < 0 for d in depths):
        raise el.error("repeat depths must be 0 or more", s.loc)
    label = el.label(s.label, scope, env)
    el.labels.register(label, "repeat", tuple(depths), s.loc)
    before = scope.snapshot()
    states: dict[str, list[Any]] = {}
    for i in range(max(depths)):
        el.budget.step(s.loc)
        optional = i + 1 > depths[0]
        inner = Scope(scope)
        if s.var is not None:
            inner.vars[s.var] = i
        with el.guarded(Atom(label=label, test="ge", value=i + 1) if optional else None):
            el.exec_body(s.body, inner, env)
        for name, (owner, _) in before.items():
            states.setdefault(name, [before[name][1]]).append(owner.vars[name])
    el.loc = s.loc
    changed = [n for n, seq in states.items() if any(v is not seq[0] for v in seq[1:])]
    if not changed:
        raise el.error("the repeated body changes no tensor outside it", s.loc)
    for name in changed:
        seq = states[name]
        if not all(isinstance(v, Tensor) for v in seq):
            raise el.error(
                f"{name!r} changes inside a repeat but is not a tensor; only tensors may "
                "be carried through a repeat",
                s.loc,
            )
        picked = [seq[d] for d in depths]
        el.types.same_types(picked, [f"depth {d}" for d in depths], s.loc, "repeat")
        nid = el.add(
            RepeatChoice,
            [t.node for t in picked],
            type=picked[-1].type,
            label=label,
            depths=tuple(depths),
        )
        before[name][0].vars[name] = Tensor(node=nid, type=picked[-1].type)


def merge(el: Elaborator, items: Any, mode: str, loc: SourceLoc) -> Tensor:
    """``sum(items)`` or ``concat(items)`` of a list of tensors or of a pick."""
    if isinstance(items, PickValue):
        return _merge_pick(el, items, mode, loc)
    if not isinstance(items, list) or not items:
        raise el.error(f"{mode}() needs a non-empty list of tensors", loc)
    ts = [el.tensor(x, loc, f"each item of {mode}()") for x in items]
    if len(ts) == 1:
        return ts[0]
    ty = el.types.merged_type(ts, mode, loc, [f"item {i}" for i in range(len(ts))])
    nid = el.add(Merge, [t.node for t in ts], type=ty, mode=mode, loc=loc)
    return Tensor(node=nid, type=ty)


def _merge_pick(el: Elaborator, p: PickValue, mode: str, loc: SourceLoc) -> Tensor:
    p.consumed = True
    ts = p.items
    what = [f"input {i}" for i in range(len(ts))]
    if mode == "concat" and p.k_min != p.k_max:
        raise el.error("concat of a pick needs a fixed k (its channels would vary)", loc)
    ty = el.types.merged_type(ts[:1] * p.k_min if mode == "concat" else ts, mode, loc, what)
    if mode == "concat":
        el.types.same_types(ts, what, loc, "concat of a pick")
    el.labels.register(p.label, "input", tuple(range(len(ts))), p.loc, (p.k_min, p.k_max))
    nid = el.add(
        InputChoice,
        [t.node for t in ts],
        type=ty,
        label=p.label,
        n=len(ts),
        k_min=p.k_min,
        k_max=p.k_max,
        merge=mode,
        loc=loc,
    )
    return Tensor(node=nid, type=ty)


__all__ = ["choose_op", "choose_value", "map_pick", "merge", "pick", "repeat"]
