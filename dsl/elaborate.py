"""Elaboration: run a ``.nas`` program to build the IR graph of a space.

Elaboration is an interpreter over the AST that never evaluates Python. Ops calls become IR
nodes; choices become choice nodes, and everything written inside a candidate gets a guard
saying when it exists. The work is shared out by concern:

* this module: the :class:`Elaborator` (statements, calls, the guard, the public interface that
  builtins and the other modules use) and :func:`run_module_lets`;
* :mod:`~nasc.dsl.expressions`: one evaluation rule per kind of expression;
* :mod:`~nasc.dsl.choices`: choices, repeats and merges, the constructs that add decisions;
* :mod:`~nasc.dsl.typecheck`: annotations, tensor types, ``require`` clauses;
* :mod:`~nasc.dsl.labels`: the label table; :mod:`~nasc.dsl.symbolic`: checks over value
  choices; :mod:`~nasc.dsl.limits`: the bounds (:class:`Limits`) and the running
  :class:`~nasc.dsl.limits.Budget`; :mod:`~nasc.dsl.builtins`; :mod:`~nasc.dsl.scope`.

What a program may ask for is bounded; a program that exceeds a bound gets a located error, not
a hang or a memory blow-up.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from nasc.dsl import ast, choices
from nasc.dsl.builtins import BUILTINS
from nasc.dsl.diagnostics import NasError, Note, Sources, did_you_mean
from nasc.dsl.expressions import binop, evaluate
from nasc.dsl.labels import LabelTable
from nasc.dsl.limits import Budget, Limits
from nasc.dsl.modules import ModuleEnv
from nasc.dsl.scope import Pending, Return, Scope
from nasc.dsl.typecheck import TypeChecker
from nasc.dsl.values import (
    CALLABLES,
    BlockValue,
    BoundValue,
    BuiltinValue,
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
from nasc.ir.nodes import Input, Op, Output
from nasc.ir.sym import Sym


class Elaborator:
    """Builds one :class:`Graph` from one space definition."""

    def __init__(self, sources: Sources, limits: Limits | None = None) -> None:
        self.sources = sources
        self.limits = limits or Limits()
        self.graph = Graph()
        self.guard = Guard.TRUE
        self.budget = Budget(self.limits, self.error)
        self.labels = LabelTable(sources, self.error)
        self.types = TypeChecker(self)
        self.picks: list[PickValue] = []
        self.loc: SourceLoc | None = None
        self.outputs = 0
        self.toplevel = False

    # ---- the interface of builtins, choices and checks -----------------------------------------
    def error(self, msg: str, loc: SourceLoc | None = None, notes: Sequence[Note] = ()) -> NasError:
        """A located error (at ``loc``, else where elaboration is)."""
        return self.sources.error(msg, loc or self.loc, notes)

    def add(self, cls: type, inputs: Sequence[int] = (), **fields: Any) -> int:
        """A new node, under the current guard and location unless ``fields`` say otherwise."""
        self.budget.node(len(self.graph))
        fields.setdefault("guard", self.guard)
        fields.setdefault("loc", self.loc)
        return self.graph.add(cls, inputs, **fields)

    @contextmanager
    def guarded(self, atom: Atom | None) -> Iterator[None]:
        """Inside ``with``, what is built exists only when ``atom`` holds too (``None``: as
        before)."""
        outer = self.guard
        if atom is not None:
            self.guard = outer & Guard.atom(atom)
        try:
            yield
        finally:
            self.guard = outer

    def eval(self, e: ast.Expr, scope: Scope, env: ModuleEnv) -> Any:
        return evaluate(self, e, scope, env)

    def merge(self, items: Any, mode: str, loc: SourceLoc) -> Tensor:
        return choices.merge(self, items, mode, loc)

    def tensor(self, v: Any, loc: SourceLoc, what: str) -> Tensor:
        if not isinstance(v, Tensor):
            raise self.error(f"{what} must be a tensor, got {type_name(v)}", loc)
        return v

    def truth(self, v: Any, loc: SourceLoc) -> bool:
        if isinstance(v, Sym):
            raise self.structure_error(loc)
        if not isinstance(v, bool):
            raise self.error(f"a condition must be true or false, got {type_name(v)}", loc)
        return v

    def as_int(self, v: Any, loc: SourceLoc) -> int:
        if isinstance(v, Sym):
            raise self.structure_error(loc)
        if not isinstance(v, int) or isinstance(v, bool):
            raise self.error(f"expected an integer, got {type_name(v)} {show(v)}", loc)
        return v

    def text(self, v: Any) -> str:
        """``v`` as it reads inside a string."""
        if isinstance(v, str):
            return v
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float | Sym):
            return str(v)
        raise self.error(f"cannot put {type_name(v)} into a string")

    def iterate(self, v: Any, loc: SourceLoc) -> list[Any]:
        if isinstance(v, RangeValue):
            self.budget.range_(len(v), loc)
            return list(range(v.start, v.stop))
        if isinstance(v, list):
            return v
        if isinstance(v, str):
            return list(v)
        raise self.error(f"cannot iterate over {type_name(v)}", loc)

    def structure_error(self, loc: SourceLoc) -> NasError:
        return self.error(
            "a value choice cannot decide structure (conditions, loop bounds, comparisons); "
            "use an op choice, 'optional' or 'repeat'",
            loc,
        )

    def label(self, s: ast.Str, scope: Scope, env: ModuleEnv) -> str:
        label = self.eval(s, scope, env)
        if not label or any(c in label for c in "\n\"'"):
            raise self.error(f"invalid label {label!r}", s.loc)
        return label

    def no_toplevel_choice(self, loc: SourceLoc) -> None:
        if self.toplevel:
            raise self.error(
                "a choice at the top level; write it inside a space or block "
                "(a label shared by several places is one decision anyway)",
                loc,
            )

    def set_items(self, exprs: Sequence[ast.Expr], scope: Scope, env: ModuleEnv) -> list[Any]:
        """The members of ``{a, b..c, xs}``: ranges and lists are spliced in."""
        out: list[Any] = []
        for x in exprs:
            v = self.eval(x, scope, env)
            out.extend(self.iterate(v, x.loc) if isinstance(v, RangeValue | list) else [v])
            self.budget.options(out, x.loc)
        return out

    def bind_targets(self, scope: Scope, targets: Sequence[str], item: Any, loc) -> None:
        if len(targets) == 1:
            scope.vars[targets[0]] = item
        else:
            scope.vars.update(zip(targets, self._unpack(item, len(targets), loc)))

    # ---- entry -------------------------------------------------------------------------------
    def elaborate_space(
        self, env: ModuleEnv, space: ast.SpaceDef, params: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Run ``space`` with ``params`` (already checked); return the parameter values used."""
        scope = Scope()
        values = self._bind_params(space.params, (), dict(params), env, space.name, space.loc)
        scope.vars.update(values)
        self.loc = space.loc
        try:
            self.exec_body(space.body, scope, env)
        except Return:
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
            for name, value in zip(s.targets, self.values(s, scope, env)):
                if name in scope.vars:
                    raise self.error(f"{name!r} is already defined here; use '{name} = ...'")
                scope.vars[name] = value
        elif isinstance(s, ast.Assign):
            for name, value in zip(s.targets, self.values(s, scope, env)):
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
                if self.truth(self.eval(test, scope, env), test.loc):
                    self.exec_body(body, Scope(scope), env)
                    return
            if s.orelse is not None:
                self.exec_body(s.orelse, Scope(scope), env)
        elif isinstance(s, ast.Return):
            vals = [self.eval(v, scope, env) for v in s.values]
            raise Return(vals[0] if len(vals) == 1 else vals)
        elif isinstance(s, ast.InputStmt):
            self._input(s, scope, env)
        elif isinstance(s, ast.OutputStmt):
            self._output(s, scope, env)
        elif isinstance(s, ast.Repeat):
            choices.repeat(self, s, scope, env)
        elif isinstance(s, ast.Assert):
            if not self.truth(self.eval(s.test, scope, env), s.test.loc):
                msg = "assertion failed"
                if s.message is not None:
                    msg += f": {self.text(self.eval(s.message, scope, env))}"
                raise self.error(msg)
        else:
            raise self.error(f"{type(s).__name__.lower()} is only allowed at the top level")

    def values(self, s: ast.Let | ast.Assign, scope: Scope, env: ModuleEnv) -> list[Any]:
        """The values of a ``let`` or an assignment, one per target."""
        vals = [self.eval(v, scope, env) for v in s.values]
        if len(s.targets) > 1 and len(vals) == 1:
            vals = self._unpack(vals[0], len(s.targets), s.loc)
        return vals

    def _unpack(self, v: Any, n: int, loc: SourceLoc) -> list[Any]:
        items = self.iterate(v, loc)
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
            self.budget.created(new)
        else:
            new = binop(self, s.op, old, rhs, s.loc)
        owner.vars[s.target] = new

    def _for(self, s: ast.For, scope: Scope, env: ModuleEnv) -> None:
        it = self.eval(s.iter, scope, env)
        if isinstance(it, PickValue):
            raise self.error(
                "a pick is iterated inside a list, then merged: "
                'sum([f(h) for h in pick 2 of xs @"label"])',
                s.iter.loc,
            )
        for item in self.iterate(it, s.iter.loc):
            self.budget.step(s.loc)
            inner = Scope(scope)
            self.bind_targets(inner, s.targets, item, s.loc)
            self.exec_body(s.body, inner, env)

    def _input(self, s: ast.InputStmt, scope: Scope, env: ModuleEnv) -> None:
        if not self.guard.is_true:
            raise self.error("'input' inside a choice")
        if scope.find(s.name) is not None:
            raise self.error(f"{s.name!r} is already defined")
        ty = self._type_expr(s.type, scope, env)
        nid = self.add(Input, type=ty, name=s.name)
        scope.vars[s.name] = Tensor(node=nid, type=ty)

    def _output(self, s: ast.OutputStmt, scope: Scope, env: ModuleEnv) -> None:
        value = self.eval(s.value, scope, env)
        t = self.tensor(value, s.value.loc, "'output'")
        if not self.guard.is_true:
            raise self.error("'output' inside a choice")
        name = s.name or ("out" if self.outputs == 0 else f"out{self.outputs}")
        if any(r.name == name for r in self.graph.nodes_of(Output)):
            raise self.error(f"two outputs named {name!r}")
        self.add(Output, [t.node], type=t.type, name=name)
        self.outputs += 1

    def _type_expr(self, t: ast.TypeExpr, scope: Scope, env: ModuleEnv):
        args = [self.eval(a, scope, env) for a in t.args]
        kwargs = {k: self.eval(v, scope, env) for k, v in t.kwargs}
        return self.types.tensor_type(t, args, kwargs)

    # ---- calls ---------------------------------------------------------------------------------
    def call(self, fn: Any, args: list[Any], kwargs: dict[str, Any], loc: SourceLoc) -> Any:
        self.budget.step(loc)
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
        self.types.requirements(d, bound, fn.module, loc)
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
        nid = self.add(Op, inputs, type=ty, op=d.name, params=params, loc=loc)
        return Tensor(node=nid, type=ty)

    def _call_block(self, fn: BlockValue, args, kwargs, loc: SourceLoc) -> Any:
        d = fn.decl
        if isinstance(d, ast.SpaceDef):
            raise self.error(f"{d.name!r} is a space; only blocks and ops can be called", loc)
        bound = self._bind_params(d.params, args, kwargs, fn.module, d.name, loc)
        scope = Scope()
        scope.vars.update(bound)
        saved = self.loc
        with self.budget.call(loc):
            try:
                self.exec_body(d.body, scope, fn.module)
                result = None
            except Return as r:
                result = r.value
            finally:
                self.loc = saved
        return result

    def _bind_params(self, params, args, kwargs, module, fname, loc) -> dict[str, Any]:
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
                v = self.types.annotation(v, p.ann, f"{fname}: {p.name!r}", loc)
            out[p.name] = v
        return out


def _freeze(v: Any) -> Any:
    """An op parameter as the IR records it (hashable)."""
    if isinstance(v, list):
        return tuple(_freeze(x) for x in v)
    if isinstance(v, CALLABLES):
        return callable_name(v)
    if isinstance(v, RangeValue):
        return tuple(range(v.start, v.stop))
    return v


def run_module_lets(el: Elaborator, env: ModuleEnv) -> None:
    """Evaluate the top-level ``let`` constants of ``env``, in order."""
    lets = [item for item in env.ast.items if isinstance(item, ast.Let)]
    for item in lets:
        for name in item.targets:
            if name in env.scope:
                first = env.origin.get(name)
                notes = [el.sources.note(first.loc, "first defined here")] if first else []
                raise el.error(f"{name!r} is defined twice", item.loc, notes)
            env.scope[name] = Pending()
            env.origin[name] = item
    for item in lets:
        el.loc = item.loc
        el.toplevel = True
        try:
            values = el.values(item, Scope(), env)
        finally:
            el.toplevel = False
        for name, v in zip(item.targets, values):
            if isinstance(v, Tensor | PickValue):
                raise el.error("a top-level 'let' cannot hold a tensor", item.loc)
            env.scope[name] = v
            env.defs[name] = v


__all__ = ["BUILTINS", "Elaborator", "Limits", "Scope", "run_module_lets"]
