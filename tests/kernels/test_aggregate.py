"""Weighted input aggregation (DCNAS eq. 4/6; DenseNAS eq. 4) under Triton's interpreter
against the torch path: the summing merge and the concatenating one, forward and gradients."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from nasc.backends.triton import dispatch
from nasc.backends.triton.layout import KernelError
from tensors import assert_close, dtypes, kernels, layouts, make, upcast


@settings(max_examples=15, deadline=None)
@given(widths=st.lists(st.integers(1, 4), min_size=1, max_size=4), n=st.integers(1, 2),
       h=st.integers(1, 5), w=st.integers(1, 5), dtype=dtypes, layout=layouts,
       seed=st.integers(0, 2**16))
def test_weighted_concat_matches_the_torch_path(widths, n, h, w, dtype, layout, seed):
    gen = torch.Generator().manual_seed(seed)
    xs = [make((n, c, h, w), dtype, layout, gen) for c in widths]
    beta = torch.randn(len(xs), generator=gen).softmax(0).requires_grad_()
    with kernels("triton"):
        out = dispatch.weighted_concat(beta, xs)
    g = torch.randn(out.shape, generator=gen).to(dtype)
    out.backward(g)
    ref_xs, ref_beta = upcast(xs), beta.detach().clone().requires_grad_()
    with kernels("torch"):
        ref = dispatch.weighted_concat(ref_beta, ref_xs)
    ref.backward(g.float())
    assert out.dtype == dtype
    assert_close(out, ref, dtype)
    for x, rx in zip(xs, ref_xs):
        assert_close(x.grad, rx.grad, dtype)
    torch.testing.assert_close(beta.grad, ref_beta.grad, atol=1e-4, rtol=1e-4)


def test_sampled_inputs_aggregate_over_the_drawn_ones_only():
    """DCNAS eq. 6: the weights renormalised over the sampled inputs; only those are read."""
    gen = torch.Generator().manual_seed(0)
    xs = [make((2, 3, 4, 4), torch.float32, "channels_last", gen) for _ in range(4)]
    beta = torch.randn(4, generator=gen).requires_grad_()
    chosen = [0, 2]
    outs = []
    for mode in ("triton", "torch"):
        beta.grad = None
        p = beta.softmax(0)[chosen]
        with kernels(mode):
            out = dispatch.weighted_sum(p / p.sum(), [xs[j] for j in chosen])
        out.square().sum().backward()
        outs.append((out.detach(), beta.grad.clone(), [xs[j].grad.clone() for j in chosen]))
        for j in chosen:
            xs[j].grad = None
    torch.testing.assert_close(outs[0], outs[1])
    assert all(xs[j].grad is None for j in (1, 3))


def test_concat_wants_one_spatial_size():
    from nasc.backends.triton.aggregate import weighted_concat

    with pytest.raises(KernelError, match="only the channels may differ"):
        weighted_concat(torch.ones(2), [torch.randn(1, 2, 4, 4), torch.randn(1, 2, 2, 2)])
