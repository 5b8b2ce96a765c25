"""Search strategies' pieces beyond one first-order step: DARTS' second-order architecture
gradient, the temperature schedules (the GDAS and SNAS schedules themselves are in their
records, :mod:`nasc.methods`), and the evolutionary search over
sub-architectures that SPOS runs on a trained supernet (also used by regularised evolution).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from nasc.ir import decisions as dec

from nasc.architecture import Architecture

Batch = tuple[torch.Tensor, torch.Tensor]
Loss = Callable[[torch.nn.Module, Batch], torch.Tensor]


# ---- DARTS second order ------------------------------------------------------------------------
def hessian_vector_product(net: Any, loss: Loss, batch: Batch, vector: Sequence[torch.Tensor],
                           r: float = 1e-2) -> list[torch.Tensor]:
    """DARTS eq. 8: ``∇²_{α,w} L_train(w, α) · v ≈ (∇_α L_train(w⁺, α) − ∇_α L_train(w⁻, α)) / 2ε``
    with ``w± = w ± ε v`` and ``ε = r / ‖v‖``. The weights are restored afterwards."""
    weights = list(net.weight_parameters())
    alphas = list(net.arch_parameters())
    norm = torch.sqrt(sum((v * v).sum() for v in vector))
    eps = r / max(float(norm), 1e-12)
    grads = []
    with torch.no_grad():
        for p, v in zip(weights, vector):
            p.add_(v, alpha=eps)
    grads.append(torch.autograd.grad(loss(net, batch), alphas, allow_unused=True))
    with torch.no_grad():
        for p, v in zip(weights, vector):
            p.sub_(v, alpha=2 * eps)
    grads.append(torch.autograd.grad(loss(net, batch), alphas, allow_unused=True))
    with torch.no_grad():
        for p, v in zip(weights, vector):
            p.add_(v, alpha=eps)
    return [
        (_zero_if_none(gp, a) - _zero_if_none(gm, a)) / (2 * eps)
        for gp, gm, a in zip(*grads, alphas)
    ]


def _zero_if_none(g: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
    return torch.zeros_like(like) if g is None else g


def unrolled_arch_gradient(net: Any, loss: Loss, train: Batch, valid: Batch, xi: float,
                           w_opt: torch.optim.Optimizer | None = None, r: float = 1e-2, *,
                           mean: Callable[[list[torch.Tensor]], None] | None = None,
                           ) -> list[torch.Tensor]:
    """DARTS eq. 7 with eq. 8: the architecture gradient through one virtual weight step,

    ``∇_α L_val(w', α) − ξ ∇²_{α,w} L_train(w, α) · ∇_{w'} L_val(w', α)``,
    ``w' = w − ξ ∇_w L_train(w, α)`` (with the optimiser's momentum and weight decay, as the
    reference implementation's ``_compute_unrolled_model`` does) and ``ε = r / ‖v‖``
    (DARTS: r = 0.01). Returns the gradient per architecture parameter; the weights are left
    as they were.

    ``mean(tensors)``, when given, averages a list of tensors in place over the processes of a
    distributed run; it is applied to the virtual step's weight gradient, to ``∇_{w'} L_val``
    and to the result (see :meth:`nasc.search.distributed.Context.unrolled_arch_gradient`).
    """
    weights = list(net.weight_parameters())
    alphas = list(net.arch_parameters())
    saved = [p.detach().clone() for p in weights]
    g_train = [_zero_if_none(g, p) for g, p in zip(
        torch.autograd.grad(loss(net, train), weights, allow_unused=True), weights)]
    if mean is not None:
        mean(g_train)
    momentum, decay = 0.0, 0.0
    if w_opt is not None:
        group = w_opt.param_groups[0]
        momentum, decay = group.get("momentum", 0.0), group.get("weight_decay", 0.0)
    with torch.no_grad():
        for p, g in zip(weights, g_train):
            step = g + decay * p
            buf = w_opt.state.get(p, {}).get("momentum_buffer") if w_opt is not None else None
            if buf is not None:
                step = step + momentum * buf
            p.sub_(step, alpha=xi)
    l_val = loss(net, valid)
    grads = torch.autograd.grad(l_val, alphas + weights, allow_unused=True)
    d_alpha = [_zero_if_none(g, a) for g, a in zip(grads[: len(alphas)], alphas)]
    d_w = [_zero_if_none(g, p) for g, p in zip(grads[len(alphas) :], weights)]
    if mean is not None:
        mean(d_w)
    with torch.no_grad():
        for p, s in zip(weights, saved):
            p.copy_(s)
    hvp = hessian_vector_product(net, loss, train, d_w, r=r)
    out = [da - xi * h for da, h in zip(d_alpha, hvp)]
    if mean is not None:
        mean(out)
    return out


# ---- temperature schedules ---------------------------------------------------------------------
def temperature(method: str, epoch: int, epochs: int,
                schedule: tuple[float, float, str] | None = None) -> float | None:
    """The Gumbel temperature of ``epoch`` under ``schedule`` (start, end, linear|exponential),
    by default the method's (:attr:`nasc.methods.Method.temperatures`: GDAS decays tau
    linearly from 10 to 0.1, SNAS anneals it exponentially from 1.0); ``None`` for methods
    without one."""
    if schedule is None:
        from nasc import methods

        schedule = methods.get(method).temperatures
    if schedule is None:
        return None
    start, end, kind = schedule
    t = epoch / max(epochs - 1, 1)
    if kind == "linear":
        return start + (end - start) * t
    if kind == "exponential":
        return start * math.exp(t * math.log(end / start))
    raise ValueError(f"unknown temperature schedule {kind!r}; linear or exponential")


# ---- evolution over sub-architectures ----------------------------------------------------------
def complete(specs: Mapping[str, dec.LabelSpec], known: dict[str, Any],
             rng: random.Random) -> dict[str, Any]:
    """``known`` with every label it activates but lacks drawn, and inactive ones dropped."""
    out: dict[str, Any] = {}
    for lab in dec.order(specs):
        if specs[lab].guard.holds(out):
            out[lab] = known[lab] if lab in known else specs[lab].draw(rng)
    return out


def mutate(space: Any, arch: Mapping[str, Any], rng: random.Random,
           prob: float = 0.1) -> Architecture:
    """Each decision redrawn with probability ``prob`` (SPOS); at least one changes when the
    space has more than one architecture (regularised evolution's single mutation)."""
    specs = space.specs
    known = dict(arch)
    free = [lab for lab in known if specs[lab].size() > 1]
    forced = rng.choice(free) if free else None
    for lab in sorted(known):
        if lab == forced or rng.random() < prob:
            old = known[lab]
            for _ in range(16):
                known[lab] = specs[lab].draw(rng)
                if Architecture({lab: known[lab]}) != Architecture({lab: old}):
                    break
    return space.canonical(complete(specs, known, rng))


def crossover(space: Any, a: Mapping[str, Any], b: Mapping[str, Any],
              rng: random.Random) -> Architecture:
    """Each decision taken from either parent with equal chance (SPOS)."""
    labels = sorted(set(a) | set(b))
    known = {}
    for lab in labels:
        pick = a if (lab in a and (lab not in b or rng.random() < 0.5)) else b
        known[lab] = pick[lab]
    return space.canonical(complete(space.specs, known, rng))


def recalibrate_bn(net: torch.nn.Module, batches: Sequence[torch.Tensor]) -> None:
    """SPOS: recompute every BatchNorm's statistics for the current path on training batches."""
    bns = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
           and m.track_running_stats]
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the calibration batches
    was = net.training
    net.train()
    with torch.no_grad():
        for x in batches:
            net(x)
    for m, mom in zip(bns, saved):
        m.momentum = mom
    net.train(was)


def evolve(space: Any, score: Callable[[Architecture], float], rng: random.Random, *,
           population: int = 50, generations: int = 20, topk: int = 10, mutation: float = 0.1,
           state: dict[str, Any] | None = None,
           on_generation: Callable[[dict[str, Any]], None] | None = None,
           progress: Callable[[int], None] | None = None,
           spread: Callable[[Callable[[int], float], int], list[float]] | None = None,
           ) -> dict[str, Any]:
    """SPOS' evolutionary search (Guo et al. 2020, §3.3 and Alg. 1): a population of
    ``population``; each generation keeps the ``topk`` best seen so far and breeds half the next
    population by mutation (probability ``mutation`` per decision) and half by crossover.

    ``state`` (as passed to ``on_generation`` after each generation) resumes a search; it holds
    the generation, every scored architecture, the population and the generator's state.
    ``spread(fn, n)`` computes ``[fn(0), ..., fn(n - 1)]`` (the new members of a generation),
    e.g. split across processes (:meth:`nasc.search.distributed.Context.spread`); by default in
    turn.
    """
    if state is None:
        state = {"generation": 0, "scores": {}, "population": [], "rng": None}
    else:
        rng.setstate(state["rng"])
    state.setdefault("duplicates_skipped", 0)
    scores: dict[str, float] = state["scores"]
    evaluate = spread or (lambda fn, n: [float(fn(i)) for i in range(n)])
    networks: dict[str, str] = {}  # architecture JSON -> canonical hash (docs/unique.md)

    def network(a: Architecture) -> str:
        key = a.to_json()
        if key not in networks:
            networks[key] = space.canonical_hash(a)
        return networks[key]

    def score_new(archs: list[Architecture]) -> None:
        new = [a for a in archs if a.to_json() not in scores]
        for a, value in zip(new, evaluate(lambda i: score(new[i]), len(new))):
            scores[a.to_json()] = float(value)
        if progress is not None and new:
            progress(len(new))

    def unique(candidates: list[Architecture], want: int, make) -> list[Architecture]:
        """Fill up to ``want`` with draws of networks neither in ``candidates`` nor scored
        before; a draw of a known network is replaced by a new draw (and counted)."""
        seen = {network(a) for a in candidates} | {network(Architecture.from_json(k))
                                                   for k in scores}
        out = list(candidates)
        for _ in range(want * 20):
            if len(out) >= want:
                break
            a = make()
            if network(a) in seen:
                state["duplicates_skipped"] += 1
                continue
            seen.add(network(a))
            out.append(a)
        return out

    while state["generation"] < generations:
        pop = [Architecture.from_json(k) for k in state["population"]]
        if not pop:
            pop = unique([], population, lambda: space.sample(rng))
        else:
            ranked = sorted(scores, key=lambda k: -scores[k])[:topk]
            parents = [Architecture.from_json(k) for k in ranked]
            half = population // 2
            children = unique(
                [], half, lambda ps=parents: mutate(space, rng.choice(ps), rng, mutation))
            children = unique(
                children, population,
                lambda ps=parents: crossover(space, rng.choice(ps), rng.choice(ps), rng),
            )
            pop = children
        score_new(pop)
        state["population"] = [a.to_json() for a in pop]
        state["generation"] += 1
        state["rng"] = rng.getstate()
        if on_generation is not None:
            on_generation(state)
    best = max(scores, key=lambda k: scores[k])
    return {"best": Architecture.from_json(best), "score": scores[best], "state": state,
            "duplicates_skipped": state["duplicates_skipped"]}
