"""Derivation: from architecture weights on a relaxed graph to discrete decisions.

``weights`` maps each relaxed label to its raw parameters (alpha for a mixture, one per option;
beta for an input mixture, one per input). Rules:

* op and repeat mixtures: ``argmax_o alpha_o`` over the computed (non-zero) options (DARTS §2.4;
  DCNAS §3.5; DenseNAS §3.3.1);
* value choices that are not relaxed but given weights (importance factors): ``argmax``;
* input mixtures in the DARTS zero form: keep the ``k`` inputs whose op mixture has the
  strongest non-zero weight ``max_{o != none} softmax(alpha)_o`` (DARTS §2.4);
* input mixtures with edge weights: strength ``p_j`` = the normalised edge weight (over the
  node's inputs, or over each source's outgoing edges, DenseNAS eq. 3), multiplied by the
  strongest non-zero op weight of the input's mixture when it has one (PC-DARTS, β-weighted);
  the top ``k`` are kept, or for a range of k every input with at least the uniform share ``1/n``
  (at least ``k_min``, at most ``k_max``).

Only labels active under the decisions made so far are decided, in decision order, so the result
is canonical.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from nasc.ir.decisions import LabelSpec, label_specs, order
from nasc.ir.graph import Graph
from nasc.ir.nodes import InputMixture, Mixture
from nasc.ir.passes.relax import edge_choice, outgoing_edges, pick_sources


class DeriveError(ValueError):
    """Weights are missing or malformed for derivation."""


def softmax(xs: Sequence[float]) -> list[float]:
    m = max(xs)
    e = [math.exp(x - m) for x in xs]
    s = sum(e)
    return [x / s for x in e]


def derive(
    g: Graph, weights: Mapping[str, Sequence[float]], *, method: str = "auto"
) -> dict[str, Any]:
    """Decisions for every active label of the relaxed graph ``g`` (see the module docstring).

    ``method="viterbi"`` decides input mixtures that pick one input (DenseNAS blocks) by the
    whole path instead of each edge alone: ``score(j) = max_i score(i) * p_ij`` over the
    transition probabilities, so a block follows the predecessor on the most probable path
    from the network input (DenseNAS §3.3.1, Viterbi decoding).

    ``method="bfs"`` decodes a densely connected space from its outputs (DCNAS §3.5): a
    breadth-first search walks back from every output; each input mixture it reaches keeps the
    ``n`` inputs of highest transmission probability ``p`` (eq. 3), ``n`` being the number of
    paths it sampled during the search (eq. 5–6; its ``k`` range otherwise), and the search
    continues only through the kept inputs. Mixtures it never reaches are not part of the
    derived network; they are decided by the same rule (so the architecture is complete) and
    fall away as dead code when it is resolved. :func:`reached` gives the modules kept.
    """
    if method not in METHODS:
        raise DeriveError(f"unknown derivation method {method!r} ({', '.join(METHODS)})")
    specs = _relaxed_specs(g)
    mixtures = {r.label: r for r in g.nodes_of(Mixture)}
    inputs = {r.label: r for r in g.nodes_of(InputMixture)}
    for lab in specs:
        want = (
            len(mixtures[lab].options)
            if lab in mixtures
            else (inputs[lab].n if lab in inputs else None)
        )
        if want is None:
            continue
        if lab not in weights:
            raise DeriveError(f"no weights for label {lab!r}")
        if len(weights[lab]) != want:
            raise DeriveError(f"{lab!r} has {len(weights[lab])} weights, needs {want}")
    outgoing = _outgoing_shares(g, weights)
    paths: dict[str, tuple[int, ...]] = {}
    if method == "viterbi":
        paths = _viterbi(g, weights, outgoing)
    elif method == "bfs":
        paths = {g[nid].label: kept for nid, kept in _bfs(g, weights, outgoing)[1].items()}
    known: dict[str, Any] = {}
    for lab in order(specs):
        if not specs[lab].guard.holds(known):
            continue
        if lab in mixtures:
            known[lab] = _argmax(mixtures[lab], weights[lab])
        elif lab in paths:
            known[lab] = paths[lab]
        elif lab in inputs:
            known[lab] = _pick(g, inputs[lab], weights, outgoing)
        elif specs[lab].kind == "value" and lab in weights:
            known[lab] = _argmax_values(specs[lab], weights[lab])
        else:
            raise DeriveError(f"label {lab!r} is not relaxed; resolve it before deriving")
    return dict(sorted(known.items()))


def _relaxed_specs(g: Graph) -> dict[str, LabelSpec]:
    specs = label_specs(g)
    for r in g.relaxed_nodes():
        spec = specs.get(r.label)
        guard = r.guard if spec is None else spec.guard | r.guard
        specs[r.label] = LabelSpec(
            label=r.label,
            kind="input" if isinstance(r, InputMixture) else r.source_kind,
            options=tuple(r.options),
            guard=guard,
        )
    return specs


def _argmax(m: Mixture, alpha: Sequence[float]) -> Any:
    live = [(a, o) for a, o, c in zip(alpha, m.options, m.computed) if c]
    return max(live, key=lambda t: t[0])[1]


def _argmax_values(spec: LabelSpec, w: Sequence[float]) -> Any:
    if len(w) != len(spec.options):
        raise DeriveError(f"{spec.label!r} has {len(w)} weights, needs {len(spec.options)}")
    return max(zip(w, spec.options), key=lambda t: t[0])[1]


def _strength_of_edge(g: Graph, nid: int, weights: Mapping[str, Sequence[float]]) -> float | None:
    rec = g[edge_choice(g, nid)]
    if not isinstance(rec, Mixture):
        return None
    w = softmax(weights[rec.label])
    return max(x for x, c in zip(w, rec.computed) if c)


def _pick(g: Graph, rec: InputMixture, weights, outgoing) -> tuple[int, ...]:
    ins = g.inputs(rec.id)
    edge = [_strength_of_edge(g, i, weights) for i in ins]
    if rec.weighting == "zero":
        strength = [e if e is not None else 0.0 for e in edge]
    else:
        p = outgoing[rec.id] if rec.normalize == "outgoing" else softmax(weights[rec.label])
        strength = [pj * (e if e is not None else 1.0) for pj, e in zip(p, edge)]
    ranked = sorted(range(rec.n), key=lambda j: (-strength[j], j))
    if rec.k_min == rec.k_max:
        return tuple(sorted(ranked[: rec.k_min]))
    total = sum(strength) or 1.0
    above = [j for j in ranked if strength[j] / total >= 1.0 / rec.n - 1e-9]
    k = min(max(len(above), rec.k_min), rec.k_max)
    return tuple(sorted(ranked[:k]))


def _edge_probs(g: Graph, rec: InputMixture, weights, outgoing) -> list[float]:
    if rec.weighting == "zero":
        return [1.0 / rec.n] * rec.n
    return outgoing[rec.id] if rec.normalize == "outgoing" else softmax(weights[rec.label])


def _viterbi(g: Graph, weights, outgoing) -> dict[str, tuple[int, ...]]:
    """Best predecessor of every single-input mixture on the most probable path (log domain)."""
    score: dict[int, float] = {}
    best: dict[str, tuple[int, ...]] = {}
    for nid in g.topo_order():
        rec = g[nid]
        ins = g.inputs(nid)
        if isinstance(rec, InputMixture) and rec.k_max == 1:
            p = _edge_probs(g, rec, weights, outgoing)
            srcs = pick_sources(g, nid)
            cand = [
                (score[s] + math.log(max(pj, 1e-300)), -j) for j, (s, pj) in enumerate(zip(srcs, p))
            ]
            value, neg_j = max(cand)
            score[nid] = value
            best.setdefault(rec.label, (-neg_j,))
        else:
            score[nid] = max((score[i] for i in ins), default=0.0)
    return best


def _top_n(g: Graph, rec: InputMixture, weights, outgoing) -> tuple[int, ...]:
    """The ``n`` most probable inputs (``n`` = sampled paths, clamped to the ``k`` range)."""
    n = min(max(rec.paths or rec.k_min, rec.k_min), rec.k_max, rec.n)
    p = _edge_probs(g, rec, weights, outgoing)
    return tuple(sorted(sorted(range(rec.n), key=lambda j: (-p[j], j))[:n]))


def _bfs(g: Graph, weights, outgoing) -> tuple[list[int], dict[int, tuple[int, ...]]]:
    """DCNAS §3.5: breadth-first from the outputs over the kept inputs of each input mixture.
    Returns the input mixtures in the order reached and every input mixture's kept inputs."""
    from collections import deque

    from nasc.ir.nodes import Output

    kept = {r.id: _top_n(g, r, weights, outgoing) for r in g.nodes_of(InputMixture)}

    def modules_behind(starts: list[int]) -> list[int]:
        """The input mixtures first met walking back from ``starts`` (ops pass through)."""
        found, stack, seen = [], list(reversed(starts)), set()
        while stack:
            nid = stack.pop()
            if nid in seen:
                continue
            seen.add(nid)
            if nid in kept:
                found.append(nid)
            else:
                stack.extend(reversed(g.inputs(nid)))
        return found

    reached: list[int] = []
    queue = deque(modules_behind([r.id for r in g.nodes_of(Output)]))
    seen: set[int] = set()
    while queue:
        nid = queue.popleft()
        if nid in seen:
            continue
        seen.add(nid)
        reached.append(nid)
        ins = g.inputs(nid)
        queue.extend(modules_behind([ins[j] for j in kept[nid]]))
    return reached, kept


def reached(g: Graph, weights: Mapping[str, Sequence[float]]) -> list[str]:
    """The labels of the input mixtures the DCNAS breadth-first decoding reaches from the
    outputs, in the order it reaches them (the fusion modules of the derived network)."""
    return [g[nid].label for nid in _bfs(g, weights, _outgoing_shares(g, weights))[0]]


def _outgoing_shares(g: Graph, weights) -> dict[int, list[float]]:
    """DenseNAS eq. 3: each source's beta normalised over the edges leaving it."""
    nodes = [r for r in g.nodes_of(InputMixture) if r.normalize == "outgoing"]
    share: dict[int, list[float]] = {r.id: [0.0] * r.n for r in nodes}
    for outs in outgoing_edges(g):
        p = softmax([weights[g[nid].label][j] for nid, j in outs])
        for (nid, j), pj in zip(outs, p):
            share[nid][j] = pj
    return share


#: The derivation methods :func:`derive` knows.
METHODS = ("auto", "viterbi", "bfs")

__all__ = ["METHODS", "DeriveError", "derive", "reached", "softmax"]
