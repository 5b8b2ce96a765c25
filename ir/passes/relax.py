"""Continuous relaxation of choices into mixtures.

* Op choices become :class:`~nasc.ir.nodes.Mixture` s: ``o_bar(x) = sum_o w_o o(x)`` with
  ``w = softmax(alpha)`` (DARTS eq. 2; DCNAS eq. 1–2; DenseNAS eq. 1–2) or the Gumbel-softmax
  ``w = softmax((alpha + g) / tau)`` with a hard straight-through option (GDAS; SNAS).
* Input choices become :class:`~nasc.ir.nodes.InputMixture` s. With ``zero=True`` the op choice
  on each picked input gains the zero candidate ``none`` (DARTS: the node sums all its inputs
  and derivation keeps the top-k by strongest non-zero op). With ``edge_weights="inputs"`` each
  input is weighted by ``softmax(beta)`` over the node's inputs (PC-DARTS edge normalisation;
  DCNAS eq. 3–4); with ``"outgoing"`` over each source's outgoing edges (DenseNAS eq. 3–4).
* Repeat choices become mixtures over the states at each depth.

One label is one architecture parameter however many nodes carry it. Value choices are kept.
"""

from __future__ import annotations

from typing import Literal

import attrs
from nasc.ir.graph import Graph
from nasc.ir.guards import Atom
from nasc.ir.nodes import InputChoice, InputMixture, Mixture, Op, OpChoice, RepeatChoice
from nasc.ir.passes.manager import Pass, PassError, register

ZERO = "none"


def relax(
    g: Graph,
    *,
    weighting: Literal["softmax", "gumbel"] = "softmax",
    tau: float = 1.0,
    hard: bool = False,
    zero: bool = True,
    edge_weights: Literal["inputs", "outgoing"] | None = None,
) -> Graph:
    """Replace every choice node by its relaxed form (see the module docstring)."""
    if weighting not in ("softmax", "gumbel"):
        raise PassError(f"relax: unknown weighting {weighting!r}")
    if edge_weights not in (None, "inputs", "outgoing"):
        raise PassError("relax: edge_weights must be None, 'inputs' or 'outgoing'")
    if not tau > 0:
        raise PassError("relax: the temperature tau must be positive")
    out = g.copy()
    zero_edges = _zero_edges(g) if zero else set()
    _check_shared(g, zero_edges)
    for rec in g:
        ins = g.inputs(rec.id)
        if isinstance(rec, OpChoice):
            add_zero = rec.id in zero_edges and ZERO not in rec.options
            options = rec.options + ((ZERO,) if add_zero else ())
            computed = tuple(o != ZERO or not zero for o in rec.options) + (
                (False,) if add_zero else ()
            )
            keep = [i for i, c in zip(ins, computed) if c]
            new = Mixture(
                id=rec.id,
                type=rec.type,
                guard=rec.guard,
                loc=rec.loc,
                label=rec.label,
                options=options,
                computed=computed,
                weighting=weighting,
                tau=tau,
                hard=hard,
            )
            out.replace(rec.id, new)
            out.set_inputs(rec.id, keep)
        elif isinstance(rec, RepeatChoice):
            out.replace(
                rec.id,
                Mixture(
                    id=rec.id,
                    type=rec.type,
                    guard=rec.guard,
                    loc=rec.loc,
                    label=rec.label,
                    options=rec.depths,
                    computed=(True,) * len(rec.depths),
                    weighting=weighting,
                    tau=tau,
                    hard=hard,
                    source_kind="repeat",
                ),
            )
        elif isinstance(rec, InputChoice):
            if edge_weights is None and not zero:
                raise PassError(
                    f"relax: input choice {rec.label!r} needs zero=True or edge_weights"
                )
            if edge_weights is None and any(edge_choice(g, i) not in zero_edges for i in ins):
                raise PassError(
                    f"relax: input choice {rec.label!r} has an input without an op choice, so "
                    "the DARTS zero form cannot weigh it; use edge_weights='inputs'"
                )
            out.replace(
                rec.id,
                InputMixture(
                    id=rec.id,
                    type=rec.type,
                    guard=rec.guard,
                    loc=rec.loc,
                    label=rec.label,
                    n=rec.n,
                    k_min=rec.k_min,
                    k_max=rec.k_max,
                    merge=rec.merge,
                    weighting="softmax" if edge_weights else "zero",
                    normalize=edge_weights or "inputs",
                ),
            )
    return out


#: Ops that leave an edge's value as it is in evaluation (a DARTS edge may be
#: ``drop_path(choose ...)``); the edge's op choice is found through them.
TRANSPARENT_OPS = frozenset({"drop_path"})


def edge_choice(g: Graph, nid: int) -> int:
    """The node behind ``nid`` once transparent ops are passed (the edge's op choice, or the
    mixture it became, when there is one)."""
    while isinstance(g[nid], Op) and g[nid].op in TRANSPARENT_OPS:
        nid = g.inputs(nid)[0]
    return nid


def _zero_edges(g: Graph) -> set[int]:
    """Op choices that produce an input of an input choice (they gain ``none``)."""
    out = set()
    for rec in g.nodes_of(InputChoice):
        for i in g.inputs(rec.id):
            if isinstance(g[edge_choice(g, i)], OpChoice):
                out.add(edge_choice(g, i))
    return out


def _check_shared(g: Graph, zero_edges: set[int]) -> None:
    seen: dict[str, bool] = {}
    for rec in g.nodes_of(OpChoice):
        z = rec.id in zero_edges
        if seen.setdefault(rec.label, z) != z:
            raise PassError(
                f"relax: label {rec.label!r} is an edge op in one place and not in another, so "
                "its zero candidate would differ between instances"
            )


def pick_sources(g: Graph, nid: int) -> list[int]:
    """For an input choice or mixture: the node each input was picked from.

    Input ``j`` is computed from its source under the condition ``label ∋ j``; the source is
    the first node, walking back from slot ``j``, that exists without that condition.
    """
    rec = g[nid]
    out = []
    for j, i in enumerate(g.inputs(nid)):
        atom = Atom(label=rec.label, test="has", value=j)
        node = i
        while all(atom in t for t in g[node].guard.terms) and g[node].guard.terms:
            ins = g.inputs(node)
            if not ins:
                break
            node = ins[0]
        out.append(node)
    return out


def outgoing_edges(g: Graph) -> list[list[tuple[int, int]]]:
    """The edges of ``normalize="outgoing"`` input mixtures grouped by the node they leave:
    for each source, its ``(mixture id, input slot)`` pairs (DenseNAS eq. 3 normalises beta
    over each group)."""
    from nasc.ir.nodes import InputMixture

    groups: dict[int, list[tuple[int, int]]] = {}
    for r in g.nodes_of(InputMixture):
        if r.normalize == "outgoing":
            for j, src in enumerate(pick_sources(g, r.id)):
                groups.setdefault(src, []).append((r.id, j))
    return list(groups.values())


register(
    Pass(
        name="relax",
        fn=relax,
        provides=frozenset({"relaxed"}),
        removes=frozenset({"choices"}),
    )
)

__all__ = ["TRANSPARENT_OPS", "ZERO", "edge_choice", "outgoing_edges", "pick_sources", "relax",
           "attrs"]
