"""Decisions of a space: which labels exist, when they are active, and how many architectures.

A label is *active* when its guard holds (its choice is not nested in an unchosen candidate).
An architecture assigns a decision to every active label and nothing else, so two assignments
that differ only on inactive labels are one architecture. Decisions:

* op choice — the candidate's name; value choice — the value; repeat — the depth;
* input choice — the sorted tuple of picked input indices.

:func:`count` is exact: labels split into independent groups whose counts multiply; a label
that others depend on is branched on, and an input choice whose nested labels each hang off a
single input is summed with the generating polynomial ``prod_j (b_j + a_j z)`` over its picks.

>>> from nasc.ir.guards import Atom, Guard
>>> specs = {
...     "in": LabelSpec(label="in", kind="input", options=(0, 1, 2), k_min=2, k_max=2,
...                     guard=Guard.TRUE),
...     "op0": LabelSpec(label="op0", kind="op", options=("a", "b"), guard=Guard.atom(
...         Atom(label="in", test="has", value=0))),
... }
>>> count(specs)  # picks {0,1}, {0,2} with 2 ops each, {1,2} alone
5
"""

from __future__ import annotations

import difflib
import itertools
import math
import random
from collections.abc import Iterator, Mapping
from typing import Any

import attrs
import networkx as nx
from nasc.ir.graph import Graph
from nasc.ir.guards import Atom, Guard
from nasc.ir.nodes import InputChoice, choice_kind

#: Branching on one label with more decisions than this is refused as intractable.
MAX_BRANCH = 1 << 16


class DecisionError(ValueError):
    """An architecture does not fit its space, or the space's labels cannot be ordered."""


@attrs.frozen(kw_only=True)
class LabelSpec:
    """One decision of a space: its kind, options and when it is active."""

    label: str
    kind: str
    options: tuple[Any, ...]
    guard: Guard
    k_min: int = 1
    k_max: int = 1

    @property
    def k(self) -> int | tuple[int, int]:
        """For input choices: how many inputs are picked (a pair when it ranges)."""
        return self.k_min if self.k_min == self.k_max else (self.k_min, self.k_max)

    def size(self) -> int:
        """How many decisions this label alone offers."""
        if self.kind == "input":
            n = len(self.options)
            return sum(math.comb(n, k) for k in range(self.k_min, self.k_max + 1))
        return len(self.options)

    def decisions(self) -> Iterator[Any]:
        if self.kind == "input":
            n = len(self.options)
            for k in range(self.k_min, self.k_max + 1):
                yield from itertools.combinations(range(n), k)
        else:
            yield from self.options

    def check(self, decision: Any) -> Any:
        """The canonical form of ``decision``, or :class:`DecisionError`."""
        if self.kind == "input":
            if not isinstance(decision, list | tuple) or not all(
                isinstance(i, int) and not isinstance(i, bool) for i in decision
            ):
                raise DecisionError(f"{self.label!r}: an input choice takes a list of indices")
            picked = tuple(sorted(set(decision)))
            if len(picked) != len(decision) or not all(0 <= i < len(self.options) for i in picked):
                raise DecisionError(
                    f"{self.label!r}: {list(decision)} is not a set of indices below "
                    f"{len(self.options)}"
                )
            if not self.k_min <= len(picked) <= self.k_max:
                want = self.k_min if self.k_min == self.k_max else f"{self.k_min}..{self.k_max}"
                raise DecisionError(f"{self.label!r}: picks {len(picked)} inputs, needs {want}")
            return picked
        for o in self.options:
            if o == decision and isinstance(o, bool) == isinstance(decision, bool):
                return o
        raise DecisionError(f"{self.label!r}: {decision!r} is not one of {list(self.options)}")

    def draw(self, rng: random.Random) -> Any:
        if self.kind == "input":
            k = rng.randint(self.k_min, self.k_max)
            return tuple(sorted(rng.sample(range(len(self.options)), k)))
        return self.options[rng.randrange(len(self.options))]


def label_specs(g: Graph) -> dict[str, LabelSpec]:
    """Every label of ``g`` with its activity guard: the disjunction over its instances."""
    out: dict[str, LabelSpec] = {}
    for rec in g.choice_nodes():
        spec = out.get(rec.label)
        if spec is None:
            k = (rec.k_min, rec.k_max) if isinstance(rec, InputChoice) else (1, 1)
            out[rec.label] = LabelSpec(
                label=rec.label,
                kind=choice_kind(rec),
                options=tuple(rec.options),
                guard=rec.guard,
                k_min=k[0],
                k_max=k[1],
            )
        else:
            out[rec.label] = attrs.evolve(spec, guard=spec.guard | rec.guard)
    order(out)
    return dict(sorted(out.items()))


def order(specs: Mapping[str, LabelSpec]) -> list[str]:
    """Labels so that every label comes after the labels its activity depends on."""
    dg = nx.DiGraph()
    dg.add_nodes_from(specs)
    for lab, s in specs.items():
        for dep in s.guard.labels():
            if dep in specs:
                dg.add_edge(dep, lab)
    try:
        return list(nx.lexicographical_topological_sort(dg))
    except nx.NetworkXUnfeasible:
        cyc = nx.find_cycle(dg)
        chain = " -> ".join([a for a, _ in cyc] + [cyc[0][0]])
        raise DecisionError(
            f"labels decide each other's activity in a cycle ({chain}); give the nested "
            "choices their own labels"
        ) from None


def active(specs: Mapping[str, LabelSpec], decisions: Mapping[str, Any]) -> list[str]:
    """The labels active under ``decisions`` (which need decide only active labels)."""
    known: dict[str, Any] = {}
    out = []
    for lab in order(specs):
        if specs[lab].guard.holds(known):
            out.append(lab)
            if lab in decisions:
                known[lab] = decisions[lab]
    return out


def canonical(specs: Mapping[str, LabelSpec], decisions: Mapping[str, Any]) -> dict[str, Any]:
    """``decisions`` restricted to the active labels, each checked and canonical.

    Raises :class:`DecisionError` for an unknown label or a missing or invalid decision.
    """
    unknown = sorted(set(decisions) - set(specs))
    if unknown:
        close = difflib.get_close_matches(unknown[0], sorted(specs), n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise DecisionError(f"no label {unknown[0]!r} in this space{hint}")
    known: dict[str, Any] = {}
    for lab in order(specs):
        if not specs[lab].guard.holds(known):
            continue
        if lab not in decisions:
            raise DecisionError(f"no decision for active label {lab!r}")
        known[lab] = specs[lab].check(decisions[lab])
    return dict(sorted(known.items()))


# ---- counting ------------------------------------------------------------------------------
def count(specs: Mapping[str, LabelSpec]) -> int:
    """The exact number of architectures: assignments of a decision to every active label (the
    papers' convention; distinct networks are ``nasc.ir.canonical``'s business)."""
    order(specs)
    guards = {lab: s.guard for lab, s in specs.items()}
    return _Counter(specs).count(guards)


class _Counter:
    def __init__(self, specs: Mapping[str, LabelSpec]) -> None:
        self.specs = specs
        self.memo: dict[frozenset, int] = {}

    def count(self, guards: dict[str, Guard]) -> int:
        guards = _drop_inactive(guards)
        total = 1
        for comp in _components(guards):
            total *= self._component({lab: guards[lab] for lab in comp})
            if total == 0:
                return 0
        return total

    def _component(self, guards: dict[str, Guard]) -> int:
        key = frozenset(guards.items())
        if key in self.memo:
            return self.memo[key]
        if len(guards) == 1:
            (lab,) = guards
            result = self.specs[lab].size()
        else:
            result = self._branch(guards)
        self.memo[key] = result
        return result

    def _branch(self, guards: dict[str, Guard]) -> int:
        roots = sorted(lab for lab, g in guards.items() if g.is_true)
        if not roots:
            raise DecisionError(f"cannot order labels {sorted(guards)[:4]}")
        dependents = {r: [x for x, g in guards.items() if r in g.labels()] for r in roots}
        root = max(roots, key=lambda r: len(dependents[r]))
        spec = self.specs[root]
        rest = {lab: g for lab, g in guards.items() if lab != root}
        if spec.kind == "input":
            poly = self._input_polynomial(spec, rest)
            if poly is not None:
                return poly
        if spec.size() > MAX_BRANCH:
            raise DecisionError(
                f"counting branches on {root!r}, which has {spec.size()} decisions; the space "
                "is too entangled to count exactly"
            )
        return sum(
            self.count({lab: g.substitute(root, v) for lab, g in rest.items()})
            for v in spec.decisions()
        )

    def _input_polynomial(self, spec: LabelSpec, rest: dict[str, Guard]) -> int | None:
        """Sum over picks S of prod_j (j in S ? a_j : b_j), when nested labels split by input."""
        groups: dict[int | None, dict[str, Guard]] = {}
        for comp in _components(rest, ignore=spec.label):
            idx = {
                a.value for lab in comp for t in rest[lab].terms for a in t if a.label == spec.label
            }
            tests = {
                a.test for lab in comp for t in rest[lab].terms for a in t if a.label == spec.label
            }
            if len(idx) > 1 or tests - {"has"}:
                return None
            key = next(iter(idx)) if idx else None
            groups.setdefault(key, {}).update({lab: rest[lab] for lab in comp})
        free = self.count(groups.pop(None, {}))
        coeffs = [1]
        for j in range(len(spec.options)):
            sub = groups.get(j, {})
            a_j = self.count(_with_atom(sub, Atom(label=spec.label, test="has", value=j), True))
            b_j = self.count(_with_atom(sub, Atom(label=spec.label, test="has", value=j), False))
            nxt = [0] * (len(coeffs) + 1)
            for k, c in enumerate(coeffs):
                nxt[k] += c * b_j
                nxt[k + 1] += c * a_j
            coeffs = nxt
        return free * sum(coeffs[spec.k_min : spec.k_max + 1])


def _with_atom(guards: dict[str, Guard], atom: Atom, value: bool) -> dict[str, Guard]:
    return {lab: g.substitute_atom(atom, value) for lab, g in guards.items()}


def _drop_inactive(guards: dict[str, Guard]) -> dict[str, Guard]:
    """Remove labels whose guard is false; atoms on removed labels are false too."""
    guards = dict(guards)
    while True:
        dead = [lab for lab, g in guards.items() if g.is_false]
        if not dead:
            return guards
        for lab in dead:
            del guards[lab]
        for lab in dead:
            for other, g in guards.items():
                if lab in g.labels():
                    guards[other] = Guard.of_terms(
                        t for t in g.terms if all(a.label != lab for a in t)
                    )


def _components(guards: Mapping[str, Guard], ignore: str | None = None) -> list[list[str]]:
    ug = nx.Graph()
    ug.add_nodes_from(guards)
    for lab, g in guards.items():
        for dep in g.labels():
            if dep in guards and dep != ignore:
                ug.add_edge(lab, dep)
    return [sorted(c) for c in sorted(nx.connected_components(ug), key=min)]


# ---- enumerating and sampling --------------------------------------------------------------
def enumerate_all(specs: Mapping[str, LabelSpec]) -> Iterator[dict[str, Any]]:
    """Every architecture once, as a mapping of active labels to decisions: :func:`count`
    of them, all different."""
    order(specs)
    yield from _enum({lab: s.guard for lab, s in specs.items()}, specs, {})


def _enum(guards: dict[str, Guard], specs, partial: dict[str, Any]) -> Iterator[dict[str, Any]]:
    guards = _drop_inactive(guards)
    if not guards:
        yield dict(sorted(partial.items()))
        return
    root = min(lab for lab, g in guards.items() if g.is_true)
    rest = {lab: g for lab, g in guards.items() if lab != root}
    for v in specs[root].decisions():
        partial[root] = v
        yield from _enum({lab: g.substitute(root, v) for lab, g in rest.items()}, specs, partial)
    del partial[root]


def sample(specs: Mapping[str, LabelSpec], rng: random.Random) -> dict[str, Any]:
    """One architecture, each active decision drawn uniformly in label order."""
    known: dict[str, Any] = {}
    for lab in order(specs):
        if specs[lab].guard.holds(known):
            known[lab] = specs[lab].draw(rng)
    return dict(sorted(known.items()))
