"""nasc builds the reference networks parameter for parameter."""

import pytest
import torch
from reference import NetworkCIFAR, TinyNetwork, n_params

import nasc


def _genotype(arch) -> dict:
    out = {}
    for kind in ("normal", "reduce"):
        pairs = []
        for i in range(4):
            pairs += [(arch[f"{kind}.n{i}.op{j}"], j) for j in arch[f"{kind}.n{i}.in"]]
        out[kind] = pairs
    return out


@pytest.mark.parametrize("name,published", [("darts_v1", None), ("darts_v2", 3.3),
                                            ("pc_darts", 3.6)])
def test_darts_evaluation_network_matches_network_cifar(name, published):
    arch = nasc.Architecture.load(name)
    space = nasc.load(arch.space, **arch.params)
    net = nasc.instantiate(space, arch)
    ref = NetworkCIFAR(36, 10, 20, _genotype(arch))
    assert n_params(net) == n_params(ref)
    if published is not None:
        assert round(n_params(net) / 1e6, 1) == published
    out = net(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10)


def test_darts_v2_at_search_size_matches_network_cifar():
    """The expectation of tests/ir/test_cost.py::test_darts_v2_params_at_c16 (C=16, 8 cells)."""
    arch = nasc.Architecture.load("darts_v2")
    net = nasc.instantiate(nasc.load("darts", C=16, layers=8), arch)
    assert n_params(net) == n_params(NetworkCIFAR(16, 10, 8, _genotype(arch))) == 246_106


@pytest.mark.parametrize("seed", range(4))
def test_nas_bench_201_matches_tiny_network(seed):
    space = nasc.load("nas_bench_201")
    arch = space.sample(seed)
    net = nasc.instantiate(space, arch)
    assert n_params(net) == n_params(TinyNetwork(16, 5, arch, 10))
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_nas_bench_201_all_conv3x3():
    space = nasc.load("nas_bench_201")
    arch = {e: "nor_conv_3x3" for e in space.choices()}
    assert n_params(nasc.instantiate(space, arch)) == n_params(TinyNetwork(16, 5, arch, 10))


def test_mobilenet_v2_is_torchvisions():
    net = nasc.instantiate(nasc.load("mobilenet_v2"))
    assert n_params(net) == 3_504_872
    net.eval()
    assert net(torch.randn(1, 3, 224, 224)).shape == (1, 1000)


def test_discrete_network_code_is_plain_pytorch():
    space = nasc.load("nas_bench_201", N=1)
    net = nasc.instantiate(space, space.sample(0))
    assert "nasc" not in net.code
    assert isinstance(net, torch.fx.GraphModule)
