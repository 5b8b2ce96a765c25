"""Pruning candidates whose architecture weight has collapsed.

A candidate whose mixture weight ``softmax(alpha)_o`` fell below ``eps`` contributes almost
nothing to ``sum_o w_o o(x)`` (DARTS eq. 2) but still costs its full compute; this pass stops
computing it while its weight stays in the normalisation, like a zero candidate. Nodes that only
fed pruned candidates are removed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from nasc.ir.dead import remove_dead
from nasc.ir.graph import Graph
from nasc.ir.nodes import Mixture
from nasc.ir.passes.manager import Pass, PassError, register


def prune_collapsed(
    g: Graph, *, weights: Mapping[str, Sequence[float]], eps: float = 1e-3
) -> Graph:
    """Mark candidates with weight below ``eps`` as not computed; keep at least the strongest."""
    if not 0 <= eps < 1:
        raise PassError("prune_collapsed: eps must be in [0, 1)")
    out = g.copy()
    for rec in g.nodes_of(Mixture):
        alpha = weights.get(rec.label)
        if alpha is None:
            raise PassError(f"prune_collapsed: no weights for {rec.label!r}")
        m = max(alpha)
        e = [math.exp(a - m) for a in alpha]
        w = [x / sum(e) for x in e]
        # the strongest by alpha itself: softmax can round near-ties to equal weights
        best = max((i for i, c in enumerate(rec.computed) if c), key=lambda i: alpha[i])
        computed = tuple(c and (w[i] >= eps or i == best) for i, c in enumerate(rec.computed))
        if computed == rec.computed:
            continue
        ins = iter(g.inputs(rec.id))
        keep = [i for c, new in zip(rec.computed, computed) if c for i in [next(ins)] if new]
        out.update(rec.id, computed=computed)
        out.set_inputs(rec.id, keep)
    remove_dead(out)
    return out.renumbered()


register(Pass(name="prune_collapsed", fn=prune_collapsed, requires=frozenset({"relaxed"})))
