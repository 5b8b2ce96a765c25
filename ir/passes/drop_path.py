"""Drop path stays off identities.

DARTS (Liu et al., 2019; quark0/darts ``cnn/model.py``, ``Cell.forward``) regularises the
evaluation network by dropping each op's output path per sample, "if not isinstance(op,
Identity)": a skip connection is never dropped. A space writes ``drop_path`` after every chosen
op, because which op is chosen is not known while elaborating; once an architecture is resolved
this pass removes the ``drop_path`` nodes whose input is an identity (``skip_connect`` at stride 1
or ``identity``), so the network is the reference's.
"""

from __future__ import annotations

from nasc.ir.graph import Graph
from nasc.ir.nodes import Op, is_identity_op
from nasc.ir.passes.manager import Pass, register


def _identity(g: Graph, rec: object) -> bool:
    return isinstance(rec, Op) and is_identity_op(
        rec.op, dict(rec.params), [g[i].type for i in g.inputs(rec.id)], rec.type)


def elide_drop_path(g: Graph, mapping: dict[int, int] | None = None) -> Graph:
    """Remove every ``drop_path`` whose input is an identity op (its users read the input).
    ``mapping``, when given, receives ``old id -> new id`` of the nodes kept."""
    out = g.copy()
    changed = False
    for rec in g.nodes_of(Op):
        if rec.op != "drop_path":
            continue
        (src,) = g.inputs(rec.id)
        if _identity(g, g[src]):
            out.redirect(rec.id, src)
            out.remove(rec.id)
            changed = True
    if not changed:
        if mapping is not None:
            mapping.update({n: n for n in g.nx.nodes})
        return out
    return out.renumbered(mapping)


register(Pass(name="elide_drop_path", fn=elide_drop_path))

__all__ = ["elide_drop_path"]
