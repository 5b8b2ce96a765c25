"""The IR checker. ``verify(g)`` raises :class:`IRError` on the first broken rule.

Rules:

1. The graph is acyclic; every edge carries a ``slot`` and a node's slots are 0..n-1.
2. Arity: inputs have none, outputs/aligns exactly one, value choices none, merges and choices at
   least one; an op choice has one input per option, a repeat choice one per depth, an input
   choice exactly ``n`` with ``1 <= k_min <= k_max <= n``.
3. Types agree on every edge: a ``sum`` merge, op/input/repeat choice has inputs of its own type;
   a ``concat`` merge adds channels of inputs with one layout and stride; an output has its input's
   type. Every node but value choices has a type.
4. Labels are consistent: every node with one label has the same choice kind and options
   (relaxed nodes included: a mixture needs one computed option per input, at least one).
5. Every symbol used in a type or parameter names a value choice of the graph.
6. Guards mention only labels of the graph, with tests that fit each label's kind and values
   among its options.
7. A node exists only where its inputs exist: its guard implies each input's guard (for a
   choice, its guard and the option's own condition imply the option input's guard).
"""

from __future__ import annotations

from typing import Any

import networkx as nx
from nasc.ir.graph import Graph
from nasc.ir.guards import Atom, Guard
from nasc.ir.nodes import (
    CHOICE_KINDS,
    InputChoice,
    InputMixture,
    Merge,
    Mixture,
    Node,
    Op,
    OpChoice,
    Output,
    RepeatChoice,
    ValueChoice,
    choice_kind,
)
from nasc.ir.printer import format_node
from nasc.ir.sym import labels_of, same_value
from nasc.ir.types import Layout


class IRError(Exception):
    """The IR broke one of :func:`verify`'s rules: a bug in nasc or in a user's pass."""


def verify(g: Graph) -> Graph:
    """Check every rule above; return ``g`` so calls can be chained after passes."""
    if not nx.is_directed_acyclic_graph(g.nx):
        cycle = nx.find_cycle(g.nx)
        raise IRError(f"the graph has a cycle through %{cycle[0][0]}")
    labels: dict[str, Node] = {}
    for rec in g.choice_nodes() + g.relaxed_nodes():
        first = labels.setdefault(rec.label, rec)
        if choice_kind(first) != choice_kind(rec) or tuple(first.options) != tuple(rec.options):
            _fail(g, rec, f"label {rec.label!r} is used for two different choices", first)
    domains = {lab: tuple(r.options) for lab, r in labels.items() if isinstance(r, ValueChoice)}
    for rec in g:
        _check_node(g, rec, labels, domains)
    return g


def _check_node(g: Graph, rec: Node, labels: dict[str, Node], domains: dict[str, Any]) -> None:
    ins = g.inputs(rec.id)
    if g.in_slots(rec.id) != list(range(len(ins))):
        _fail(g, rec, "input slots are not 0..n-1")
    if rec.arity is not None and len(ins) != rec.arity:
        _fail(g, rec, f"expects {rec.arity} input(s), has {len(ins)}")
    if rec.arity is None and not isinstance(rec, Op) and not ins:
        _fail(g, rec, "needs at least one input")
    if rec.type is None and not isinstance(rec, ValueChoice):
        _fail(g, rec, "has no type")
    types = [g[i].type for i in ins]
    if isinstance(rec, OpChoice) and len(ins) != len(rec.options):
        _fail(g, rec, f"has {len(ins)} inputs for {len(rec.options)} options")
    if isinstance(rec, Mixture) and (
        len(rec.computed) != len(rec.options) or len(ins) != sum(rec.computed) or not ins
    ):
        _fail(g, rec, f"has {len(ins)} inputs for computed options {rec.computed}")
    if isinstance(rec, InputMixture) and not (1 <= rec.k_min <= rec.k_max <= rec.n == len(ins)):
        _fail(g, rec, f"bad input mixture: n={rec.n}, k={rec.k_min}..{rec.k_max}")
    if isinstance(rec, RepeatChoice) and len(ins) != len(rec.depths):
        _fail(g, rec, f"has {len(ins)} inputs for {len(rec.depths)} depths")
    if isinstance(rec, InputChoice) and not (1 <= rec.k_min <= rec.k_max <= rec.n == len(ins)):
        _fail(g, rec, f"bad input choice: n={rec.n}, k={rec.k_min}..{rec.k_max}, {len(ins)} inputs")
    same_type = isinstance(rec, OpChoice | RepeatChoice | Output | Mixture) or (
        isinstance(rec, Merge | InputChoice | InputMixture)
        and (rec.mode if isinstance(rec, Merge) else rec.merge) == "sum"
    )
    if same_type:
        for i, t in zip(ins, types):
            if not _same_type(t, rec.type, domains):
                _fail(g, rec, f"input %{i} has type {t}, expected {rec.type}")
    elif isinstance(rec, Merge):
        _check_concat(g, rec, types, domains)
    for value in _symbolic_fields(rec):
        for lab in labels_of(value):
            if not isinstance(labels.get(lab), ValueChoice):
                _fail(g, rec, f"symbol {lab!r} names no value choice")
    for term in rec.guard.terms:
        for atom in term:
            if atom.label not in labels:
                _fail(g, rec, f"guard mentions unknown label {atom.label!r}")
            if not _in_domain(atom, labels[atom.label]):
                _fail(g, rec, f"guard atom {atom} has a value outside the options of "
                              f"{atom.label!r} {tuple(labels[atom.label].options)}",
                      labels[atom.label])
    for i, slot_guard in _input_conditions(g, rec, ins):
        if not _implies(slot_guard, g[i].guard):
            _fail(g, rec, f"exists when {slot_guard} but its input %{i} only when {g[i].guard}")


def _in_domain(atom: Atom, choice: Node) -> bool:
    """Rule 6: an atom's test and value fit its decision (``eq``: one of the options; ``has``: an
    input index of an input choice; ``ge``: a depth within a repeat choice's range)."""
    options = tuple(choice.options)
    kind = choice_kind(choice)
    if atom.test == "has":
        return kind == "input" and atom.value in options
    if atom.test == "ge":
        return kind == "repeat" and min(options) <= atom.value <= max(options)
    return kind != "input" and atom.value in options


def _check_concat(g: Graph, rec: Merge, types: list[Any], domains: dict[str, Any]) -> None:
    first = types[0]
    for t in types[1:]:
        if t.layout != first.layout or not same_value(t.stride, first.stride, domains):
            _fail(g, rec, f"concat of {first} and {t}")
    total = sum((t.channels for t in types[1:]), first.channels)
    if rec.type.layout != first.layout or not same_value(rec.type.channels, total, domains):
        _fail(g, rec, f"concat type {rec.type} is not the sum of its inputs' channels")


def _same_type(a: Any, b: Any, domains: dict[str, Any]) -> bool:
    return (
        a.layout == b.layout
        and same_value(a.channels, b.channels, domains)
        and (a.layout is Layout.VECTOR or same_value(a.stride, b.stride, domains))
    )


def _symbolic_fields(rec: Node) -> list[Any]:
    out: list[Any] = []
    if rec.type is not None:
        out += [rec.type.channels, rec.type.stride]
    if isinstance(rec, Op):
        out += [v for _, v in rec.params]
    return out


def _input_conditions(g: Graph, rec: Node, ins: list[int]) -> list[tuple[int, Guard]]:
    if isinstance(rec, OpChoice):
        conds = [Atom(label=rec.label, test="eq", value=o) for o in rec.options]
    elif isinstance(rec, InputChoice | InputMixture):
        conds = [Atom(label=rec.label, test="has", value=j) for j in range(rec.n)]
    elif isinstance(rec, Mixture):
        test = "eq"
        conds = [
            Atom(label=rec.label, test=test, value=o)
            for o, c in zip(rec.options, rec.computed)
            if c
        ]
    elif isinstance(rec, RepeatChoice):
        conds = [Atom(label=rec.label, test="eq", value=d) for d in rec.depths]
    else:
        return [(i, rec.guard) for i in ins]
    return [(i, rec.guard & Guard.atom(c)) for i, c in zip(ins, conds)]


def _implies(a: Guard, b: Guard) -> bool:
    """A sufficient syntactic test: every term of ``a`` contains some term of ``b``.

    A ``ge`` atom on a repeat label is implied by an ``eq`` atom with a value at least as large.
    """
    return all(any(all(_atom_implied(t, x) for x in tb) for tb in b.terms) for t in a.terms)


def _atom_implied(term: frozenset[Atom], atom: Atom) -> bool:
    if atom in term:
        return True
    if atom.test == "ge":
        return any(
            a.label == atom.label and a.test in ("eq", "ge") and a.value >= atom.value for a in term
        )
    return False


def _fail(g: Graph, rec: Node, msg: str, other: Node | None = None) -> None:
    around = [format_node(g, g[i]) for i in g.inputs(rec.id)]
    lines = [f"%{rec.id}: {msg}", "  " + format_node(g, rec)]
    if other is not None:
        lines.append("  first used at: " + format_node(g, other))
    if around:
        lines.append("  inputs:")
        lines += ["    " + s for s in around]
    raise IRError("\n".join(lines))


__all__ = ["IRError", "verify", "CHOICE_KINDS"]
