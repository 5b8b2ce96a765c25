"""Supernets compiled from spaces: faithful to the references and correct in every mode."""

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from reference import SearchNetwork

import nasc


def test_darts_search_network_matches_model_search():
    net = nasc.compile(nasc.load("darts", C=16, layers=8), method="darts")
    ref = SearchNetwork(16, 10, 8)
    assert sum(p.numel() for p in net.weight_parameters()) == sum(
        p.numel() for p in ref.weight_parameters())
    assert sum(p.numel() for p in net.arch_parameters()) == 2 * 14 * 8


def test_darts_supernet_trains_both_parameter_sets():
    net = nasc.compile(nasc.load("darts", C=4, layers=3), method="darts")
    loss = torch.nn.functional.cross_entropy(net(torch.randn(2, 3, 16, 16)), torch.tensor([1, 2]))
    loss.backward()
    assert all(p.grad is not None for p in net.arch_parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in net.weight_parameters())


@pytest.mark.parametrize("method", ["darts", "pc-darts", "gdas", "snas", "spos", "proxyless"])
def test_every_method_compiles_runs_and_derives(method):
    space = nasc.load("darts", C=8, layers=3)
    net = nasc.compile(space, method=method)
    net.sample(seed=0, step=1) if method in ("spos", "proxyless") else net.relax()
    out = net(torch.randn(2, 3, 16, 16))
    assert out.shape == (2, 10)
    merges = [r for r in net.graph if getattr(r, "op", None) == "partial_merge"]
    assert bool(merges) == (method == "pc-darts")
    arch = space.canonical(net.derive())
    assert space.resolve(arch).count() == 1


@pytest.mark.parametrize("method", ["darts", "pc-darts", "spos"])
@pytest.mark.parametrize("name,params", [("nas_bench_201", {"C": 8, "N": 1}),
                                         ("darts", {"C": 8, "layers": 3})])
def test_inherited_network_computes_what_the_supernet_computes_in_fixed_mode(name, params,
                                                                              method):
    space = nasc.load(name, **params)
    torch.manual_seed(0)
    net = nasc.compile(space, method=method)
    for seed in range(3):
        arch = space.sample(seed)
        discrete = nasc.instantiate(space, arch, weights=net)
        net.train()  # update BN statistics in both the same way
        x = torch.randn(4, 3, 16, 16)
        net.fix(arch)(x)
        discrete.train()(x)
        net.eval()
        discrete.eval()
        x = torch.randn(4, 3, 16, 16)
        torch.testing.assert_close(discrete(x), net.fix(arch)(x), atol=1e-5, rtol=1e-5)
        assert "nasc" not in discrete.code


def test_unknown_method_and_option_are_clear_errors():
    space = nasc.load("nas_bench_201", N=1)
    with pytest.raises(nasc.NasError, match="unknown method 'dart'"):
        nasc.compile(space, method="dart")
    with pytest.raises(nasc.NasError, match="unknown option 'partial'"):
        nasc.compile(space, method="darts", partial=4)


def _random_space_library():
    """Implementations of the random spaces' ops fa, fb, fc (nasc.testing): convolutions."""
    from nasc.backends.torch.library import default_library
    from torch import nn

    def conv(k):
        def build(call):
            s = int(call.params["stride"])
            return nn.Sequential(nn.Conv2d(call.c_in, call.c_out, k, s, k // 2, bias=False),
                                 nn.BatchNorm2d(call.c_out))
        return build

    return default_library().extended({"fa": conv(1), "fb": conv(3), "fc": conv(1)})


@settings(max_examples=25, deadline=None)
@given(st.data())
def test_inheritance_property_on_random_spaces(data):
    from nasc.ir.nodes import ValueChoice

    from nasc.testing import architectures, spaces

    space = data.draw(spaces(max_depth=2, max_blocks=1))
    # value choices (symbolic widths) compile as elastic supernets only (issue 14)
    assume(not space.graph.nodes_of(ValueChoice))
    lib = _random_space_library()
    torch.manual_seed(data.draw(st.integers(0, 1000)))
    net = nasc.compile(space, method="darts", edge_weights="inputs", library=lib).eval()
    arch = data.draw(architectures(space))
    discrete = nasc.instantiate(space, arch, weights=net, library=lib).eval()
    x = torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(discrete(x), net.fix(arch)(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("method", ["darts", "proxyless", "densenas"])
def test_expected_cost_is_differentiable_and_exact_at_one_hot(method):
    from nasc.ir.cost import cost

    space = nasc.load("nas_bench_201", C=8, N=1)
    net = nasc.compile(space, method=method)
    e = net.expected_cost("params")
    e.backward()
    assert all(p.grad is not None for p in net.arch_parameters())
    arch = space.sample(1)
    with torch.no_grad():  # one-hot weights: the expected cost is the architecture's cost
        for lab, a in zip(net.labels, net.alpha):
            rec = next(r for r in net.graph.relaxed_nodes() if r.label == lab)
            a.copy_(torch.tensor([60.0 if o == arch.get(lab) or (
                isinstance(arch.get(lab), tuple) and o in arch[lab]) else -60.0
                for o in rec.options]))
    exact = cost(space.resolve(arch).graph, "params", bn_affine=net.affine)
    assert abs(float(net.expected_cost("params")) - exact) < 1e-3 * exact


@pytest.mark.parametrize("train", [True, False])
def test_fused_bn_tail_mixture_equals_the_unfused_one(train):
    space = nasc.load("darts", C=8, layers=3)
    torch.manual_seed(0)
    fused = nasc.compile(space, method="darts")
    plain = nasc.compile(space, method="darts")
    plain.load_state_dict(fused.state_dict())
    plain.fuse_bn_tail = False
    fused.train(train), plain.train(train)
    x = torch.randn(4, 3, 16, 16)
    y = torch.tensor([0, 1, 2, 3])
    lf = torch.nn.functional.cross_entropy(fused(x), y)
    lp = torch.nn.functional.cross_entropy(plain(x), y)
    torch.testing.assert_close(lf, lp)
    lf.backward(), lp.backward()
    for a, b in zip(fused.parameters(), plain.parameters()):
        if a.grad is not None or b.grad is not None:
            torch.testing.assert_close(a.grad, b.grad, atol=1e-5, rtol=1e-4)
    for a, b in zip(fused.buffers(), plain.buffers()):
        torch.testing.assert_close(a.float(), b.float())


def test_pc_darts_search_network_matches_the_reference():
    from reference import PCSearchNetwork

    net = nasc.compile(nasc.load("darts", C=16, layers=8), method="pc-darts")
    ref = PCSearchNetwork(16, 10, 8)
    assert sum(p.numel() for p in net.weight_parameters()) == sum(
        p.numel() for p in ref.weight_parameters())
    # alphas 2 x 14 x 8 and betas 2 x 14, as in PC-DARTS
    assert sum(p.numel() for p in net.arch_parameters()) == 2 * 14 * 8 + 2 * 14
