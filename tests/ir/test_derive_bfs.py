"""DCNAS §3.5: decoding the densely connected space breadth-first from the output."""

import random

import pytest
import torch
from nasc.ir.derive import DeriveError, derive, reached

import nasc


def _weights(net, seed):
    rng = random.Random(seed)
    return {lab: [rng.gauss(0, 1) for _ in range(len(a))] for lab, a in zip(net.labels, net.alpha)}


@pytest.fixture(scope="module")
def dcnas():
    space = nasc.load("dcnas", L=3, F=8, classes=3)
    return space, nasc.compile(space, method="dcnas", device="meta")


@pytest.mark.parametrize("seed", range(4))
def test_every_module_keeps_the_inputs_it_sampled_during_the_search(dcnas, seed):
    space, net = dcnas
    w = _weights(net, seed)
    arch = derive(net.graph, w, method="bfs")
    for lab, kept in arch.items():
        if lab.endswith(".in"):
            p = torch.softmax(torch.tensor(w[lab]), 0)
            assert len(kept) == 2  # the dcnas recipe samples n = 2 inputs per module
            rest = [j for j in range(len(p)) if j not in kept]
            assert min(p[j] for j in kept) >= max(p[j] for j in rest)
    space.canonical(arch)  # a complete architecture of the space


@pytest.mark.parametrize("seed", range(4))
def test_the_search_reaches_exactly_the_modules_the_output_depends_on(dcnas, seed):
    space, net = dcnas
    w = _weights(net, seed)
    arch = derive(net.graph, w, method="bfs")
    L = 3
    # module index j in the list of candidates: stem levels 0..3, then 4 per layer
    live = {(s, L) for s in range(4)}
    for layer in range(L, 0, -1):
        for s in range(4):
            if (s, layer) in live:
                for j in arch[f"M{s}.{layer}.in"]:
                    if j >= 4:
                        live.add((j % 4, j // 4))
    assert set(reached(net.graph, w)) == {f"M{s}.{layer}.in" for s, layer in live}
    # the search starts at the output: the last layer's modules come first
    assert set(reached(net.graph, w)[:4]) == {f"M{s}.{L}.in" for s in range(4)}


def test_the_derived_network_runs():
    space = nasc.load("dcnas", L=2, F=8, classes=3)
    net = nasc.compile(space, method="dcnas", seed=0)
    arch = net.derive(method="bfs")
    model = nasc.instantiate(space, arch).eval()
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 3, 64, 64)


def test_unknown_methods_are_named():
    space = nasc.load("dcnas", L=1, F=8, classes=3)
    net = nasc.compile(space, method="dcnas", device="meta")
    with pytest.raises(DeriveError, match="auto, viterbi, bfs"):
        derive(net.graph, _weights(net, 0), method="dfs")
