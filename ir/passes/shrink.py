"""HR-NAS shrinking (Ding et al., CVPR 2021, §3.3): really remove pruned channels and tokens.

"During training, after every few epochs, we progressively remove the search units whose
importance factors are below a predefined threshold eps ... if all tokens of a Transformer are
removed, the Transformer will degenerate into a residual path." Given the kept count of each
unit label (from :func:`nasc.ir.passes.importance.derive_units`), :func:`shrink` sets each
relaxed op's unit parameters to those counts, so the graph describes the smaller network
(its cost can only drop), and a transformer left with no token is taken out of the sum it
feeds. The ops stay relaxed (``units``/``eps``) for the next round of progressive shrinking;
``final=True`` drops those marks, leaving the plain discrete network.

Node ids are kept (no renumbering), so a backend can map each shrunk op to the op it slices its
weights from.
"""

from __future__ import annotations

from collections.abc import Mapping

from nasc.ir.graph import Graph
from nasc.ir.nodes import Merge
from nasc.ir.passes.importance import unit_ops
from nasc.ir.passes.manager import Pass, PassError, register

#: Ops that compute nothing (zeros) once every unit is gone: op -> its unit parameter.
VANISH_AT_ZERO: dict[str, str] = {"transformer": "n"}


def shrink(g: Graph, *, kept: Mapping[str, int], final: bool = False) -> Graph:
    """Set every relaxed op's unit counts to ``kept[label]`` (labels left out keep their count;
    a count may only go down), drop transformers without tokens from their sums, and with
    ``final`` remove the ``units``/``eps`` marks (HR-NAS §3.3)."""
    out = g.copy()
    known: set[str] = set()
    for rec in unit_ops(g):
        params = dict(rec.params)
        for p, lab in params["units"]:
            known.add(lab)
            if lab not in kept:
                continue
            n = kept[lab]
            if not isinstance(n, int) or isinstance(n, bool) or not 0 <= n <= params[p]:
                raise PassError(
                    f"shrink: {lab!r} can keep 0..{params[p]} units (it has {params[p]}), not {n!r}"
                )
            params[p] = n
        if final:
            params.pop("units")
            params.pop("eps", None)
        out.update(rec.id, params=tuple(params.items()))
    unknown = sorted(set(kept) - known)
    if unknown:
        raise PassError(f"shrink: {unknown[0]!r} is no search-unit label of this graph")
    for rec in unit_ops(g):
        unit = VANISH_AT_ZERO.get(rec.op)
        if unit is not None and dict(out[rec.id].params)[unit] == 0:
            _drop_from_sums(out, rec.id)
    return out


def _drop_from_sums(g: Graph, nid: int) -> None:
    """Remove ``nid`` (a zero tensor) from the ``sum`` merges it feeds; a sum left with one
    input becomes that input. Kept when some other node reads it."""
    users = g.users(nid)
    if not users or not all(
        isinstance(g[u], Merge) and g[u].mode == "sum" and len(g.inputs(u)) > 1 for u in users
    ):
        return
    for u in users:
        rest = [i for i in g.inputs(u) if i != nid]
        if not rest:  # every input of the sum vanishes: keep one zero
            return
    for u in set(users):
        rest = [i for i in g.inputs(u) if i != nid]
        if len(rest) == 1:
            g.redirect(u, rest[0])
            g.remove(u)
        else:
            g.set_inputs(u, rest)
    g.remove(nid)


register(Pass(name="shrink", fn=shrink))

__all__ = ["VANISH_AT_ZERO", "shrink"]
