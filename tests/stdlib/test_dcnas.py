"""DCNAS (§3.1, §4.1): the densely connected space, structurally and end to end at 64x64."""

import pytest
import torch
from nasc.ir.nodes import InputChoice, OpChoice

import nasc


@pytest.mark.parametrize("L", [1, 2, 4, 14])
def test_fusion_modules_have_8L_L_plus_1_input_candidates(L):
    space = nasc.load("dcnas", L=L, F=8)
    picks = space.graph.nodes_of(InputChoice)
    assert len(picks) == 4 * L
    assert sum(r.n for r in picks) == 8 * L * (L + 1)
    assert all(r.k_min == 1 and r.k_max == r.n for r in picks)  # any non-empty subset


def test_mixture_layers_are_mobilenet_v3_blocks():
    space = nasc.load("dcnas", L=2, F=8)
    ops = space.graph.nodes_of(OpChoice)
    assert len(ops) == 4 * 2 and all(len(r.options) == 6 for r in ops)
    assert ops[0].options[0] == 'mbconv[k=3, e=3, se=true, act="hswish"]'


def test_count_is_exact():
    space = nasc.load("dcnas", L=2, F=8)
    # each module: 2^n - 1 input subsets, 6 blocks; layer 1 reads 4 modules, layer 2 reads 8
    assert space.count() == ((2**4 - 1) * 6) ** 4 * ((2**8 - 1) * 6) ** 4


def test_dcnas_compiles_runs_derives_and_instantiates_at_64x64():
    space = nasc.load("dcnas", L=3, F=8, classes=5)
    net = nasc.compile(space, method="dcnas")
    assert any(getattr(r, "op", None) == "partial_merge" for r in net.graph)
    net.sample(seed=0, step=0)
    out = net(torch.randn(2, 3, 64, 64))
    assert out.shape == (2, 5, 64, 64)
    out.mean().backward()
    arch = space.canonical(net.derive())
    model = nasc.instantiate(space, arch)
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 5, 64, 64)
