"""Dead-code removal shared by elaboration, resolution and the passes."""

from __future__ import annotations

from nasc.ir.graph import Graph
from nasc.ir.guards import Guard
from nasc.ir.nodes import Op, Output, ValueChoice
from nasc.ir.sym import labels_of


def remove_dead(g: Graph) -> None:
    """Remove (in place) every node that no output reads, except value choices that a live
    node refers to; then drop guard terms that mention labels no longer in the graph (nothing
    live depends on those decisions)."""
    live: set[int] = set()
    stack = [r.id for r in g.nodes_of(Output)]
    while stack:
        n = stack.pop()
        if n not in live:
            live.add(n)
            stack.extend(g.inputs(n))
    used: set[str] = set()
    for n in live:
        rec = g[n]
        if rec.type is not None:
            used |= labels_of(rec.type.channels) | labels_of(rec.type.stride)
        if isinstance(rec, Op):
            used |= labels_of(tuple(v for _, v in rec.params))
    for rec in list(g):
        if rec.id not in live and not (isinstance(rec, ValueChoice) and rec.label in used):
            g.remove(rec.id)
    present = {r.label for r in g.choice_nodes() + g.relaxed_nodes()}
    for rec in list(g):
        if rec.guard.labels() - present:
            terms = [t for t in rec.guard.terms if not {a.label for a in t} - present]
            g.update(rec.id, guard=Guard.of_terms(terms))
