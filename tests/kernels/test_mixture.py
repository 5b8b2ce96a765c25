"""The mixture kernels under Triton's interpreter against the torch path: forward and every
gradient, shapes, dtypes, layouts and K drawn by hypothesis."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from nasc.backends.torch.mixture import _WeightedBNSum
from nasc.backends.triton import dispatch
from nasc.backends.triton.layout import KernelError
from tensors import assert_close, dtypes, kernels, layouts, make, upcast

sizes = st.integers(1, 5)


@settings(max_examples=15, deadline=None)
@given(k=st.integers(1, 5), n=st.integers(1, 2), c=sizes, h=sizes, w=sizes, dtype=dtypes,
       layout=layouts, seed=st.integers(0, 2**16))
def test_weighted_sum_matches_the_torch_path(k, n, c, h, w, dtype, layout, seed):
    gen = torch.Generator().manual_seed(seed)
    xs = [make((n, c, h, w), dtype, layout, gen) for _ in range(k)]
    wt = torch.randn(k, generator=gen).softmax(0).requires_grad_()
    g = torch.randn(n, c, h, w, generator=gen).to(dtype)
    with kernels("triton"):
        out = dispatch.weighted_sum(wt, xs)
    out.backward(g)
    ref_xs, ref_w = upcast(xs), wt.detach().clone().requires_grad_()
    with kernels("torch"):
        ref = dispatch.weighted_sum(ref_w, ref_xs)
    ref.backward(g.float())
    assert out.dtype == dtype and out.shape == ref.shape
    assert_close(out, ref, dtype)
    for x, rx in zip(xs, ref_xs):
        assert_close(x.grad, rx.grad, dtype)
    torch.testing.assert_close(wt.grad, ref_w.grad, atol=1e-4, rtol=1e-4)


@settings(max_examples=15, deadline=None)
@given(k=st.integers(1, 4), n=st.integers(1, 2), c=sizes, h=sizes, w=sizes, dtype=dtypes,
       layout=layouts, training=st.booleans(), with_base=st.booleans(),
       seed=st.integers(0, 2**16))
def test_weighted_bn_sum_matches_the_torch_path(k, n, c, h, w, dtype, layout, training,
                                                 with_base, seed):
    from nasc.backends.triton.mixture import weighted_bn_sum

    gen = torch.Generator().manual_seed(seed)
    xs = [make((n, c, h, w), dtype, layout, gen, scale=2.0) for _ in range(k)]
    stats = [torch.var_mean(x.detach().float(), dim=(0, 2, 3), unbiased=False) for x in xs]
    means = [m for _, m in stats]
    invstds = [torch.rsqrt(v + 1e-5) if training else torch.rand(c, generator=gen) + 0.5
               for v, _ in stats]
    wt = torch.randn(k, generator=gen).softmax(0).requires_grad_()
    base = make((n, c, h, w), dtype, layout, gen) if with_base else None
    g = torch.randn(n, c, h, w, generator=gen).to(dtype)
    out = weighted_bn_sum(wt, xs, means, invstds, training, base)
    out.backward(g)
    ref_xs, ref_w = upcast(xs), wt.detach().clone().requires_grad_()
    ref = _WeightedBNSum.apply(ref_w, training, means, invstds, *ref_xs)
    if with_base:
        (ref_base,) = upcast([base])
        ref = ref_base + ref
    ref.backward(g.float())
    assert out.dtype == dtype
    assert_close(out, ref, dtype)
    # the BN backward subtracts channel means: its rounding error scales with invstd * |x|
    for x, rx in zip(xs, ref_xs):
        assert_close(x.grad, rx.grad, dtype)
    if with_base:
        assert_close(base.grad, ref_base.grad, dtype)
    torch.testing.assert_close(wt.grad, ref_w.grad, atol=1e-3, rtol=1e-4)


@pytest.mark.parametrize("training", [True, False])
def test_dispatched_bn_sum_updates_the_running_statistics_as_the_torch_path(training):
    gen = torch.Generator().manual_seed(0)
    xs = [make((2, 3, 4, 4), torch.float32, "channels_last", gen) for _ in range(3)]
    wt = torch.randn(3, generator=gen).softmax(0).requires_grad_()
    results = {}
    for mode in ("torch", "triton"):
        bns = [torch.nn.BatchNorm2d(3, affine=False) for _ in xs]
        for bn in bns:
            bn.running_var.fill_(2.0)
        ws = wt.detach().clone().requires_grad_()
        leaves = upcast(xs)
        with kernels(mode):
            out = dispatch.weighted_bn_sum(ws, leaves, bns, training)
        out.square().sum().backward()
        results[mode] = (out, ws.grad, [x.grad for x in leaves],
                         [(bn.running_mean, bn.running_var, bn.num_batches_tracked) for bn in bns])
    (o1, w1, g1, s1), (o2, w2, g2, s2) = results["torch"], results["triton"]
    torch.testing.assert_close(o2, o1)
    torch.testing.assert_close(w2, w1)
    torch.testing.assert_close(g2, g1)
    torch.testing.assert_close(s2, s1)


def test_the_weighted_sum_is_deterministic():
    gen = torch.Generator().manual_seed(1)
    xs = [make((2, 3, 5, 5), torch.float32, "contiguous", gen) for _ in range(4)]
    wt = torch.randn(4, generator=gen).requires_grad_()
    grads = []
    with kernels("triton"):
        for _ in range(2):
            wt.grad = None
            dispatch.weighted_sum(wt, xs).sum().backward()
            grads.append(wt.grad.clone())
    assert torch.equal(grads[0], grads[1])


@pytest.mark.parametrize("bad,message", [
    (lambda x: ([x, x[:, :2]], torch.ones(2)), "input 1 has shape"),
    (lambda x: ([x, x.half()], torch.ones(2)), "input 1 is torch.float16"),
    (lambda x: ([x.double()], torch.ones(1)), "dtype torch.float64 is not supported"),
    (lambda x: ([x, x], torch.ones(3)), "a vector of 2"),
    (lambda x: ([x.int(), x.int()], torch.ones(2)), "dtype torch.int32"),
    (lambda x: ([], torch.ones(0)), "no inputs"),
])
def test_bad_operands_are_clear_errors(bad, message):
    from nasc.backends.triton.mixture import weighted_sum

    xs, wt = bad(torch.randn(1, 3, 2, 2))
    with pytest.raises(KernelError, match=message):
        weighted_sum(wt, xs)


def test_bn_sum_wants_images_and_per_channel_statistics():
    from nasc.backends.triton.mixture import weighted_bn_sum

    x, wt = torch.randn(2, 3, 4, 4), torch.ones(1)
    with pytest.raises(KernelError, match="image batch"):
        weighted_bn_sum(wt, [x.flatten(2)], [torch.zeros(3)], [torch.ones(3)], True)
    with pytest.raises(KernelError, match=r"must have shape \(3,\)"):
        weighted_bn_sum(wt, [x], [torch.zeros(4)], [torch.ones(4)], True)


def test_operands_in_different_layouts_are_made_one_layout():
    gen = torch.Generator().manual_seed(2)
    xs = [make((2, 3, 4, 5), torch.float32, layout, gen)
          for layout in ("channels_last", "contiguous", "strided")]
    wt = torch.randn(3, generator=gen).requires_grad_()
    with kernels("triton"):
        out = dispatch.weighted_sum(wt, xs)
    assert out.is_contiguous(memory_format=torch.channels_last)  # the first operand's
    out.backward(torch.ones_like(out))
    ref_xs, ref_w = upcast(xs), wt.detach().clone().requires_grad_()
    with kernels("torch"):
        ref = dispatch.weighted_sum(ref_w, ref_xs)
    ref.backward(torch.ones_like(ref))
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close([x.grad for x in xs], [x.grad for x in ref_xs])
    torch.testing.assert_close(wt.grad, ref_w.grad)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("n_plain,n_tails", [(1, 3), (2, 1), (0, 2), (3, 0)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_a_whole_mixed_op_in_one_kernel_matches_the_torch_path(n_plain, n_tails, training,
                                                                dtype):
    """Plain candidates (the identity) and BN-tailed ones: one output write."""
    gen = torch.Generator().manual_seed(n_plain * 10 + n_tails)
    xs = [make((2, 3, 4, 4), dtype, "channels_last", gen) for _ in range(n_plain + n_tails)]
    alpha = torch.randn(n_plain + n_tails, generator=gen)
    results = {}
    for mode in ("triton", "torch"):
        leaves = upcast(xs) if mode == "torch" else xs
        a = alpha.clone().requires_grad_()
        w = a.softmax(0)
        bns = [torch.nn.BatchNorm2d(3, affine=False) for _ in range(n_tails)]
        for bn in bns:
            bn.running_var.fill_(2.0)
        with kernels(mode):
            out = dispatch.mixture(w[:n_plain], leaves[:n_plain], w[n_plain:],
                                   leaves[n_plain:], bns, training)
        out.backward(torch.linspace(-1, 1, out.numel()).view(out.shape).to(out.dtype))
        results[mode] = (out, [x.grad for x in leaves], a.grad,
                         [bn.running_mean for bn in bns])
    (o1, g1, a1, r1), (o2, g2, a2, r2) = results["triton"], results["torch"]
    assert o1.dtype == dtype
    assert_close(o1, o2, dtype)
    for u, v in zip(g1, g2):
        assert_close(u, v, dtype)
    # (bf16: the triton path's BN statistics are computed on the bf16 values, rounded)
    torch.testing.assert_close(a1, a2, atol=1e-2 if dtype != torch.float32 else 1e-5,
                               rtol=1e-2 if dtype != torch.float32 else 1e-4)
    torch.testing.assert_close(r1, r2, atol=1e-2, rtol=1e-2)
