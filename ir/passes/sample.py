"""Sampling: which candidates and inputs of a relaxed graph run at one training step.

The pass :func:`sample` only marks relaxed nodes with how they are sampled; the draws happen per
step through :func:`draw`, from an explicit seed and step number and nothing else, so every
process of a distributed run draws the same paths:

* ``"uniform"`` — one candidate uniformly (SPOS, single-path one-shot);
* ``"binary_gate"`` — ProxylessNAS binary gates: ``paths`` candidates drawn from
  ``softmax(alpha)`` without replacement (1 for the weight step, 2 for the architecture step;
  afterwards :func:`rebalance` keeps the unsampled weights unchanged, DenseNAS eq. 9);
* ``"multinomial"`` — ``paths`` candidates drawn from ``softmax(alpha)`` without replacement:
  one for DenseNAS weight training (§3.3.3), two for its architecture step (as binary gates);
* input mixtures: ``paths`` inputs drawn without replacement from ``softmax(beta / tau)`` with
  the temperature annealed by the caller (DCNAS eq. 5–6).

:func:`partial_channels` rewrites mixtures for partial-channel execution: only ``C/K`` channels
enter the candidates, the rest bypass them and are shuffled back in (PC-DARTS; the DCNAS variant
keeps a fixed mask and no edge normalisation, eq. 7).
"""

from __future__ import annotations

import math
import random
import zlib
from collections.abc import Mapping, Sequence
from typing import Literal

import attrs
from nasc.ir.graph import Graph
from nasc.ir.nodes import InputMixture, Mixture, Op
from nasc.ir.passes.manager import Pass, PassError, register
from nasc.ir.types import TensorType


def sample(
    g: Graph,
    *,
    ops: Literal["uniform", "binary_gate", "multinomial"] | None = "uniform",
    paths: int = 1,
    inputs: int = 0,
    tau: float = 1.0,
) -> Graph:
    """Mark every mixture with how its paths are drawn (see the module docstring)."""
    if ops not in (None, "uniform", "binary_gate", "multinomial"):
        raise PassError(f"sample: unknown op sampling {ops!r}")
    if paths < 1 or inputs < 0 or not tau > 0:
        raise PassError("sample: paths must be >= 1, inputs >= 0 and tau > 0")
    out = g.copy()
    for rec in g.nodes_of(Mixture):
        if ops is not None:
            out.update(rec.id, sampling=ops, paths=min(paths, sum(rec.computed)))
    for rec in g.nodes_of(InputMixture):
        if inputs:
            out.update(rec.id, paths=min(inputs, rec.n), tau=tau)
    return out


def _rng(seed: int, step: int, label: str) -> random.Random:
    """A generator fixed by (seed, step, label) alone: stable across processes and runs."""
    return random.Random((seed * 1_000_003 + step) * 4_294_967_311 + zlib.crc32(label.encode()))


def _softmax(xs: Sequence[float], tau: float = 1.0) -> list[float]:
    m = max(xs)
    e = [math.exp((x - m) / tau) for x in xs]
    s = sum(e)
    return [x / s for x in e]


def _without_replacement(rng: random.Random, probs: Sequence[float], n: int) -> tuple[int, ...]:
    """``n`` distinct indices, each draw proportional to the remaining probabilities."""
    idx = list(range(len(probs)))
    p = list(probs)
    out = []
    for _ in range(min(n, len(idx))):
        total = sum(p)
        r = rng.random() * total
        acc, pick = 0.0, len(idx) - 1
        for i, pi in enumerate(p):
            acc += pi
            if r < acc:
                pick = i
                break
        out.append(idx.pop(pick))
        p.pop(pick)
    return tuple(sorted(out))


def draw(
    g: Graph,
    weights: Mapping[str, Sequence[float]],
    *,
    seed: int,
    step: int,
    paths: int | None = None,
) -> dict[str, tuple[int, ...]]:
    """The options (indices into ``options``) and inputs that run at ``step``, per label.

    ``paths`` overrides the marked number of op paths (1 for a weight step, 2 for a
    ProxylessNAS architecture step). Labels share one draw, as they share one parameter.
    """
    out: dict[str, tuple[int, ...]] = {}
    for rec in g.nodes_of(Mixture):
        if rec.sampling is None or rec.label in out:
            continue
        rng = _rng(seed, step, rec.label)
        live = [i for i, c in enumerate(rec.computed) if c]
        n = paths if paths is not None else rec.paths
        if rec.sampling == "uniform":
            out[rec.label] = tuple(sorted(rng.sample(live, min(n, len(live)))))
        else:
            alpha = weights[rec.label]
            probs = _softmax([alpha[i] for i in live])
            out[rec.label] = tuple(live[j] for j in _without_replacement(rng, probs, n))
    for rec in g.nodes_of(InputMixture):
        if not rec.paths or rec.label in out:
            continue
        rng = _rng(seed, step, rec.label)
        out[rec.label] = _without_replacement(rng, _softmax(weights[rec.label], rec.tau), rec.paths)
    return out


def rebalance(old: Sequence[float], new: Sequence[float], sampled: Sequence[int]) -> list[float]:
    """DenseNAS eq. 9 / ProxylessNAS: shift the updated sampled parameters by
    ``bias = ln(sum_{o in S} exp(alpha_o) / sum_{o in S} exp(alpha'_o))`` so that the softmax
    weights of the options that were not sampled stay what they were."""
    bias = math.log(sum(math.exp(old[i]) for i in sampled)) - math.log(
        sum(math.exp(new[i]) for i in sampled)
    )
    out = list(old)
    for i in sampled:
        out[i] = new[i] + bias
    return out


def partial_channels(g: Graph, *, k: int = 4, shuffle: bool = True, fixed: bool = False) -> Graph:
    """Run only ``C/k`` channels through each mixture's candidates (PC-DARTS; DCNAS eq. 7).

    A mixture whose candidates all read one tensor ``x`` becomes
    ``partial_merge(mixture(candidates(channel_slice(x))), x)``: the candidates see channels
    ``[0, C/k)`` and every node inside them works on ``1/k`` of its channels (a ``C`` parameter
    is divided by ``k``), the other channels bypass the mixture (2x2 max-pooled when it halves
    the resolution), and ``partial_merge`` concatenates and, with ``shuffle``, channel-shuffles
    in ``k`` groups (output channel ``j*k+i`` comes from concatenated channel ``i*(C/k)+j``).
    ``fixed`` records the DCNAS variant (the same channels every step, no edge normalisation).
    Mixtures whose candidates read different tensors, or whose widths a value choice decides,
    are left as they are.
    """
    if k < 1:
        raise PassError("partial_channels: k must be at least 1")
    out = g.copy()
    for mid in [r.id for r in g.nodes_of(Mixture)]:
        # read `out`: earlier mixtures' users already read their partial merge
        rec = out[mid]
        region, sources = candidate_region(out, rec)
        if len(sources) != 1:
            continue
        (x,) = sources
        xt = out[x].type
        widths = [out[nid].type.channels for nid in [x, *region, rec.id]]
        if not all(isinstance(ch, int) for ch in widths):
            continue  # a value choice decides a width here: no fixed slice exists
        for nid in [x, *region, rec.id]:
            ch = out[nid].type.channels
            if ch % k:
                raise PassError(
                    f"{rec.loc}: partial channels 1/{k} of {out[nid].type} at %{nid} "
                    "(channels must divide)"
                )
        sl = out.add(
            Op,
            [x],
            op="channel_slice",
            params=(("start", 0), ("stop", xt.channels // k)),
            type=attrs.evolve(xt, channels=xt.channels // k),
            guard=rec.guard,
            loc=rec.loc,
        )
        for nid in region:
            o = out[nid]
            params = getattr(o, "params", ())
            params = tuple((n, v // k if n == "C" else v) for n, v in params)
            changes = {"type": attrs.evolve(o.type, channels=o.type.channels // k)}
            if isinstance(o, Op):
                changes["params"] = params
            out.replace(nid, attrs.evolve(o, **changes))
            out.set_inputs(nid, [sl if i == x else i for i in out.inputs(nid)])
        out.set_inputs(rec.id, [sl if i == x else i for i in out.inputs(rec.id)])
        out.replace(
            rec.id, attrs.evolve(rec, type=attrs.evolve(rec.type, channels=rec.type.channels // k))
        )
        stride = rec.type.stride // xt.stride if isinstance(rec.type.stride, int) else 1
        merged = out.add(
            Op,
            [rec.id, x],
            op="partial_merge",
            params=(("k", k), ("stride", stride), ("shuffle", shuffle), ("fixed", fixed)),
            type=TensorType.image(rec.type.channels, rec.type.stride),
            guard=rec.guard,
            loc=rec.loc,
        )
        for user in [u for u in out.users(rec.id) if u != merged]:
            out.set_inputs(user, [merged if i == rec.id else i for i in out.inputs(user)])
    return out.renumbered()


def candidate_region(g: Graph, m: Mixture) -> tuple[list[int], set[int]]:
    """The nodes that exist only for some candidate of ``m`` (every guard term decides its
    label), in topological order, and the tensors from outside that they read."""

    def inside(nid: int) -> bool:
        terms = g[nid].guard.terms
        return bool(terms) and all(
            any(a.label == m.label and a.test == "eq" for a in t) for t in terms
        )

    region: set[int] = set()
    sources: set[int] = set()
    stack = list(g.inputs(m.id))
    while stack:
        n = stack.pop()
        if n in region or n in sources:
            continue
        if inside(n):
            region.add(n)
            stack.extend(g.inputs(n))
        else:
            sources.add(n)
    # the region is small: sort it alone (the whole graph's order may be stale mid-pass)
    order = g.topo_sorted(region)
    return order, sources


register(Pass(name="sample", fn=sample, requires=frozenset({"relaxed"})))
register(Pass(name="partial_channels", fn=partial_channels, requires=frozenset({"relaxed"})))

__all__ = ["draw", "partial_channels", "rebalance", "sample"]
