"""Guards: the condition under which a node of a space exists.

Choices nest: whatever is written inside a candidate exists only when that candidate is chosen.
Elaboration records this on every node as a :class:`Guard`, a disjunction of conjunctions of
:class:`Atom` s. One atom says one thing about one decision:

* ``eq``  — the decision of an op or value choice equals ``value``;
* ``has`` — input ``value`` (an index) is among those an input choice picked;
* ``ge``  — a repeat choice repeats at least ``value`` times.

>>> g = Guard.atom(Atom(label="n0.in", test="has", value=1))
>>> g.holds({"n0.in": (0, 1)})
True
>>> Guard.TRUE.holds({})
True
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Literal

import attrs

Test = Literal["eq", "has", "ge"]


@attrs.frozen(kw_only=True, order=True, cache_hash=True)
class Atom:
    """One fact about one decision: ``label`` ``test`` ``value``."""

    label: str
    test: Test = attrs.field(validator=attrs.validators.in_(("eq", "has", "ge")))
    value: Any

    def holds(self, decision: Any) -> bool:
        if self.test == "eq":
            return bool(decision == self.value)
        if self.test == "has":
            return self.value in decision
        return bool(decision >= self.value)

    def __str__(self) -> str:
        sym = {"eq": "==", "has": "∋", "ge": ">="}[self.test]
        return f"{self.label} {sym} {self.value!r}"


@attrs.frozen(cache_hash=True)
class Guard:
    """A condition in disjunctive normal form: ``any(all(atom) for atom in term)``.

    ``Guard.TRUE`` has one empty term; ``Guard.FALSE`` has no term.
    """

    terms: frozenset[frozenset[Atom]]

    TRUE: ClassVar[Guard]
    FALSE: ClassVar[Guard]

    @staticmethod
    def atom(a: Atom) -> Guard:
        return Guard(frozenset({frozenset({a})}))

    @staticmethod
    def of_terms(terms: Iterable[Iterable[Atom]]) -> Guard:
        return Guard(frozenset(frozenset(t) for t in terms))._simplified()

    def __and__(self, other: Guard) -> Guard:
        return Guard.of_terms(a | b for a in self.terms for b in other.terms)

    def __or__(self, other: Guard) -> Guard:
        return Guard.of_terms(self.terms | other.terms)

    @property
    def is_true(self) -> bool:
        return frozenset() in self.terms

    @property
    def is_false(self) -> bool:
        return not self.terms

    def labels(self) -> frozenset[str]:
        return frozenset(a.label for t in self.terms for a in t)

    def holds(self, decisions: Mapping[str, Any]) -> bool:
        """Evaluate with every mentioned label decided (a missing label is an inactive one)."""
        return any(
            all(a.label in decisions and a.holds(decisions[a.label]) for a in t) for t in self.terms
        )

    def substitute(self, label: str, decision: Any) -> Guard:
        """The guard once ``label`` is decided: its atoms become true or false."""
        out = []
        for t in self.terms:
            keep = []
            for a in t:
                if a.label != label:
                    keep.append(a)
                elif not a.holds(decision):
                    break
            else:
                out.append(keep)
        return Guard.of_terms(out)

    def substitute_atom(self, atom: Atom, value: bool) -> Guard:
        """The guard once the single fact ``atom`` is known to be ``value``."""
        out = []
        for t in self.terms:
            if atom in t:
                if value:
                    out.append(t - {atom})
            else:
                out.append(t)
        return Guard.of_terms(out)

    def _simplified(self) -> Guard:
        if frozenset() in self.terms:
            return _TRUE
        # drop terms that contain another term (absorption: a | a&b == a)
        terms = sorted(self.terms, key=len)
        kept: list[frozenset[Atom]] = []
        for t in terms:
            if not any(k <= t for k in kept) and not _contradictory(t):
                kept.append(t)
        return Guard(frozenset(kept))

    def __str__(self) -> str:
        if self.is_true:
            return "true"
        if self.is_false:
            return "false"
        parts = [" & ".join(str(a) for a in sorted(t)) for t in self.terms]
        return " | ".join(sorted(f"({p})" if len(self.terms) > 1 else p for p in parts))


def _contradictory(term: frozenset[Atom]) -> bool:
    """Two ``eq`` atoms on one label with different values can never both hold."""
    seen: dict[str, Any] = {}
    for a in term:
        if a.test == "eq":
            if a.label in seen and seen[a.label] != a.value:
                return True
            seen[a.label] = a.value
    return False


_TRUE = Guard(frozenset({frozenset()}))
Guard.TRUE = _TRUE
Guard.FALSE = Guard(frozenset())
