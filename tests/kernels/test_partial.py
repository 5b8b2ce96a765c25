"""The partial-channel merge kernel (PC-DARTS; DCNAS eq. 7) under Triton's interpreter against
``PartialMerge`` of the torch backend: a pure data movement, so forward and gradients agree
exactly, in every dtype and layout, with and without shuffle and pooling."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from nasc.backends.torch.ops import PartialMerge, channel_shuffle
from nasc.backends.triton.layout import KernelError
from tensors import dtypes, kernels, layouts, make


@st.composite
def merges(draw):
    k = draw(st.integers(2, 4))  # (k = 1 leaves no bypass: partial_channels needs k > 1)
    split = draw(st.integers(1, 3))
    cx = k * split
    # the mixture's output width: any with k | (cm + cx - split), as the pass guarantees
    cm = (-(cx - split)) % k + k * draw(st.integers(0 if (cx - split) % k else 1, 2))
    stride = draw(st.integers(1, 3))
    h, w = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    return dict(k=k, split=split, cx=cx, cm=cm, stride=stride, h=h, w=w,
                n=draw(st.integers(1, 2)), shuffle=draw(st.booleans()))


def run(m, dtype, layout, seed, mode):
    gen = torch.Generator().manual_seed(seed)
    ho, wo = -(-m["h"] // m["stride"]), -(-m["w"] // m["stride"])
    x = make((m["n"], m["cx"], m["h"], m["w"]), dtype, layout, gen)
    mix = make((m["n"], m["cm"], ho, wo), dtype, layout, gen)
    module = PartialMerge(m["split"], m["k"], m["stride"], m["shuffle"])
    with kernels(mode):
        out = module(mix, x)
    g = torch.randn(out.shape, generator=gen).to(dtype)
    out.backward(g)
    return out, mix.grad, x.grad


@settings(max_examples=20, deadline=None)
@given(m=merges(), dtype=dtypes, layout=layouts, seed=st.integers(0, 2**16))
def test_partial_merge_matches_the_torch_path_exactly(m, dtype, layout, seed):
    ours = run(m, dtype, layout, seed, "triton")
    ref = run(m, dtype, layout, seed, "torch")
    for a, b in zip(ours, ref):
        assert a.dtype == b.dtype and a.shape == b.shape
        torch.testing.assert_close(a, b, atol=0, rtol=0)


def test_the_output_keeps_the_channels_last_layout():
    out, _, _ = run(dict(k=4, split=2, cx=8, cm=2, stride=2, h=4, w=4, n=2, shuffle=True),
                    torch.float32, "channels_last", 0, "triton")
    assert out.is_contiguous(memory_format=torch.channels_last)


def test_shuffle_is_pc_darts_channel_shuffle():
    from nasc.backends.triton.partial import partial_merge

    mix = torch.arange(2.0).reshape(1, 2, 1, 1)
    x = 10 + torch.arange(8.0).reshape(1, 8, 1, 1)
    out = partial_merge(mix, x, split=2, groups=4)
    expected = channel_shuffle(torch.cat([mix, x[:, 2:]], 1), 4)
    assert out.flatten().tolist() == expected.flatten().tolist()
    assert out.flatten().tolist() == [0, 12, 14, 16, 1, 13, 15, 17]


def test_pooling_ties_route_the_gradient_to_the_first_maximum_as_torch():
    x = torch.ones(1, 4, 3, 3, requires_grad=True)
    mix = torch.zeros(1, 1, 2, 2, requires_grad=True)
    grads = []
    for mode in ("triton", "torch"):
        x.grad = None
        with kernels(mode):
            PartialMerge(1, 4, 2, True)(mix, x).sum().backward()
        grads.append(x.grad.clone())
    assert torch.equal(grads[0], grads[1])


@pytest.mark.parametrize("mix_shape,x_shape,groups,stride,message", [
    ((1, 2, 3, 3), (1, 8, 4, 4), 4, 1, "does not fit its input"),
    ((1, 2, 2, 2), (1, 8, 4, 4), 3, 2, "do not split into 3 groups"),
    ((1, 2, 2), (1, 8, 4, 4), 4, 2, "image batch"),
    ((1, 2, 4, 4), (2, 8, 4, 4), 4, 1, "does not fit its input"),
])
def test_bad_shapes_are_clear_errors(mix_shape, x_shape, groups, stride, message):
    from nasc.backends.triton.partial import partial_merge

    with pytest.raises(KernelError, match=message):
        partial_merge(torch.randn(mix_shape), torch.randn(x_shape), 2, groups, stride)
