"""Strategies: DARTS second order against explicit autograd, temperature schedules, SPOS'
evolutionary search, and the multi-trial baselines."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest
import torch
from torch.func import functional_call

import nasc
from nasc.search.multitrial import run_trials
from nasc.search.run import search
from nasc.search.strategies import (
    crossover,
    evolve,
    hessian_vector_product,
    mutate,
    recalibrate_bn,
    temperature,
    unrolled_arch_gradient,
)

TINY = str(Path(__file__).with_name("tinydata.py")) + ":tiny"
SMALL = {"C": 4, "N": 1}


def _tiny_supernet():
    torch.manual_seed(0)
    sp = nasc.load("nas_bench_201", C=2, N=1, in_channels=1, classes=3)
    net = nasc.compile(sp, method="darts", channels_last=False).double()
    # the fused mixture BN is a custom autograd Function with a first derivative only; the
    # explicit double-backward reference needs the plain ops
    net.fuse_bn_tail = False
    with torch.no_grad():
        for a in net.arch_parameters():
            a.normal_(0, 0.5)  # away from the uniform start: a non-trivial Hessian
    gen = torch.Generator().manual_seed(1)
    batch = lambda: (torch.randn(6, 1, 8, 8, generator=gen, dtype=torch.float64),  # noqa: E731
                     torch.randint(0, 3, (6,), generator=gen))
    return net, batch(), batch()


def _loss(net, batch):
    return torch.nn.functional.cross_entropy(net(batch[0]), batch[1])


def test_finite_difference_hessian_vector_product_matches_double_backward():
    """DARTS eq. 8 against the exact ∇_α (∇_w L · v) by double backward (a small ε: the
    ReLUs' kinks make DARTS' ε = 0.01/‖v‖ coarse on a network this tiny)."""
    net, train, _ = _tiny_supernet()
    weights, alphas = list(net.weight_parameters()), list(net.arch_parameters())
    gen = torch.Generator().manual_seed(2)
    v = [torch.randn(p.shape, generator=gen, dtype=p.dtype) for p in weights]
    g_w = torch.autograd.grad(_loss(net, train), weights, create_graph=True, allow_unused=True)
    dot = sum((g * vi).sum() for g, vi in zip(g_w, v) if g is not None)
    exact = torch.autograd.grad(dot, alphas)
    before = [p.detach().clone() for p in weights]
    approx = hessian_vector_product(net, _loss, train, v, r=1e-6)
    for p, b in zip(weights, before):  # the weights are restored
        assert torch.allclose(p, b, atol=1e-12)
    exact_flat = torch.cat([e.flatten() for e in exact])
    approx_flat = torch.cat([a.flatten() for a in approx])
    assert exact_flat.norm() > 1e-3
    assert (approx_flat - exact_flat).norm() < 1e-6 * exact_flat.norm()


def test_second_order_gradient_matches_the_unrolled_gradient():
    """DARTS eq. 7 with eq. 8 against the exact gradient of L_val(w - ξ∇_w L_train(w, α), α)."""
    net, train, valid = _tiny_supernet()
    xi = 0.5
    names = [n for n, _ in net.named_parameters()]
    alpha_names = {n for n, p in net.named_parameters()
                   if any(p is a for a in net.arch_parameters())}
    params = dict(net.named_parameters())
    w_names = [n for n in names if n not in alpha_names]
    l_train = torch.nn.functional.cross_entropy(functional_call(net, params, (train[0],)),
                                                train[1])
    g = torch.autograd.grad(l_train, [params[n] for n in w_names], create_graph=True,
                            allow_unused=True)
    unrolled = dict(params)
    for n, gi in zip(w_names, g):
        if gi is not None:
            unrolled[n] = params[n] - xi * gi
    l_val = torch.nn.functional.cross_entropy(functional_call(net, unrolled, (valid[0],)),
                                              valid[1])
    alphas = list(net.arch_parameters())
    exact = torch.cat([e.flatten() for e in torch.autograd.grad(l_val, alphas)])
    approx = torch.cat([a.flatten() for a in
                        unrolled_arch_gradient(net, _loss, train, valid, xi, r=1e-6)])
    # the first-order gradient at w' alone misses the Hessian term; eq. 7-8 recovers it
    with torch.no_grad():
        saved = {n: params[n].detach().clone() for n in w_names}
        for n in w_names:
            params[n].copy_(unrolled[n].detach())
    first = torch.cat([a.flatten() for a in torch.autograd.grad(_loss(net, valid), alphas)])
    with torch.no_grad():
        for n in w_names:
            params[n].copy_(saved[n])
    err = (approx - exact).norm()
    assert err < 1e-5 * exact.norm()
    assert (first - exact).norm() > 10 * err


def test_second_order_search_runs(tmp_path, one_thread):
    r = search("nas_bench_201", method="darts", order=2, data=TINY, epochs=1, retrain_epochs=1,
               batch=16, progress=False, space_params=SMALL, retrain_params=SMALL)
    assert r.report["order"] == 2 and set(r.architecture) == {
        "1<-0", "2<-0", "2<-1", "3<-0", "3<-1", "3<-2"}
    with pytest.raises(nasc.NasError, match="DARTS-family"):
        search("nas_bench_201", method="spos", order=2, data=TINY, progress=False)


def test_temperature_schedules():
    assert temperature("gdas", 0, 5) == 10.0
    assert math.isclose(temperature("gdas", 4, 5), 0.1)
    assert math.isclose(temperature("gdas", 2, 5), 5.05)  # linear
    assert temperature("snas", 0, 3) == 1.0
    assert math.isclose(temperature("snas", 2, 3), 0.33)
    assert math.isclose(temperature("snas", 1, 3), math.sqrt(0.33))  # exponential
    assert temperature("darts", 0, 5) is None


def test_gdas_search_anneals_its_temperature(tmp_path, one_thread):
    search("nas_bench_201", method="gdas", data=TINY, epochs=3, retrain_epochs=1, batch=16,
           progress=False, space_params=SMALL, retrain_params=SMALL, out=tmp_path)
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["temperature"] for r in rows if r["phase"] == "search"] == pytest.approx(
        [10.0, 5.05, 0.1])


def test_mutation_and_crossover_stay_in_the_space():
    sp = nasc.load("darts", C=4, layers=3)
    rng = random.Random(0)
    a, b = sp.sample(1), sp.sample(2)
    for _ in range(20):
        m = mutate(sp, a, rng, prob=0.0)
        assert sp.canonical(m) == m and m != a
        c = crossover(sp, a, b, rng)
        assert sp.canonical(c) == c
        # every decision from a parent (a label that the mix newly activates is drawn)
        assert all(c[k] in (a.get(k), b.get(k)) for k in c if k in a or k in b)
    nb = nasc.load("nas_bench_201", **SMALL)
    a = nb.sample(3)
    for _ in range(20):  # regularised evolution's mutation: exactly one decision changes
        assert sum(v != a[k] for k, v in mutate(nb, a, rng, prob=0.0).items()) == 1


def test_spos_evolution_finds_the_best_and_resumes():
    sp = nasc.load("nas_bench_201", **SMALL)

    def score(arch):
        return sum(v == "nor_conv_3x3" for v in arch.values())

    found = evolve(sp, score, random.Random(0), population=16, generations=12, topk=4)
    assert found["score"] == 6  # all six edges nor_conv_3x3, of 15,625 architectures
    assert found["score"] == max(found["state"]["scores"].values())
    saved = []
    evolve(sp, score, random.Random(0), population=16, generations=3, topk=4,
           on_generation=lambda s: saved.append(json.loads(json.dumps(s, default=list))))
    state = saved[1]
    state["rng"] = tuple(tuple(x) if isinstance(x, list) else x for x in state["rng"])
    again = evolve(sp, score, random.Random(99), population=16, generations=3, topk=4,
                   state=state)
    full = evolve(sp, score, random.Random(0), population=16, generations=3, topk=4)
    assert again["state"]["scores"] == full["state"]["scores"]


def test_bn_recalibration_uses_the_calibration_batches():
    bn = torch.nn.BatchNorm2d(2)
    net = torch.nn.Sequential(bn)
    xs = [torch.randn(4, 2, 3, 3) + 5, torch.randn(4, 2, 3, 3) + 5]
    recalibrate_bn(net, xs)
    assert torch.allclose(bn.running_mean, torch.cat(xs).mean(dim=(0, 2, 3)), atol=1e-5)
    assert bn.momentum == 0.1


def test_spos_search_scores_sub_architectures_with_inherited_weights(one_thread):
    r = search("nas_bench_201", method="spos", data=TINY, epochs=1, retrain_epochs=1, batch=16,
               progress=False, space_params=SMALL, retrain_params=SMALL, spos_population=4,
               spos_generations=2, spos_topk=2)
    assert 0.0 <= r.report["evolution_valid_accuracy"] <= 1.0
    assert r.report["duplicates_skipped"] >= 0  # draws of an already scored network


@pytest.mark.parametrize("method", ["random", "evolution"])
def test_multi_trial_baselines(method, one_thread):
    from nasc.search.data import load_data

    sp = nasc.load("nas_bench_201", **SMALL, in_channels=1)
    found = run_trials(method, sp, load_data(TINY), trials=4, epochs=1, batch=32, seed=0,
                       population=2, sample=2)
    scores = [t["score"] for t in found["trials"]]
    assert len(scores) == 4 and found["score"] == max(scores)
    archs = [t["architecture"] for t in found["trials"]]
    if method == "evolution":  # each child differs from some earlier member in one decision
        for child in archs[2:]:
            assert any(sum(child[k] != p[k] for k in child) == 1 for p in archs[:3])


def test_search_reports_random_search_at_equal_budget(one_thread):
    r = search("nas_bench_201", method="darts", data=TINY, epochs=2, retrain_epochs=1,
               batch=16, progress=False, space_params=SMALL, retrain_params=SMALL,
               compare_random=True, trial_epochs=1)
    base = r.report["random_search_baseline"]
    assert base["trials"] * base["trial_epochs"] == r.report["search_epochs"]
    assert base["duplicates_skipped"] >= 0
    assert 0.0 <= base["test_accuracy"] <= 1.0
