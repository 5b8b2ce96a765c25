"""Elaboration: run a ``.nas`` program to build the IR graph of a space.

Elaboration is an interpreter over the AST that never evaluates Python. Ops calls become IR
nodes; choices become choice nodes, and everything written inside a candidate gets a guard
saying when it exists. What a program may ask for is bounded (:class:`Limits`); a program that
exceeds a bound gets a located error, not a hang or a memory blow-up.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
from nasc.dsl import ast
from nasc.dsl.diagnostics import NasError, Note, Sources, did_you_mean
from nasc.dsl.modules import ANNOTATIONS, ModuleEnv
from nasc.dsl.values import (
    CALLABLES,
    BlockValue,
    BoundValue,
    BuiltinValue,
    ModuleValue,
    OpValue,
    PickValue,
    RangeValue,
    Tensor,
    callable_name,
    show,
    type_name,
)
from nasc.ir.dead import remove_dead
from nasc.ir.graph import Graph
from nasc.ir.guards import Atom, Guard
from nasc.ir.location import SourceLoc
from nasc.ir.nodes import (
    Align,
    Input,
    InputChoice,
    Merge,
    Op,
    OpChoice,
    Output,
    RepeatChoice,
    ValueChoice,
)
from nasc.ir.sym import Sym, evaluate, labels_of, same_value, sampled_assignments
from nasc.ir.types import Layout, TensorType


@attrs.frozen(kw_only=True)
class Limits:
    """Bounds on elaboration. Every one is checked where it could be exceeded."""

    max_nodes: int = 200_000
    max_steps: int = 1_000_000  # loop iterations, comprehension items and calls together
    max_alloc: int = 20_000_000  # list items and string characters created, in all
    max_call_depth: int = 64
    max_int: int = (1 << 63) - 1
    max_list: int = 100_000
    max_str: int = 10_000
    max_options: int = 10_000


class _Return(Exception):
    def __init__(self, value: Any) -> None:
        self.value = value


class Scope:
    """Variables of one ``{ ... }`` body; lookups walk to the enclosing bodies of one call."""

    __slots__ = ("vars", "parent")

    def __init__(self, parent: Scope | None = None) -> None:
        self.vars: dict[str, Any] = {}
        self.parent = parent

    def find(self, name: str) -> Scope | None:
        s: Scope | None = self
        while s is not None:
            if name in s.vars:
                return s
            s = s.parent
        return None

    def names(self) -> set[str]:
        out: set[str] = set()
        s: Scope | None = self
        while s is not None:
            out |= set(s.vars)
            s = s.parent
        return out


@attrs.define(kw_only=True)
class _LabelInfo:
    kind: str
    options: tuple[Any, ...]
    loc: SourceLoc
    extra: tuple[Any, ...] = ()


class Elaborator:
    """Builds one :class:`Graph` from one space definition."""

    def __init__(self, sources: Sources, limits: Limits | None = None) -> None:
        self.sources = sources
        self.limits = limits or Limits()
        self.graph = Graph()
        self.guard = Guard.TRUE
        self.labels: dict[str, _LabelInfo] = {}
        self.domains: dict[str, tuple[Any, ...]] = {}
        self.steps = 0
        self.alloc = 0
        self.depth = 0
        self.picks: list[PickValue] = []
        self.loc: SourceLoc | None = None
        self.outputs = 0
        self.toplevel = False

    # ---- errors and bounds -------------------------------------------------------------------
    def error(self, msg: str, loc: SourceLoc | None = None, notes: Sequence[Note] = ()) -> NasError:
        return self.sources.error(msg, loc or self.loc, notes)

    def _step(self, loc: SourceLoc | None = None) -> None:
        self.steps += 1
        if self.steps > self.limits.max_steps:
            raise self.error(
                f"elaboration takes over {self.limits.max_steps} steps (loop iterations and "
                "calls); the space is too large to build",
                loc,
            )

    def _add(self, cls: type, inputs: Sequence[int] = (), **fields: Any) -> int:
        if len(self.graph) >= self.limits.max_nodes:
            raise self.error(
                f"the space has over {self.limits.max_nodes} nodes; the limit keeps elaboration "
                "bounded"
            )
        fields.setdefault("guard", self.guard)
        fields.setdefault("loc", self.loc)
        return self.graph.add(cls, inputs, **fields)

    def _int(self, v: Any, loc: SourceLoc) -> Any:
        if isinstance(v, int) and not isinstance(v, bool) and abs(v) > self.limits.max_int:
            raise self.error(f"integer {v} exceeds the limit of {self.limits.max_int}", loc)
        return v

    # ---- entry -------------------------------------------------------------------------------
    def elaborate_space(
        self, env: ModuleEnv, space: ast.SpaceDef, params: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Run ``space`` with ``params`` (already checked); return the parameter values used."""
        scope = Scope()
        values = self._bind_params(
            space.params, (), dict(params), env, space.name, space.loc, partial_ok=False
        )
        scope.vars.update(values)
        self.loc = space.loc
        try:
            self.exec_body(space.body, scope, env)
        except _Return:
            raise self.error("'return' in a space; use 'output'") from None
        except RecursionError:
            raise self.error(
                "the program nests calls and expressions too deeply to elaborate; "
                "flatten it with 'let'"
            ) from None
        if self.outputs == 0:
            raise self.error(f"space {space.name!r} has no 'output'", space.loc)
        for p in self.picks:
            if not p.consumed:
                raise self.error(
                    "this pick is never merged: use it as sum(pick ...) or "
                    "concat([... for h in pick ...])",
                    p.loc,
                )
        remove_dead(self.graph)
        return values

    # ---- statements ----------------------------------------------------------------------------
    def exec_body(self, body: Sequence[ast.Stmt], scope: Scope, env: ModuleEnv) -> None:
        for stmt in body:
            self.loc = stmt.loc
            self.exec_stmt(stmt, scope, env)

    def exec_stmt(self, s: ast.Stmt, scope: Scope, env: ModuleEnv) -> None:
        if isinstance(s, ast.Let):
            for name, value in zip(s.targets, self._values(s, scope, env)):
                if name in scope.vars:
                    raise self.error(f"{name!r} is already defined here; use '{name} = ...'")
                scope.vars[name] = value
        elif isinstance(s, ast.Assign):
            for name, value in zip(s.targets, self._values(s, scope, env)):
                owner = scope.find(name)
                if owner is None and name in env.scope:
                    raise self.error(
                        f"{name!r} is a top-level definition and cannot be "
                        f"reassigned; use 'let {name} = ...' for a local copy"
                    )
                if owner is None:
                    hint = did_you_mean(name, scope.names())
                    raise self.error(f"assignment to undefined {name!r}; use 'let'{hint}")
                owner.vars[name] = value
        elif isinstance(s, ast.AugAssign):
            self._aug_assign(s, scope, env)
        elif isinstance(s, ast.For):
            self._for(s, scope, env)
        elif isinstance(s, ast.If):
            for test, body in s.branches:
                if self._truth(self.eval(test, scope, env), test.loc):
                    self.exec_body(body, Scope(scope), env)
                    return
            if s.orelse is not None:
                self.exec_body(s.orelse, Scope(scope), env)
        elif isinstance(s, ast.Return):
            vals = [self.eval(v, scope, env) for v in s.values]
            raise _Return(vals[0] if len(vals) == 1 else vals)
        elif isinstance(s, ast.InputStmt):
            self._input(s, scope, env)
        elif isinstance(s, ast.OutputStmt):
            self._output(s, scope, env)
        elif isinstance(s, ast.Repeat):
            self._repeat(s, scope, env)
        elif isinstance(s, ast.Assert):
            if not self._truth(self.eval(s.test, scope, env), s.test.loc):
                msg = "assertion failed"
                if s.message is not None:
                    msg += f": {self._text(self.eval(s.message, scope, env))}"
                raise self.error(msg)
        else:
            raise self.error(f"{type(s).__name__.lower()} is only allowed at the top level")

    def _values(self, s: ast.Let | ast.Assign, scope: Scope, env: ModuleEnv) -> list[Any]:
        vals = [self.eval(v, scope, env) for v in s.values]
        if len(s.targets) > 1 and len(vals) == 1:
            vals = self._unpack(vals[0], len(s.targets), s.loc)
        return vals

    def _unpack(self, v: Any, n: int, loc: SourceLoc) -> list[Any]:
        items = self._iterate(v, loc)
        if len(items) != n:
            raise self.error(f"cannot unpack {len(items)} values into {n} names", loc)
        return items

    def _aug_assign(self, s: ast.AugAssign, scope: Scope, env: ModuleEnv) -> None:
        owner = scope.find(s.target)
        if owner is None:
            raise self.error(f"{s.target!r} is not defined" + did_you_mean(s.target, scope.names()))
        old, rhs = owner.vars[s.target], self.eval(s.value, scope, env)
        if isinstance(old, list):
            if s.op != "+":
                raise self.error(f"'{s.op}=' on a list")
            new = old + (rhs if isinstance(rhs, list) else [rhs])
            self._check_len(new)
        else:
            new = self._binop(s.op, old, rhs, s.loc)
        owner.vars[s.target] = new

    def _for(self, s: ast.For, scope: Scope, env: ModuleEnv) -> None:
        it = self.eval(s.iter, scope, env)
        if isinstance(it, PickValue):
            raise self.error(
                "a pick is iterated inside a list, then merged: "
                'sum([f(h) for h in pick 2 of xs @"label"])',
                s.iter.loc,
            )
        for item in self._iterate(it, s.iter.loc):
            self._step(s.loc)
            inner = Scope(scope)
            self._bind_targets(inner, s.targets, item, s.loc)
            self.exec_body(s.body, inner, env)

    def _bind_targets(self, scope: Scope, targets: Sequence[str], item: Any, loc) -> None:
        if len(targets) == 1:
            scope.vars[targets[0]] = item
        else:
            scope.vars.update(zip(targets, self._unpack(item, len(targets), loc)))

    def _input(self, s: ast.InputStmt, scope: Scope, env: ModuleEnv) -> None:
        if not self.guard.is_true:
            raise self.error("'input' inside a choice")
        if scope.find(s.name) is not None:
            raise self.error(f"{s.name!r} is already defined")
        ty = self._type_expr(s.type, scope, env)
        nid = self._add(Input, type=ty, name=s.name)
        scope.vars[s.name] = Tensor(node=nid, type=ty)

    def _output(self, s: ast.OutputStmt, scope: Scope, env: ModuleEnv) -> None:
        value = self.eval(s.value, scope, env)
        t = self._tensor(value, s.value.loc, "'output'")
        if not self.guard.is_true:
            raise self.error("'output' inside a choice")
        name = s.name or ("out" if self.outputs == 0 else f"out{self.outputs}")
        if any(r.name == name for r in self.graph.nodes_of(Output)):
            raise self.error(f"two outputs named {name!r}")
        self._add(Output, [t.node], type=t.type, name=name)
        self.outputs += 1

    def _repeat(self, s: ast.Repeat, scope: Scope, env: ModuleEnv) -> None:
        depths = sorted({self._as_int(v, s.loc) for v in self._set_items(s.depths, scope, env)})
        if any(d < 0 for d in depths):
            raise self.error("repeat depths must be 0 or more", s.loc)
        label = self._label(s.label, scope, env)
        self._register(label, "repeat", tuple(depths), s.loc)
        before = _snapshot(scope)
        outer_guard = self.guard
        states: dict[str, list[Any]] = {}
        for i in range(max(depths)):
            self._step(s.loc)
            if i + 1 > depths[0]:
                self.guard = outer_guard & Guard.atom(Atom(label=label, test="ge", value=i + 1))
            inner = Scope(scope)
            if s.var is not None:
                inner.vars[s.var] = i
            try:
                self.exec_body(s.body, inner, env)
            finally:
                self.guard = outer_guard
            for name, (owner, _) in before.items():
                states.setdefault(name, [before[name][1]]).append(owner.vars[name])
        self.loc = s.loc
        changed = [n for n, seq in states.items() if any(v is not seq[0] for v in seq[1:])]
        if not changed:
            raise self.error("the repeated body changes no tensor outside it", s.loc)
        for name in changed:
            seq = states[name]
            if not all(isinstance(v, Tensor) for v in seq):
                raise self.error(
                    f"{name!r} changes inside a repeat but is not a tensor; only tensors may "
                    "be carried through a repeat",
                    s.loc,
                )
            picked = [seq[d] for d in depths]
            self._check_same_types(picked, [f"depth {d}" for d in depths], s.loc, "repeat")
            nid = self._add(
                RepeatChoice,
                [t.node for t in picked],
                type=picked[-1].type,
                label=label,
                depths=tuple(depths),
            )
            before[name][0].vars[name] = Tensor(node=nid, type=picked[-1].type)

    # ---- expressions ---------------------------------------------------------------------------
    def eval(self, e: ast.Expr, scope: Scope, env: ModuleEnv) -> Any:
        method = getattr(self, "_e_" + type(e).__name__)
        return method(e, scope, env)

    def _e_Num(self, e: ast.Num, scope, env):
        return e.value

    def _e_Bool(self, e: ast.Bool, scope, env):
        return e.value

    def _e_Str(self, e: ast.Str, scope, env):
        out = []
        for part in e.parts:
            out.append(part if isinstance(part, str) else self._text(self.eval(part, scope, env)))
        text = "".join(out)
        if len(text) > self.limits.max_str:
            raise self.error(f"string longer than {self.limits.max_str} characters", e.loc)
        self._check_len(text, e.loc)
        return text

    def _e_Name(self, e: ast.Name, scope: Scope, env: ModuleEnv):
        owner = scope.find(e.id)
        if owner is not None:
            return owner.vars[e.id]
        if e.id in env.scope:
            return self._global(env, e.id, e.loc)
        if e.id in BUILTINS:
            return BUILTINS[e.id]
        names = scope.names() | set(env.scope) | set(BUILTINS)
        raise self.error(f"{e.id!r} is not defined{did_you_mean(e.id, names)}", e.loc)

    def _global(self, env: ModuleEnv, name: str, loc: SourceLoc) -> Any:
        value = env.scope[name]
        if isinstance(value, _Pending):
            raise self.error(f"{name!r} is used before its 'let' runs", loc)
        return value

    def _e_ListExpr(self, e: ast.ListExpr, scope, env):
        out = [self.eval(x, scope, env) for x in e.items]
        self._check_len(out, e.loc)
        return out

    def _e_Comprehension(self, e: ast.Comprehension, scope: Scope, env: ModuleEnv):
        it = self.eval(e.iter, scope, env)
        if isinstance(it, PickValue):
            return self._map_pick(e, it, scope, env)
        out = []
        for item in self._iterate(it, e.iter.loc):
            self._step(e.loc)
            inner = Scope(scope)
            self._bind_targets(inner, e.targets, item, e.loc)
            if e.cond is not None and not self._truth(self.eval(e.cond, inner, env), e.cond.loc):
                continue
            out.append(self.eval(e.elt, inner, env))
            self._check_len(out, e.loc)
        return out

    def _map_pick(self, e: ast.Comprehension, p: PickValue, scope: Scope, env: ModuleEnv):
        if e.cond is not None:
            raise self.error("a list over a pick cannot filter with 'if'", e.cond.loc)
        if len(e.targets) != 1:
            raise self.error("a list over a pick binds one name", e.loc)
        p.consumed = True
        outer = self.guard
        items = []
        for i, item in enumerate(p.items):
            self._step(e.loc)
            self.guard = outer & Guard.atom(Atom(label=p.label, test="has", value=i))
            inner = Scope(scope)
            inner.vars[e.targets[0]] = item
            try:
                value = self.eval(e.elt, inner, env)
            finally:
                self.guard = outer
            t = self._tensor(value, e.elt.loc, "each member of a pick")
            items.append(attrs.evolve(t, index=i))
        out = PickValue(label=p.label, k_min=p.k_min, k_max=p.k_max, items=items, loc=p.loc)
        self.picks.append(out)
        return out

    def _e_CondExpr(self, e: ast.CondExpr, scope, env):
        test = self._truth(self.eval(e.test, scope, env), e.test.loc)
        return self.eval(e.then if test else e.orelse, scope, env)

    def _e_Unary(self, e: ast.Unary, scope, env):
        v = self.eval(e.operand, scope, env)
        if e.op == "not":
            return not self._truth(v, e.operand.loc)
        if isinstance(v, bool) or not isinstance(v, int | float | Sym):
            raise self.error(f"cannot negate {type_name(v)}", e.loc)
        return -v

    def _e_BinOp(self, e: ast.BinOp, scope, env):
        if e.op == "and":
            return self._truth(self.eval(e.left, scope, env), e.left.loc) and self._truth(
                self.eval(e.right, scope, env), e.right.loc
            )
        if e.op == "or":
            return self._truth(self.eval(e.left, scope, env), e.left.loc) or self._truth(
                self.eval(e.right, scope, env), e.right.loc
            )
        return self._binop(
            e.op, self.eval(e.left, scope, env), self.eval(e.right, scope, env), e.loc
        )

    def _binop(self, op: str, a: Any, b: Any, loc: SourceLoc) -> Any:
        if op == "..":
            return RangeValue(start=self._as_int(a, loc), stop=self._as_int(b, loc))
        if op in ("in", "not in"):
            if isinstance(b, RangeValue):
                found = isinstance(a, int) and b.start <= a < b.stop
            elif isinstance(b, list | str):
                found = a in b if isinstance(b, list) else self._text(a) in b
            else:
                raise self.error(f"'in' needs a list, range or string, got {type_name(b)}", loc)
            return found if op == "in" else not found
        if op in ("==", "!="):
            if isinstance(a, Sym) or isinstance(b, Sym):
                raise self._sym_structure(loc)
            eq = _equal(a, b)
            return eq if op == "==" else not eq
        if isinstance(a, Tensor) and isinstance(b, Tensor) and op == "+":
            return self._merge([a, b], "sum", loc)
        if op == "+" and isinstance(a, list) and isinstance(b, list):
            out = a + b
            self._check_len(out, loc)
            return out
        if op == "+" and isinstance(a, str) and isinstance(b, str):
            if len(a) + len(b) > self.limits.max_str:
                raise self.error(f"string longer than {self.limits.max_str} characters", loc)
            self._check_len(a + b, loc)
            return a + b
        if not _is_num(a) or not _is_num(b):
            raise self.error(f"cannot apply '{op}' to {type_name(a)} and {type_name(b)}", loc)
        if op in ("<", "<=", ">", ">="):
            if isinstance(a, Sym) or isinstance(b, Sym):
                raise self._sym_structure(loc)
        if op in ("//", "%", "/") and not isinstance(b, Sym) and b == 0:
            raise self.error("division by zero", loc)
        if op in ("//", "%", "/") and isinstance(b, Sym):
            for env in sampled_assignments(b.labels(), self.domains, 4096):
                if self._sym_value(b, env, loc) == 0:
                    when = ", ".join(f"{k}={show(val)}" for k, val in env.items())
                    raise self.error(f"division by zero when {when}", loc)
        if op == "//" and isinstance(a, float | int) and isinstance(b, float):
            pass
        result = Sym.binary(op, a, b)
        if isinstance(result, float) and not math.isfinite(result):
            raise self.error(f"'{op}' gives {result}; numbers must stay finite", loc)
        return self._int(result, loc)

    def _sym_structure(self, loc: SourceLoc) -> NasError:
        return self.error(
            "a value choice cannot decide structure (conditions, loop bounds, comparisons); "
            "use an op choice, 'optional' or 'repeat'",
            loc,
        )

    def _e_Call(self, e: ast.Call, scope, env):
        fn = self.eval(e.func, scope, env)
        args = [self.eval(a, scope, env) for a in e.args]
        kwargs = {k: self.eval(v, scope, env) for k, v in e.kwargs}
        return self.call(fn, args, kwargs, e.loc)

    def _e_Index(self, e: ast.Index, scope, env):
        obj = self.eval(e.obj, scope, env)
        idx = self.eval(e.index, scope, env)
        if isinstance(obj, RangeValue):
            obj = range(obj.start, obj.stop)
        if not isinstance(obj, list | str | range):
            raise self.error(f"cannot index {type_name(obj)}", e.loc)
        i = self._as_int(idx, e.index.loc)
        if not -len(obj) <= i < len(obj):
            raise self.error(f"index {i} out of range for length {len(obj)}", e.index.loc)
        return obj[i]

    def _e_Slice(self, e: ast.Slice, scope, env):
        obj = self.eval(e.obj, scope, env)
        if isinstance(obj, RangeValue):
            obj = range(obj.start, obj.stop)
        if not isinstance(obj, list | str | range):
            raise self.error(f"cannot slice {type_name(obj)}", e.loc)
        lo = None if e.lo is None else self._as_int(self.eval(e.lo, scope, env), e.lo.loc)
        hi = None if e.hi is None else self._as_int(self.eval(e.hi, scope, env), e.hi.loc)
        part = obj[lo:hi]
        if isinstance(part, range):
            if part.step != 1:  # pragma: no cover - slices have no step in .nas
                raise self.error("ranges have step 1", e.loc)
            return RangeValue(start=part.start, stop=max(part.start, part.stop))
        return part

    def _e_Bind(self, e: ast.Bind, scope, env):
        fn = self.eval(e.obj, scope, env)
        if not isinstance(fn, CALLABLES):
            raise self.error(f"cannot bind arguments of {type_name(fn)}", e.loc)
        kwargs = tuple((k, self.eval(v, scope, env)) for k, v in e.kwargs)
        if isinstance(fn, BoundValue):
            merged = dict(fn.kwargs)
            merged.update(kwargs)
            return BoundValue(fn=fn.fn, kwargs=tuple(merged.items()))
        return BoundValue(fn=fn, kwargs=kwargs)

    def _e_Attr(self, e: ast.Attr, scope, env):
        obj = self.eval(e.obj, scope, env)
        if isinstance(obj, Tensor):
            if e.name == "channels":
                return obj.type.channels
            if e.name == "stride":
                return obj.type.stride
            if e.name == "layout":
                return obj.type.layout.value
            if e.name == "index":
                if obj.index is None:
                    raise self.error("'.index' exists only on members of a pick", e.loc)
                return obj.index
            raise self.error(
                f"a tensor has no {e.name!r}"
                + did_you_mean(e.name, ["channels", "stride", "layout", "index"]),
                e.loc,
            )
        if isinstance(obj, ModuleValue):
            if e.name not in obj.env.scope:
                hint = did_you_mean(e.name, obj.env.scope)
                raise self.error(f"module {obj.name!r} has no {e.name!r}{hint}", e.loc)
            return obj.env.scope[e.name]
        if isinstance(obj, PickValue) and e.name in ("k",):
            return obj.k_min
        raise self.error(f"{type_name(obj)} has no attribute {e.name!r}", e.loc)

    def _e_ChooseValue(self, e: ast.ChooseValue, scope, env):
        self._no_toplevel_choice(e.loc)
        values = tuple(self._set_items(e.values, scope, env))
        for v in values:
            if not isinstance(v, int | float | str | bool):
                raise self.error(f"a value choice needs plain values, got {type_name(v)}", e.loc)
        if len(set(values)) != len(values):
            raise self.error("a value choice lists a value twice", e.loc)
        self._check_options(values, e.loc)
        label = self._label(e.label, scope, env)
        self._register(label, "value", values, e.loc)
        self.domains[label] = values
        self._add(ValueChoice, type=None, label=label, values=values, loc=e.loc)
        return Sym.var(label)

    def _e_ChooseOp(self, e: ast.ChooseOp, scope, env):
        self._no_toplevel_choice(e.loc)
        cands = self.eval(e.candidates, scope, env)
        if isinstance(cands, CALLABLES):
            cands = [cands]
        if not isinstance(cands, list) or not cands:
            raise self.error(
                "candidates of a choice must be a non-empty list of ops or blocks", e.candidates.loc
            )
        for c in cands:
            if not isinstance(c, CALLABLES):
                raise self.error(f"candidate {show(c)} is not an op or a block", e.candidates.loc)
        args = [self.eval(a, scope, env) for a in e.args]
        kwargs = {k: self.eval(v, scope, env) for k, v in e.kwargs}
        names = [callable_name(c) for c in cands]
        if e.optional:
            if len(cands) != 1:
                raise self.error("'optional' takes one op or block", e.candidates.loc)
            names = ["skip"] + names
        if len(set(names)) != len(names):
            dup = next(n for n in names if names.count(n) > 1)
            raise self.error(f"candidate {dup!r} is listed twice", e.candidates.loc)
        self._check_options(names, e.loc)
        label = self._label(e.label, scope, env)
        self._register(label, "op", tuple(names), e.loc)
        outer = self.guard
        results: list[Tensor] = []
        for name in names:
            self.guard = outer & Guard.atom(Atom(label=label, test="eq", value=name))
            try:
                if name == "skip" and e.optional:
                    if not args or not isinstance(args[0], Tensor):
                        raise self.error("'optional' needs a tensor as first argument", e.loc)
                    value = args[0]
                else:
                    value = self.call(cands[names.index(name) - e.optional], args, kwargs, e.loc)
            finally:
                self.guard = outer
            results.append(self._tensor(value, e.loc, f"candidate {name!r}"))
        self.loc = e.loc
        self._check_same_types(results, [f"candidate {n!r}" for n in names], e.loc, "choice")
        nid = self._add(
            OpChoice,
            [t.node for t in results],
            type=results[0].type,
            label=label,
            options=tuple(names),
            loc=e.loc,
        )
        return Tensor(node=nid, type=results[0].type)

    def _e_Pick(self, e: ast.Pick, scope, env):
        self._no_toplevel_choice(e.loc)
        items = self.eval(e.items, scope, env)
        if not isinstance(items, list) or not items:
            raise self.error("'pick' needs a non-empty list of tensors", e.items.loc)
        tensors = [self._tensor(x, e.items.loc, "each item of a pick") for x in items]
        n = len(tensors)
        if e.k is None:
            k_min, k_max = 1, n
        else:
            k = self.eval(e.k, scope, env)
            if isinstance(k, RangeValue):
                k_min, k_max = k.start, k.stop - 1
            else:
                k_min = k_max = self._as_int(k, e.k.loc)
        if not 1 <= k_min <= k_max <= n:
            raise self.error(f"cannot pick {k_min}..{k_max} of {n} inputs", e.loc)
        label = self._label(e.label, scope, env)
        self._check_options(range(n), e.loc)
        p = PickValue(
            label=label,
            k_min=k_min,
            k_max=k_max,
            loc=e.loc,
            items=[attrs.evolve(t, index=i) for i, t in enumerate(tensors)],
        )
        self.picks.append(p)
        return p

    def _sym_value(self, v: Sym, env: dict[str, Any], loc: SourceLoc) -> Any:
        try:
            return v.evaluate(env)
        except ZeroDivisionError:
            when = ", ".join(f"{k}={show(val)}" for k, val in env.items())
            raise self.error(f"division by zero when {when}", loc) from None

    def _no_toplevel_choice(self, loc: SourceLoc) -> None:
        if self.toplevel:
            raise self.error(
                "a choice at the top level; write it inside a space or block "
                "(a label shared by several places is one decision anyway)",
                loc,
            )

    def _set_items(self, exprs: Sequence[ast.Expr], scope: Scope, env: ModuleEnv) -> list[Any]:
        """The members of ``{a, b..c, xs}``: ranges and lists are spliced in."""
        out: list[Any] = []
        for x in exprs:
            v = self.eval(x, scope, env)
            out.extend(self._iterate(v, x.loc) if isinstance(v, RangeValue | list) else [v])
            self._check_options(out, x.loc)
        return out

    # ---- calls ---------------------------------------------------------------------------------
    def call(self, fn: Any, args: list[Any], kwargs: dict[str, Any], loc: SourceLoc) -> Any:
        self._step(loc)
        if isinstance(fn, BoundValue):
            merged = dict(fn.kwargs)
            for k in kwargs:
                if k in merged:
                    raise self.error(f"argument {k!r} is already bound in {fn.name}", loc)
            merged.update(kwargs)
            return self.call(fn.fn, args, merged, loc)
        if isinstance(fn, BuiltinValue):
            return fn.fn(self, args, kwargs, loc)
        if isinstance(fn, OpValue):
            return self._call_op(fn, args, kwargs, loc)
        if isinstance(fn, BlockValue):
            return self._call_block(fn, args, kwargs, loc)
        raise self.error(f"{show(fn)} ({type_name(fn)}) is not callable", loc)

    def _call_op(self, fn: OpValue, args, kwargs, loc: SourceLoc) -> Tensor:
        d = fn.decl
        bound = self._bind_params(d.params, args, kwargs, fn.module, d.name, loc)
        scope = Scope()
        scope.vars.update(bound)
        saved = self.loc
        self._check_requirements(d, bound, fn.module, loc)
        try:
            ty = self._type_expr(d.out, scope, fn.module)
        except NasError as e:
            raise self.error(
                f"{d.name}: {e.message}",
                loc,
                [self.sources.note(e.loc, f"in the declaration of {d.name!r}")],
            ) from None
        self.loc = saved
        inputs = [v.node for v in bound.values() if isinstance(v, Tensor)]
        params = tuple((k, _freeze(v)) for k, v in bound.items() if not isinstance(v, Tensor))
        nid = self._add(Op, inputs, type=ty, op=d.name, params=params, loc=loc)
        return Tensor(node=nid, type=ty)

    def _check_requirements(self, d: ast.OpDecl, bound: dict[str, Any], module, loc) -> None:
        """Check ``require`` clauses, under every decision of the value choices involved.

        A clause is split at its top-level ``and``s and each part is checked over the value
        choices of the parameters it names only: ``c3 >= 0 and c5 >= 0`` is two checks over
        one label each, not one over their product (which a wide search block makes huge).
        """
        for req in d.requires:
            for part in _conjuncts(req.test):
                names = _names(part)
                used = [v for k, v in bound.items() if k in names]
                labels = labels_of(
                    tuple(v.type.channels if isinstance(v, Tensor) else v for v in used))
                labels |= labels_of(tuple(v.type.stride for v in used if isinstance(v, Tensor)))
                envs = sampled_assignments(labels, self.domains, 4096) if labels else [{}]
                for env in envs:
                    scope = Scope()
                    for k, v in bound.items():
                        if k not in names:
                            continue
                        if isinstance(v, Tensor):
                            v = attrs.evolve(
                                v,
                                type=attrs.evolve(
                                    v.type,
                                    channels=evaluate(v.type.channels, env),
                                    stride=evaluate(v.type.stride, env),
                                ),
                            )
                        scope.vars[k] = evaluate(v, env) if not isinstance(v, list) else v
                    if self._truth(self.eval(part, scope, module), part.loc):
                        continue
                    msg = req.message or f"requirement of {d.name!r} does not hold"
                    detail = ", ".join(f"{k}={show(v)}" for k, v in scope.vars.items())
                    when = f" when {', '.join(f'{k}={v}' for k, v in env.items())}" if env else ""
                    raise self.error(
                        f"{d.name}: {msg} ({detail}){when}",
                        loc,
                        [self.sources.note(req.test.loc, "required here")],
                    )

    def _call_block(self, fn: BlockValue, args, kwargs, loc: SourceLoc) -> Any:
        d = fn.decl
        if isinstance(d, ast.SpaceDef):
            raise self.error(f"{d.name!r} is a space; only blocks and ops can be called", loc)
        bound = self._bind_params(d.params, args, kwargs, fn.module, d.name, loc)
        if self.depth >= self.limits.max_call_depth:
            raise self.error(f"calls nested deeper than {self.limits.max_call_depth}", loc)
        scope = Scope()
        scope.vars.update(bound)
        self.depth += 1
        saved = self.loc
        try:
            self.exec_body(d.body, scope, fn.module)
            result = None
        except _Return as r:
            result = r.value
        finally:
            self.depth -= 1
            self.loc = saved
        return result

    def _bind_params(self, params, args, kwargs, module, fname, loc, partial_ok=False):
        names = [p.name for p in params]
        if len(args) > len(params):
            raise self.error(f"{fname} takes {len(params)} arguments, got {len(args)}", loc)
        values: dict[str, Any] = dict(zip(names, args))
        for k, v in kwargs.items():
            if k not in names:
                raise self.error(f"{fname} has no parameter {k!r}{did_you_mean(k, names)}", loc)
            if k in values:
                raise self.error(f"{fname}: argument {k!r} given twice", loc)
            values[k] = v
        scope = Scope()
        out: dict[str, Any] = {}
        for p in params:
            if p.name in values:
                v = values[p.name]
            elif p.default is not None:
                scope.vars.update(values)
                scope.vars.update(out)
                v = self.eval(p.default, scope, module)
            else:
                raise self.error(f"{fname}: missing argument {p.name!r}", loc)
            if p.ann is not None:
                v = self._check_ann(v, p.ann, f"{fname}: {p.name!r}", loc)
            out[p.name] = v
        return out

    def _check_ann(self, v: Any, ann: ast.TypeAnn, what: str, loc: SourceLoc) -> Any:
        ok: bool
        n = ann.name
        if ann.values:
            return self._check_enum(v, ann, what, loc)
        if isinstance(v, Sym) and n in ("int", "float", "bool", "str"):
            return self._check_sym_ann(v, n, what, loc)
        if n == "int":
            ok = (isinstance(v, int) and not isinstance(v, bool)) or isinstance(v, Sym)
        elif n == "float":
            ok = _is_num(v)
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
                v = [self._check_ann(x, ann.arg, what + " item", loc) for x in v]
        elif n == "any":
            ok = True
        else:
            raise self.error(  # (annotations are checked when a module loads; defensive)
                f"unknown type {n!r} in annotation of {what}{did_you_mean(n, ANNOTATIONS)}", loc
            )
        if not ok:
            shown = "" if isinstance(v, Tensor) else f" {show(v)}"
            raise self.error(f"{what} must be {ann}, got {type_name(v)}{shown}", loc)
        return v

    def _check_enum(self, v: Any, ann: ast.TypeAnn, what: str, loc: SourceLoc) -> Any:
        """A parameter of an enumerated type takes one of its values (a value choice: every
        value the choice can take is one)."""

        def member(x: Any) -> bool:
            return not isinstance(x, bool) and isinstance(x, str | int) and x in ann.values

        allowed = f"one of {', '.join(ast.enum_literal(x) for x in ann.values)}"
        if isinstance(v, Sym):
            for env in sampled_assignments(v.labels(), self.domains, 4096):
                x = self._sym_value(v, env, loc)
                if not member(x):
                    when = ", ".join(f"{k}={show(val)}" for k, val in env.items())
                    raise self.error(f"{what} must be {allowed}, but is {show(x)} when {when}", loc)
            return v
        if not member(v):
            shown = "" if isinstance(v, Tensor) else f" {show(v)}"
            raise self.error(f"{what} must be {allowed}; got {type_name(v)}{shown}", loc)
        return v

    def _check_sym_ann(self, v: Sym, n: str, what: str, loc: SourceLoc) -> Sym:
        """A value choice fits a parameter when every value it can take does."""
        kinds = {"int": (int,), "float": (int, float), "bool": (bool,), "str": (str,)}[n]
        for lab in v.labels():
            for x in self.domains.get(lab, ()):
                if not isinstance(x, kinds) or (n in ("int", "float") and isinstance(x, bool)):
                    raise self.error(
                        f"{what} must be {n}, but value choice {lab!r} can be {show(x)}", loc
                    )
        return v

    def _type_expr(self, t: ast.TypeExpr, scope: Scope, env: ModuleEnv) -> TensorType:
        args = [self.eval(a, scope, env) for a in t.args]
        kwargs = {k: self.eval(v, scope, env) for k, v in t.kwargs}
        if t.name == "like":
            if len(args) != 1 or not isinstance(args[0], Tensor):
                raise self.error("like(x, ...) takes one tensor", t.loc)
            ty = args[0].type
            for k, v in kwargs.items():
                if k not in ("channels", "stride"):
                    raise self.error(f"like() has no field {k!r}", t.loc)
                ty = attrs.evolve(ty, **{k: self._dim(v, t.loc, k)})
            return ty
        if t.name not in ("image", "vector", "tokens"):
            raise self.error(
                f"unknown tensor type {t.name!r}"
                + did_you_mean(t.name, ["image", "vector", "tokens", "like"]),
                t.loc,
            )
        fields = dict(zip(("channels", "stride"), args))
        fields.update(kwargs)
        if "channels" not in fields:
            raise self.error(f"{t.name}(...) needs a channel count", t.loc)
        ch = self._dim(fields["channels"], t.loc, "channels")
        if t.name == "vector":
            return TensorType.vector(ch)
        stride = self._dim(fields.get("stride", 1), t.loc, "stride")
        return TensorType(layout=Layout(t.name), channels=ch, stride=stride)

    def _dim(self, v: Any, loc: SourceLoc, what: str) -> Any:
        if isinstance(v, Sym):
            for env in sampled_assignments(v.labels(), self.domains, 4096):
                x = self._sym_value(v, env, loc)
                if not isinstance(x, int) or isinstance(x, bool) or x < 1:
                    when = ", ".join(f"{k}={show(val)}" for k, val in env.items())
                    raise self.error(
                        f"{what} must be a positive integer, but is {show(x)} when {when}", loc
                    )
            return v
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise self.error(f"{what} must be a positive integer, got {show(v)}", loc)
        return v

    # ---- merges and helpers ----------------------------------------------------------------
    def _merge(self, items: Any, mode: str, loc: SourceLoc) -> Tensor:
        if isinstance(items, PickValue):
            return self._merge_pick(items, mode, loc)
        if not isinstance(items, list) or not items:
            raise self.error(f"{mode}() needs a non-empty list of tensors", loc)
        ts = [self._tensor(x, loc, f"each item of {mode}()") for x in items]
        if len(ts) == 1:
            return ts[0]
        ty = self._merged_type(ts, mode, loc, [f"item {i}" for i in range(len(ts))])
        nid = self._add(Merge, [t.node for t in ts], type=ty, mode=mode, loc=loc)
        return Tensor(node=nid, type=ty)

    def _merge_pick(self, p: PickValue, mode: str, loc: SourceLoc) -> Tensor:
        p.consumed = True
        ts = p.items
        what = [f"input {i}" for i in range(len(ts))]
        if mode == "concat" and p.k_min != p.k_max:
            raise self.error("concat of a pick needs a fixed k (its channels would vary)", loc)
        ty = self._merged_type(ts[:1] * p.k_min if mode == "concat" else ts, mode, loc, what)
        if mode == "concat":
            self._check_same_types(ts, what, loc, "concat of a pick")
        self._register(p.label, "input", tuple(range(len(ts))), p.loc, (p.k_min, p.k_max))
        nid = self._add(
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

    def _merged_type(self, ts: list[Tensor], mode: str, loc, what: list[str]) -> TensorType:
        if mode == "sum":
            self._check_same_types(ts, what, loc, "sum")
            return ts[0].type
        first = ts[0].type
        for t, w in zip(ts[1:], what[1:]):
            if t.type.layout != first.layout or not same_value(
                t.type.stride, first.stride, self.domains
            ):
                raise self._type_mismatch("concat", ts[0], t, what[0], w, loc)
        total = first.channels
        for t in ts[1:]:
            total = total + t.type.channels
        return first.with_channels(total)

    def _check_same_types(self, ts: list[Tensor], what: list[str], loc, ctx: str) -> None:
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
                raise self._type_mismatch(ctx, ts[0], t, what[0], w, loc)

    def _type_mismatch(self, ctx, a: Tensor, b: Tensor, wa: str, wb: str, loc) -> NasError:
        la, lb = self.graph[a.node].loc, self.graph[b.node].loc
        notes = [
            self.sources.note(la, f"{wa} has type {a.type}"),
            self.sources.note(lb, f"{wb} has type {b.type}"),
        ]
        return self.error(
            f"{ctx} of tensors with different types: {wa} is {a.type}, {wb} is {b.type}", loc, notes
        )

    def _register(
        self, label: str, kind: str, options: tuple, loc: SourceLoc, extra: tuple = ()
    ) -> None:
        info = self.labels.get(label)
        if info is None:
            self.labels[label] = _LabelInfo(kind=kind, options=options, loc=loc, extra=extra)
            return
        if info.kind != kind or info.options != options or info.extra != extra:
            raise self.error(
                f"label {label!r} names two different decisions: a {kind} choice of "
                f"{_opts(options)} here, a {info.kind} choice of {_opts(info.options)} before",
                loc,
                [self.sources.note(info.loc, "first used here")],
            )

    def _label(self, s: ast.Str, scope: Scope, env: ModuleEnv) -> str:
        label = self._e_Str(s, scope, env)
        if not label or any(c in label for c in "\n\"'"):
            raise self.error(f"invalid label {label!r}", s.loc)
        return label

    def _check_options(self, options: Any, loc: SourceLoc) -> None:
        if len(options) > self.limits.max_options:
            raise self.error(f"a choice with over {self.limits.max_options} options", loc)

    def _check_len(self, v: list | str, loc: SourceLoc | None = None) -> None:
        if isinstance(v, list) and len(v) > self.limits.max_list:
            raise self.error(f"a list longer than {self.limits.max_list} items", loc)
        self.alloc += len(v)
        if self.alloc > self.limits.max_alloc:
            raise self.error(
                f"elaboration built over {self.limits.max_alloc} list items and string "
                "characters; the space is too large to build",
                loc,
            )

    def _tensor(self, v: Any, loc: SourceLoc, what: str) -> Tensor:
        if not isinstance(v, Tensor):
            raise self.error(f"{what} must be a tensor, got {type_name(v)}", loc)
        return v

    def _truth(self, v: Any, loc: SourceLoc) -> bool:
        if isinstance(v, Sym):
            raise self._sym_structure(loc)
        if not isinstance(v, bool):
            raise self.error(f"a condition must be true or false, got {type_name(v)}", loc)
        return v

    def _as_int(self, v: Any, loc: SourceLoc) -> int:
        if isinstance(v, Sym):
            raise self._sym_structure(loc)
        if not isinstance(v, int) or isinstance(v, bool):
            raise self.error(f"expected an integer, got {type_name(v)} {show(v)}", loc)
        return v

    def _text(self, v: Any) -> str:
        if isinstance(v, str):
            return v
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float | Sym):
            return str(v)
        raise self.error(f"cannot put {type_name(v)} into a string")

    def _iterate(self, v: Any, loc: SourceLoc) -> list[Any]:
        if isinstance(v, RangeValue):
            if len(v) > self.limits.max_list:
                raise self.error(f"a range of {len(v)} items exceeds {self.limits.max_list}", loc)
            return list(range(v.start, v.stop))
        if isinstance(v, list):
            return v
        if isinstance(v, str):
            return list(v)
        raise self.error(f"cannot iterate over {type_name(v)}", loc)


class _Pending:
    """Marks a module ``let`` that has not run yet."""


def _snapshot(scope: Scope) -> dict[str, tuple[Scope, Any]]:
    out: dict[str, tuple[Scope, Any]] = {}
    s: Scope | None = scope
    while s is not None:
        for k, v in s.vars.items():
            out.setdefault(k, (s, v))
        s = s.parent
    return out


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, Tensor) and isinstance(b, Tensor):
        return a.node == b.node
    if isinstance(a, CALLABLES) or isinstance(b, CALLABLES):
        return a is b
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    return bool(a == b)


def _is_num(v: Any) -> bool:
    return (isinstance(v, int | float) and not isinstance(v, bool)) or isinstance(v, Sym)


def _freeze(v: Any) -> Any:
    if isinstance(v, list):
        return tuple(_freeze(x) for x in v)
    if isinstance(v, CALLABLES):
        return callable_name(v)
    if isinstance(v, RangeValue):
        return tuple(range(v.start, v.stop))
    return v


def _sym_labels(v: Any) -> frozenset[str]:
    from nasc.ir.sym import labels_of

    return labels_of(v)


def _opts(options: tuple) -> str:
    shown = ", ".join(show(o) for o in options[:6])
    return "{" + shown + (", ..." if len(options) > 6 else "") + "}"


# ---- builtins ------------------------------------------------------------------------------
def _b_sum(el: Elaborator, args, kwargs, loc):
    _arity(el, "sum", args, kwargs, 1, loc)
    return el._merge(args[0], "sum", loc)


def _b_concat(el: Elaborator, args, kwargs, loc):
    _arity(el, "concat", args, kwargs, 1, loc)
    return el._merge(args[0], "concat", loc)


def _b_len(el: Elaborator, args, kwargs, loc):
    _arity(el, "len", args, kwargs, 1, loc)
    v = args[0]
    if isinstance(v, list | str | RangeValue):
        return len(v)
    raise el.error(f"len() of {type_name(v)}", loc)


def _b_minmax(name):
    def f(el: Elaborator, args, kwargs, loc):
        if kwargs:
            raise el.error(f"{name}() takes no keyword arguments", loc)
        vals = el._iterate(args[0], loc) if len(args) == 1 else args
        if not vals:
            raise el.error(f"{name}() of nothing", loc)
        out = vals[0]
        for v in vals[1:]:
            if not _is_num(v) or not _is_num(out):
                raise el.error(f"{name}() of {type_name(v)}", loc)
            out = Sym.binary(name, out, v)
        return out

    return f


def _b_align(el: Elaborator, args, kwargs, loc):
    if len(args) != 1 or not isinstance(args[0], Tensor):
        raise el.error("align(x, channels=..., stride=..., policy=...) takes one tensor", loc)
    x = args[0]
    extra = set(kwargs) - {"channels", "stride", "policy"}
    if extra:
        raise el.error(f"align() has no argument {sorted(extra)[0]!r}", loc)
    ty = x.type
    if "channels" in kwargs:
        ty = ty.with_channels(el._dim(kwargs["channels"], loc, "channels"))
    if "stride" in kwargs:
        ty = attrs.evolve(ty, stride=el._dim(kwargs["stride"], loc, "stride"))
    policy = kwargs.get("policy")
    if policy is not None:
        from nasc.ir.passes.align import POLICIES  # lazily: the passes need not load with dsl

        if not isinstance(policy, str) or policy not in POLICIES:
            known = ", ".join(f'"{k}"' for k in sorted(POLICIES))
            raise el.error(f"align(policy=...) must be one of {known}; got {show(policy)}", loc)
    if ty == x.type:
        return x
    nid = el._add(Align, [x.node], type=ty, policy=policy, loc=loc)
    return Tensor(node=nid, type=ty)


def _b_identity(el: Elaborator, args, kwargs, loc):
    if len(args) < 1 or not isinstance(args[0], Tensor):
        raise el.error("identity(x) takes a tensor", loc)
    return args[0]


def _b_enumerate(el: Elaborator, args, kwargs, loc):
    _arity(el, "enumerate", args, kwargs, 1, loc)
    return [[i, v] for i, v in enumerate(el._iterate(args[0], loc))]


def _b_zip(el: Elaborator, args, kwargs, loc):
    lists = [el._iterate(a, loc) for a in args]
    return [list(t) for t in zip(*lists)]


def _b_str(el: Elaborator, args, kwargs, loc):
    _arity(el, "str", args, kwargs, 1, loc)
    return el._text(args[0])


def _b_int(el: Elaborator, args, kwargs, loc):
    _arity(el, "int", args, kwargs, 1, loc)
    v = args[0]
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise el.error(f"int() of {type_name(v)}", loc)
    if isinstance(v, float) and not math.isfinite(v):
        raise el.error(f"int() of {v}", loc)
    return el._int(int(v), loc)


def _arity(el: Elaborator, name: str, args, kwargs, n: int, loc) -> None:
    if len(args) != n or kwargs:
        raise el.error(f"{name}() takes {n} argument{'s' if n > 1 else ''}", loc)


BUILTINS: dict[str, BuiltinValue] = {
    name: BuiltinValue(name=name, fn=fn)
    for name, fn in {
        "sum": _b_sum,
        "concat": _b_concat,
        "len": _b_len,
        "min": _b_minmax("min"),
        "max": _b_minmax("max"),
        "align": _b_align,
        "identity": _b_identity,
        "enumerate": _b_enumerate,
        "zip": _b_zip,
        "str": _b_str,
        "int": _b_int,
    }.items()
}


def run_module_lets(el: Elaborator, env: ModuleEnv) -> None:
    """Evaluate the top-level ``let`` constants of ``env``, in order."""
    lets = [item for item in env.ast.items if isinstance(item, ast.Let)]
    for item in lets:
        for name in item.targets:
            if name in env.scope:
                first = env.origin.get(name)
                notes = [el.sources.note(first.loc, "first defined here")] if first else []
                raise el.error(f"{name!r} is defined twice", item.loc, notes)
            env.scope[name] = _Pending()
            env.origin[name] = item
    for item in lets:
        el.loc = item.loc
        el.toplevel = True
        try:
            values = el._values(item, Scope(), env)
        finally:
            el.toplevel = False
        for name, v in zip(item.targets, values):
            if isinstance(v, Tensor | PickValue):
                raise el.error("a top-level 'let' cannot hold a tensor", item.loc)
            env.scope[name] = v
            env.defs[name] = v


__all__ = ["BUILTINS", "Elaborator", "Limits", "run_module_lets"]


def _conjuncts(e: ast.Expr) -> list[ast.Expr]:
    """``a and b and c`` as ``[a, b, c]`` (any other expression as itself)."""
    if isinstance(e, ast.BinOp) and e.op == "and":
        return _conjuncts(e.left) + _conjuncts(e.right)
    return [e]


def _names(e: Any) -> set[str]:
    """Every name an expression reads (through all its sub-expressions)."""
    if isinstance(e, ast.Name):
        return {e.id}
    out: set[str] = set()
    if attrs.has(type(e)):
        for f in attrs.fields(type(e)):
            out |= _names(getattr(e, f.name))
    elif isinstance(e, tuple | list):
        for x in e:
            out |= _names(x)
    return out
