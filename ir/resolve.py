"""Resolution: the choice-free graph that one architecture selects.

Works on spaces (choice nodes) and on relaxed graphs (mixtures), so a supernet's graph resolves
to exactly the network the supernet runs in fixed-architecture mode.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
from nasc.ir.dead import remove_dead
from nasc.ir.graph import Graph
from nasc.ir.guards import Guard
from nasc.ir.nodes import (
    InputChoice,
    InputMixture,
    Merge,
    Mixture,
    Op,
    OpChoice,
    RepeatChoice,
    ValueChoice,
)
from nasc.ir.passes.batch import unbatched
from nasc.ir.sym import evaluate
from nasc.ir.types import TensorType


class ResolveError(ValueError):
    """The decisions cannot select a network from this graph."""


def resolve_graph(
    g: Graph, decisions: Mapping[str, Any], *, provenance: dict[int, int] | None = None
) -> Graph:
    """The choice-free graph selected by canonical ``decisions``.

    ``provenance``, when given, is filled with ``resolved id -> id in g`` for every node that
    was copied (merges made for input choices map to the choice node).
    """
    out = Graph()
    alias: dict[int, int] = {}
    source: dict[int, int] = {}
    for rec in g:
        if not rec.guard.holds(decisions) or isinstance(rec, ValueChoice):
            continue
        ins = g.inputs(rec.id)
        if isinstance(rec, Mixture) and _is_zero(rec, decisions[rec.label]):
            src = zero_source(g, rec)
            stride = rec.type.stride // g[src].type.stride
            alias[rec.id] = out.add(
                Op, [alias[src]], type=_eval_type(rec.type, decisions), op="none",
                params=(("C", rec.type.channels), ("stride", stride)), loc=rec.loc)
            source[alias[rec.id]] = rec.id
            continue
        if isinstance(rec, OpChoice | RepeatChoice | Mixture):
            alias[rec.id] = alias[ins[_slot(rec, decisions[rec.label])]]
            continue
        ty = _eval_type(rec.type, decisions)
        if isinstance(rec, InputChoice | InputMixture):
            picked = [alias[ins[j]] for j in decisions[rec.label]]
            if len(picked) == 1:
                alias[rec.id] = picked[0]
            else:
                alias[rec.id] = out.add(Merge, picked, type=ty, mode=rec.merge, loc=rec.loc)
                source[alias[rec.id]] = rec.id
            continue
        single = unbatched(g, rec)  # a slice of a kernel-size batch: the candidate it stands for
        if single is not None:
            batch, rec = single
            ins = g.inputs(batch)
        fields = {f.name: getattr(rec, f.name) for f in attrs.fields(type(rec))}
        fields.pop("id")
        fields.update(type=ty, guard=Guard.TRUE)
        if isinstance(rec, Op):
            fields["params"] = tuple((k, evaluate(v, decisions)) for k, v in rec.params)
        alias[rec.id] = out.add(type(rec), [alias[i] for i in ins], **fields)
        source[alias[rec.id]] = rec.id if single is None else batch
    remove_dead(out)
    renumber: dict[int, int] = {}
    final = out.renumbered(mapping=renumber)
    if provenance is not None:
        provenance.update({renumber[old]: src for old, src in source.items() if old in renumber})
    return final


def _is_zero(rec: Mixture, decision: Any) -> bool:
    return decision in rec.options and not rec.computed[rec.options.index(decision)]


def zero_source(g: Graph, rec: Mixture) -> int:
    """The tensor a mixture's candidates read, which its zero candidate zeroes."""
    from nasc.ir.passes.sample import candidate_region

    _, sources = candidate_region(g, rec)
    concrete = [s for s in sources if isinstance(g[s].type.stride, int)]
    if not concrete:
        raise ResolveError(f"{rec.label!r}: the zero candidate has no input to take its shape from")
    # candidates may share computed parts with other edges (after CSE): the edge's own input
    # is the one at the finest resolution
    return min(concrete, key=lambda s: (g[s].type.stride, s))


def _slot(rec: OpChoice | RepeatChoice | Mixture, decision: Any) -> int:
    """The input slot of the chosen option."""
    if isinstance(rec, Mixture):
        if decision not in rec.options:
            raise ResolveError(f"{rec.label!r}: {decision!r} is not an option")
        i = rec.options.index(decision)
        if not rec.computed[i]:
            raise ResolveError(f"{rec.label!r}: the chosen {decision!r} is a zero candidate")
        return sum(rec.computed[:i])
    options = rec.options if isinstance(rec, OpChoice) else rec.depths
    return options.index(decision)


def _eval_type(ty: TensorType | None, values: Mapping[str, Any]) -> TensorType | None:
    if ty is None:
        return None
    return attrs.evolve(
        ty, channels=evaluate(ty.channels, values), stride=evaluate(ty.stride, values)
    )
