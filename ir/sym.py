"""Symbolic integers: values that depend on value choices.

A value choice (``choose {16, 24, 32} @"w"``) elaborates to ``Sym.var("w")``; arithmetic on it
builds an expression tree that is evaluated once an architecture fixes the label. Symbols may
flow into op parameters and tensor channels, never into structure (loop bounds, conditions).

>>> w = Sym.var("w")
>>> (w * 2 + 1).evaluate({"w": 16})
33
>>> str(w * 2 + 1)
'(w * 2 + 1)'
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import attrs

_BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "//": operator.floordiv,
    "%": operator.mod,
    "/": operator.truediv,
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "min": min,
    "max": max,
}
_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "//": 2, "%": 2, "/": 2}


@attrs.frozen(kw_only=True, cache_hash=True)
class Sym:
    """An integer (or value) expression over value-choice labels.

    ``op`` is ``"var"`` (``args = (label,)``), ``"neg"`` or a binary operator from ``_BINARY``.
    """

    op: str
    args: tuple[Any, ...]

    @staticmethod
    def var(label: str) -> Sym:
        return Sym(op="var", args=(label,))

    @staticmethod
    def binary(op: str, a: Any, b: Any) -> Any:
        """``a op b`` folded to a constant when neither side is symbolic."""
        if not isinstance(a, Sym) and not isinstance(b, Sym):
            return _BINARY[op](a, b)
        return Sym(op=op, args=(a, b))

    def labels(self) -> frozenset[str]:
        if self.op == "var":
            return frozenset(self.args)
        out: frozenset[str] = frozenset()
        for a in self.args:
            if isinstance(a, Sym):
                out |= a.labels()
        return out

    def evaluate(self, env: Mapping[str, Any]) -> Any:
        if self.op == "var":
            return env[self.args[0]]
        vals = [a.evaluate(env) if isinstance(a, Sym) else a for a in self.args]
        if self.op == "neg":
            return -vals[0]
        return _BINARY[self.op](*vals)

    def __add__(self, o: Any) -> Any:
        return Sym.binary("+", self, o)

    def __radd__(self, o: Any) -> Any:
        return Sym.binary("+", o, self)

    def __sub__(self, o: Any) -> Any:
        return Sym.binary("-", self, o)

    def __rsub__(self, o: Any) -> Any:
        return Sym.binary("-", o, self)

    def __mul__(self, o: Any) -> Any:
        return Sym.binary("*", self, o)

    def __rmul__(self, o: Any) -> Any:
        return Sym.binary("*", o, self)

    def __neg__(self) -> Sym:
        return Sym(op="neg", args=(self,))

    def __str__(self) -> str:
        if self.op == "var":
            return str(self.args[0])
        if self.op == "neg":
            return f"-{_fmt(self.args[0])}"
        if self.op in ("min", "max"):
            return f"{self.op}({_fmt(self.args[0])}, {_fmt(self.args[1])})"
        return f"({_fmt(self.args[0])} {self.op} {_fmt(self.args[1])})"


def _fmt(v: Any) -> str:
    if isinstance(v, Sym):
        s = str(v)
        return s[1:-1] if s.startswith("(") and v.op in _PRECEDENCE else s
    return repr(v) if isinstance(v, str) else str(v)


def evaluate(value: Any, env: Mapping[str, Any]) -> Any:
    """``value`` with every symbol replaced by its decision in ``env`` (recursing into tuples)."""
    if isinstance(value, Sym):
        return value.evaluate(env)
    if isinstance(value, tuple):
        return tuple(evaluate(v, env) for v in value)
    return value


def labels_of(value: Any) -> frozenset[str]:
    if isinstance(value, Sym):
        return value.labels()
    if isinstance(value, tuple):
        out: frozenset[str] = frozenset()
        for v in value:
            out |= labels_of(v)
        return out
    return frozenset()


def assignments(
    labels: frozenset[str], domains: Mapping[str, tuple[Any, ...]], limit: int
) -> Iterator[dict[str, Any]] | None:
    """Every assignment of ``labels`` over ``domains``; ``None`` when there are over ``limit``."""
    ordered = sorted(labels)
    total = 1
    for lab in ordered:
        total *= len(domains[lab])
        if total > limit:
            return None
    return (dict(zip(ordered, vals)) for vals in itertools.product(*(domains[x] for x in ordered)))


def sampled_assignments(
    labels: frozenset[str], domains: Mapping[str, tuple[Any, ...]], limit: int, seed: int = 0
) -> Iterator[dict[str, Any]]:
    """Every assignment when there are at most ``limit``; else ``limit`` of them: the all-first,
    the all-last, and the rest drawn uniformly with ``seed``."""
    every = assignments(labels, domains, limit)
    if every is not None:
        yield from every
        return
    import random

    ordered = sorted(labels)
    yield {lab: domains[lab][0] for lab in ordered}
    yield {lab: domains[lab][-1] for lab in ordered}
    rng = random.Random(seed)
    for _ in range(limit - 2):
        yield {lab: rng.choice(domains[lab]) for lab in ordered}


def same_value(a: Any, b: Any, domains: Mapping[str, tuple[Any, ...]], limit: int = 4096) -> bool:
    """Whether ``a`` and ``b`` agree under every decision of the value choices they mention.

    Exact when the joint domain has at most ``limit`` assignments, else structural equality.
    """
    if not isinstance(a, Sym) and not isinstance(b, Sym):
        return bool(a == b)
    envs = assignments(labels_of(a) | labels_of(b), domains, limit)
    if envs is None:
        return a == b
    return all(evaluate(a, env) == evaluate(b, env) for env in envs)
