"""Elastic op modules: every call runs on slices of one shared weight (OFA §3.2 semantics)."""

import itertools

import pytest
import torch
from nasc.backends.torch.construct import build_ops
from nasc.backends.torch.elastic import ElasticModule, op_call
from nasc.backends.torch.library import default_library
from nasc.ir.elastic import ElasticError, elastic_ops
from torch import nn

import nasc

MBCONV = """import mobile_ops
space s() {{
    input x: image(16)
    output mbconv(x, 24, k=choose {{3, 5, 7}} @"k", e=choose {{{e}}} @"e", se=true, se_divisor=8,
                  act="hswish")
}}"""


def _elastic(e="3, 4, 6", kernel_transform=False, seed=0):
    space = nasc.parse(MBCONV.format(e=e))
    g = space.graph
    (spec,) = elastic_ops(g).values()
    lib = default_library()
    in_types = tuple(g[i].type for i in g.inputs(spec.id))
    out_type = g[spec.id].type
    torch.manual_seed(seed)
    largest = lib.build(op_call(spec.op, spec.largest, in_types, out_type, affine=True,
                                search=False))
    with torch.no_grad():  # BN statistics and affine terms that matter
        for name, t in largest.state_dict().items():
            if t.is_floating_point():
                t.uniform_(0.5, 1.5) if "running_var" in name else t.normal_()
    m = ElasticModule(spec, lib, largest, in_types, out_type, affine=True, search=False,
                      kernel_transform=kernel_transform)
    return spec, m, lib, in_types, out_type


def _by_hand(m, spec, call, lib, in_types, out_type):
    """The call's module with its weights cut from the largest module by the rule, written out:
    first channels on every dimension, the centre of each 4-d kernel."""
    small = lib.build(op_call(spec.op, call, in_types, out_type, affine=True, search=False))
    big = m.largest.state_dict()
    state = {}
    for name, t in small.state_dict().items():
        b = big[name]
        if t.dim() == 4:
            k, K = t.shape[-1], b.shape[-1]
            s = (K - k) // 2
            state[name] = b[: t.shape[0], : t.shape[1], s:s + k, s:s + k]
        else:
            state[name] = b[tuple(slice(0, n) for n in t.shape)]
    small.load_state_dict(state)
    return small


def test_every_call_runs_on_the_slices_of_the_largest_weights():
    spec, m, lib, in_types, out_type = _elastic()
    assert len(spec.calls) == 9
    m.eval()
    x = torch.randn(2, 16, 9, 9)
    for key, call in spec.calls.items():
        ref = _by_hand(m, spec, call, lib, in_types, out_type).eval()
        with torch.no_grad():
            torch.testing.assert_close(m(x, call=call), ref(x), rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(m.extract(call).eval()(x), ref(x), rtol=0, atol=0)


def test_gradients_and_bn_statistics_land_in_the_shared_slice_only():
    spec, m, *_ = _elastic()
    m.train()
    call = spec.call({"k": 3, "e": 3})  # hidden 48 of 96; kernel 3 of 7
    before = {k: v.clone() for k, v in m.largest.state_dict().items()}
    m(torch.randn(4, 16, 8, 8), call=call).square().mean().backward()
    dw = next(p for n, p in m.largest.named_parameters() if p.dim() == 4 and p.shape[1] == 1)
    assert dw.shape == (96, 1, 7, 7)
    grad = dw.grad
    assert grad[:48, :, 2:5, 2:5].abs().sum() > 0
    mask = torch.zeros_like(grad, dtype=torch.bool)
    mask[:48, :, 2:5, 2:5] = True
    assert grad[~mask].abs().sum() == 0
    after = m.largest.state_dict()
    means = [k for k in after if k.endswith("running_mean") and after[k].numel() == 96]
    assert means
    for k in means:  # the first 48 statistics moved, the others are as they were
        assert not torch.equal(after[k][:48], before[k][:48])
        assert torch.equal(after[k][48:], before[k][48:])


def test_ofa_kernel_transformation_matrices():
    """One learnable k'^2 x k'^2 matrix per step down (7 -> 5 -> 3), identity at first: a 3x3
    kernel is T_53(centre_5(T_75(centre_7(W)))) as in OFA's DynamicSeparableConv2d."""
    spec, m, *_ = _elastic(kernel_transform=True)
    assert sorted(p.shape for p in m.transforms.values()) == [(9, 9), (25, 25)]
    name = next(n for n, p in m.largest.named_parameters() if p.dim() == 4 and p.shape[1] == 1)
    call = spec.call({"k": 3, "e": 6})
    identity = m.sliced(call)[name]
    w = dict(m.largest.named_parameters())[name]
    torch.testing.assert_close(identity, w[:, :, 2:5, 2:5])
    with torch.no_grad():
        for p in m.transforms.values():
            p.copy_(torch.randn_like(p))
    t75, t53 = (m.transforms[k] for k in sorted(m.transforms, key=lambda k: "7to5" not in k))
    w5 = (w[:, :, 1:6, 1:6].reshape(96, 25) @ t75.T).reshape(96, 1, 5, 5)
    w3 = (w5[:, :, 1:4, 1:4].reshape(96, 9) @ t53.T).reshape(96, 1, 3, 3)
    torch.testing.assert_close(m.sliced(call)[name], w3)
    # the supernet's own parameters are the largest weights plus the matrices: OFA counts them
    extra = sum(p.numel() for p in m.parameters()) - sum(p.numel() for p in m.largest.parameters())
    assert extra == 25 * 25 + 9 * 9


def test_a_value_choice_that_changes_the_structure_is_reported():
    """mbconv with e = 1 has no expansion layer: e in {1, 6} cannot share one weight."""
    with pytest.raises(ElasticError, match=r"op 'mbconv' cannot share one weight"):
        _elastic(e="1, 6")


def test_ofa_mbv3_has_twenty_elastic_blocks_of_nine_calls():
    g = nasc.load("ofa_mbv3").graph
    ops = elastic_ops(g)
    assert len(ops) == 20 and all(len(o.calls) == 9 and o.op == "mbconv" for o in ops.values())
    assert {dict(o.largest.params)["k"] for o in ops.values()} == {7}
    assert {dict(o.largest.params)["e"] for o in ops.values()} == {6}
