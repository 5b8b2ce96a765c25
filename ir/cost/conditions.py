"""Conditions over decisions (DNFs) and their probabilities, for expected costs.

A variable is ``(label, None)`` — which option an op, value or repeat label takes, by index —
or ``(label, j)`` — whether input ``j`` of an input choice is picked (1) or not (0). A term maps
variables to the set of values it allows (their conjunction); a condition is a set of terms
(their disjunction). Labels are independent, and so are the picks of one input choice
(Bernoulli events with the given inclusion probabilities).

>>> cs = Conditions({"op": ("a", "b", "c")}, {"op": (1, 2, 3)})
>>> c = cs.or_(cs.term({("op", None): frozenset({0})}), cs.term({("op", None): frozenset({2})}))
>>> cs.prob(c)          # mass of options a and c
4
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Iterable, Mapping
from typing import Any

from nasc.ir.guards import Atom, Guard

# ---- conditions: DNF over decisions, and their probability ---------------------------------
# A variable is (label, None) — which option an op/value/repeat label takes, by index — or
# (label, j) — whether input j of an input choice is picked (0/1). A term maps variables to the
# set of values it allows; a condition is a set of terms (their disjunction).
Var = tuple[str, Any]
Term = frozenset[tuple[Var, frozenset[int]]]
Cond = frozenset[Term]
TRUE: Cond = frozenset({frozenset()})
FALSE: Cond = frozenset()
PICKED = frozenset({1})


def _var_key(v: Var) -> tuple[str, int]:
    return (v[0], -1 if v[1] is None else v[1])


class Conditions:
    """Conditions over independent decisions and their probabilities under ``probs``.

    Labels are independent; the picks of one input choice are independent Bernoulli events with
    the given inclusion probabilities, except that an input choice that must pick all its
    inputs (``forced``) picks each surely. ``prob`` uses only ``+``, ``-`` and ``*`` on
    probabilities.
    """

    def __init__(
        self,
        options: Mapping[str, tuple[Any, ...]],
        probs: Mapping[str, Any],
        forced: frozenset[str] = frozenset(),
    ):
        self.options = options
        self.probs = probs
        self.forced = forced
        self._memo: dict[Cond, Any] = {}
        self._guards: dict[Guard, Cond] = {}
        self._summaries: dict[str, Any] = {}

    def size(self, v: Var) -> int:
        return 2 if v[1] is not None else len(self.options[v[0]])

    # -- building --------------------------------------------------------------------------
    def atom(self, a: Atom) -> Cond:
        if a.test == "has":
            return self.picked(a.label, a.value)
        opts = self.options[a.label]
        return self.term({(a.label, None): frozenset(i for i, o in enumerate(opts) if a.holds(o))})

    def picked(self, label: str, j: int) -> Cond:
        """Input ``j`` of input choice ``label`` is picked."""
        return TRUE if label in self.forced else self.term({(label, j): PICKED})

    def term(self, allowed: Mapping[Var, frozenset[int]]) -> Cond:
        return self.normal([frozenset(allowed.items())])

    def of_guard(self, guard: Guard) -> Cond:
        if guard not in self._guards:
            out = FALSE
            for t in guard.terms:
                c = TRUE
                for a in sorted(t):
                    c = self.and_(c, self.atom(a))
                out = self.or_(out, c)
            self._guards[guard] = out
        return self._guards[guard]

    def and_(self, a: Cond, b: Cond) -> Cond:
        if a == TRUE or not b:
            return b
        if b == TRUE or not a:
            return a
        return self.normal(t for x in a for y in b if (t := _conj(x, y)) is not None)

    def or_(self, a: Cond, b: Cond) -> Cond:
        return self.normal(a | b)

    def summarize(self, c: Cond, name: str) -> Cond:
        """``c`` as one fresh variable with ``P(c)``: small from here on, and exact whenever
        the probabilities are 0/1; otherwise it treats ``c`` as independent of the rest."""
        self._summaries[name] = self.prob(c)
        return self.term({(name, 0): PICKED})

    # -- simplifying -----------------------------------------------------------------------
    def normal(self, terms: Iterable[Term]) -> Cond:
        """Drop unconstrained variables and empty terms, absorb, merge terms differing in one
        variable (``x in A | x in B == x in A|B``) until nothing changes."""
        ts: set[Term] = set()
        for t in terms:
            if all(s for _, s in t):
                ts.add(frozenset((v, s) for v, s in t if len(s) < self.size(v)))
        while True:
            ts = _absorb(ts)
            merged = self._merge(ts)
            if merged == ts:
                return frozenset(ts)
            ts = merged

    def _merge(self, ts: set[Term]) -> set[Term]:
        """One pass of ``(r & x in A) | (r & x in B) -> r & x in A|B``."""
        groups: dict[tuple[Var, Term], list[Term]] = {}
        for t in ts:
            for v, s in t:
                groups.setdefault((v, t - {(v, s)}), []).append(t)
        out = set(ts)
        for (v, rest), members in groups.items():
            if len(members) < 2 or not all(t in out for t in members):
                continue
            union = frozenset().union(*(dict(t)[v] for t in members))
            out -= set(members)
            out.add(rest if len(union) == self.size(v) else rest | {(v, union)})
        return out

    # -- probability -----------------------------------------------------------------------
    def mass(self, v: Var, values: frozenset[int]) -> Any:
        label, j = v
        if j is None:
            return sum(self.probs[label][i] for i in sorted(values))
        p = self._summaries[label] if label in self._summaries else self.probs[label][j]
        return p if values == PICKED else 1 - p

    def prob(self, c: Cond) -> Any:
        """P(c) by splitting into independent parts and branching on the commonest variable."""
        if c not in self._memo:
            self._memo[c] = self._prob(c)
        return self._memo[c]

    def _prob(self, c: Cond) -> Any:
        if not c:
            return 0
        if TRUE <= c:
            return 1
        if len(c) == 1:
            (t,) = c
            return functools.reduce(operator.mul, (self.mass(v, s) for v, s in sorted(t)), 1)
        parts = _independent_parts(c)
        if len(parts) > 1:
            miss = functools.reduce(operator.mul, (1 - self.prob(p) for p in parts), 1)
            return 1 - miss
        counts: dict[Var, int] = {}
        for t in c:
            for v, _ in t:
                counts[v] = counts.get(v, 0) + 1
        var = max(sorted(counts, key=_var_key), key=lambda v: counts[v])
        branches: dict[Cond, set[int]] = {}
        for value in range(self.size(var)):
            branches.setdefault(self._restrict(c, var, value), set()).add(value)
        total: Any = 0
        for rest, values in branches.items():
            if rest:
                total = total + self.mass(var, frozenset(values)) * self.prob(rest)
        return total

    def _restrict(self, c: Cond, var: Var, value: int) -> Cond:
        out = []
        for t in c:
            d = dict(t)
            if var not in d:
                out.append(t)
            elif value in d[var]:
                out.append(t - {(var, d[var])})
        return self.normal(out)


def _conj(t: Term, u: Term) -> Term | None:
    d = dict(t)
    for v, s in u:
        s = d[v] & s if v in d else s
        if not s:
            return None
        d[v] = s
    return frozenset(d.items())


def _term_key(t: Term) -> list:
    return sorted((_var_key(v), sorted(s)) for v, s in t)


def _absorb(ts: set[Term]) -> set[Term]:
    """Drop every term that implies another (``a | a&b == a``)."""
    kept: list[tuple[Term, dict]] = []
    for t in sorted(ts, key=lambda t: (len(t), _term_key(t))):
        dt = dict(t)
        if not any(all(v in dt and dt[v] <= s for v, s in k) for k, _ in kept):
            kept.append((t, dt))
    return {t for t, _ in kept}


def _independent_parts(c: Cond) -> list[Cond]:
    """Groups of terms that share no variable (their events are independent)."""
    groups: list[tuple[set[Var], set[Term]]] = []
    for t in sorted(c, key=_term_key):
        vs, ts = {v for v, _ in t}, {t}
        for g in [g for g in groups if g[0] & vs]:
            groups.remove(g)
            vs |= g[0]
            ts |= g[1]
        groups.append((vs, ts))
    return [frozenset(ts) for _, ts in groups]
