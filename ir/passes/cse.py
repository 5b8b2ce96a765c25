"""Common-subexpression elimination across candidates.

Candidates of one choice often start alike: every DARTS convolution candidate opens with a ReLU
of the same input (quark0/darts ``SepConv``/``DilConv``), so a hand-written mixed op computes
that ReLU four times per edge. Two nodes of a *weight-free* op with the same parameters, type
and inputs compute the same tensor, so this pass keeps one of them, existing whenever either
did (the disjunction of their guards). Ops with weights are never merged: each candidate owns
its weights in the reference supernets. Stochastic ops (dropout, drop path) are never merged.
"""

from __future__ import annotations

from collections.abc import Iterable

from nasc.ir.graph import Graph
from nasc.ir.nodes import Merge, Op
from nasc.ir.passes.manager import Pass, register

#: Ops without weights or randomness that nasc's stdlib declares.
WEIGHT_FREE = frozenset(
    {
        "relu",
        "relu6",
        "hswish",
        "sigmoid",
        "max_pool",
        "avg_pool",
        "global_avg_pool",
        "upsample",
        "channel_slice",
        "max_pool_3x3",
        "avg_pool_3x3",
        "none",
    }
)


def cse(g: Graph, *, pure_ops: Iterable[str] = WEIGHT_FREE) -> Graph:
    """Merge identical weight-free nodes (see the module docstring)."""
    pure = frozenset(pure_ops)
    out = g.copy()
    seen: dict[tuple, int] = {}
    for nid in g.topo_order():
        rec = out[nid]
        if isinstance(rec, Op) and rec.op in pure:
            key = ("op", rec.op, rec.params, rec.type, tuple(out.inputs(nid)))
        elif isinstance(rec, Merge):
            key = ("merge", rec.mode, rec.type, tuple(out.inputs(nid)))
        else:
            continue
        keep = seen.get(key)
        if keep is None:
            seen[key] = nid
            continue
        out.update(keep, guard=out[keep].guard | rec.guard)
        out.redirect(nid, keep)
        out.remove(nid)
    return out.renumbered()


register(Pass(name="cse", fn=cse))
