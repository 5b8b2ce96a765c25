"""Kernel-size batches in PyTorch (backends/torch/batched.py): the padded-kernel identity, each
batched module against its separate candidates, and a batched DARTS supernet against the plain
one (outputs, gradients, BN statistics, inherited networks)."""

import copy

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from nasc.backends.torch.batched import (
    DilConvBatch,
    KernelBatch,
    MBConvBatch,
    SepConvBatch,
    candidate_modules,
    copy_weights,
    padded_kernel,
)
from nasc.backends.torch.ops import SepConv
from nasc.ir.nodes import Op

import nasc

ATOL = 1e-5


@settings(max_examples=25, deadline=None)
@given(k=st.sampled_from([1, 3, 5]), extra=st.sampled_from([0, 1, 2]),
       dilation=st.sampled_from([1, 2]), stride=st.sampled_from([1, 2]),
       size=st.integers(5, 12), seed=st.integers(0, 100))
def test_a_zero_padded_depthwise_kernel_computes_the_same_conv(k, extra, dilation, stride,
                                                               size, seed):
    """dw conv k x k (padding d(k-1)/2) == dw conv (k + 2e) x (k + 2e) with the kernel
    zero-padded by e per side (padding d(k + 2e - 1)/2): the extra taps multiply zeros."""
    g = torch.Generator().manual_seed(seed)
    c, k_max = 3, k + 2 * extra
    x = torch.randn(2, c, size, size, generator=g)
    w = torch.randn(c, 1, k, k, generator=g, requires_grad=True)
    a = F.conv2d(x, w, None, stride, dilation * (k - 1) // 2, dilation, c)
    b = F.conv2d(x, padded_kernel(w, k_max), None, stride, dilation * (k_max - 1) // 2,
                 dilation, c)
    torch.testing.assert_close(a, b, atol=ATOL, rtol=0)
    ga, = torch.autograd.grad(a.square().sum(), w)
    gb, = torch.autograd.grad(b.square().sum(), w)
    torch.testing.assert_close(ga, gb, atol=1e-4, rtol=1e-5)


def _check_against_candidates(batch: KernelBatch, x: torch.Tensor, training: bool) -> None:
    """The batch's output is the candidates' outputs side by side; gradients and running
    statistics are theirs too."""
    batch.zero_grad(set_to_none=True)
    twin = copy.deepcopy(batch)
    batch.train(training), twin.train(training)
    xa = x.clone().requires_grad_(True)
    xb = x.clone().requires_grad_(True)
    out = batch(xa)
    ref = torch.cat([c(xb) for c in twin.candidates], dim=1)
    torch.testing.assert_close(out, ref, atol=ATOL, rtol=1e-5)
    weight = torch.randn_like(ref)
    (out * weight).sum().backward()
    (ref * weight).sum().backward()
    torch.testing.assert_close(xa.grad, xb.grad, atol=ATOL, rtol=1e-5)
    for (name, p), q in zip(batch.named_parameters(), twin.parameters()):
        torch.testing.assert_close(p.grad, q.grad, atol=1e-4, rtol=1e-4, msg=name)
    for (name, b), c in zip(batch.named_buffers(), twin.buffers()):
        torch.testing.assert_close(b, c, atol=ATOL, rtol=1e-5, msg=name)


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("affine", [False, True])
def test_sep_and_dil_conv_batches_equal_their_candidates(stride, training, affine):
    torch.manual_seed(0)
    x = torch.randn(2, 4, 9, 9)
    for batch in (SepConvBatch(4, 6, (3, 5), stride, affine),
                  SepConvBatch(4, 4, (3, 5, 7), stride, affine),
                  DilConvBatch(4, 6, (3, 5), stride, 2, affine)):
        for m in batch.modules():  # BN statistics away from their initial 0 / 1
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1), m.running_var.uniform_(0.5, 2)
        _check_against_candidates(batch, x, training)
        assert isinstance(batch.candidates[0], SepConv) == isinstance(batch, SepConvBatch)


@pytest.mark.parametrize("e,se,stride,c_out", [(1, False, 1, 4), (3, True, 1, 4),
                                              (3, False, 2, 6), (6, True, 2, 4)])
def test_mbconv_batches_equal_their_candidates(e, se, stride, c_out):
    torch.manual_seed(0)
    batch = MBConvBatch(4, c_out, (3, 5, 7), stride, e, se, "hswish")
    _check_against_candidates(batch, torch.randn(2, 4, 8, 8), training=True)
    _check_against_candidates(batch, torch.randn(2, 4, 8, 8), training=False)


def test_a_batch_hands_out_each_candidate_and_refuses_other_kernels():
    batch = SepConvBatch(4, 4, (3, 5), 1, affine=False)
    state = batch.candidate_state({"C": 4, "k": 5, "stride": 1})
    assert state.keys() == SepConv(4, 4, 5, 1, 2, False).state_dict().keys()
    assert state["op.0.weight"].shape == (4, 1, 5, 5)
    with pytest.raises(ValueError, match="kernel size 7 is not in this batch"):
        batch.candidate({"k": 7})


pytestmark = pytest.mark.usefixtures("one_thread_module")


# ---- a DARTS supernet with and without the pass ----------------------------------------------
@pytest.fixture(scope="module")
def twins():
    """The two supernets with the same weights, in float64 so that the comparison at 1e-5
    sees the batching and not float32's summation order."""
    torch.manual_seed(0)
    space = nasc.load("darts", C=4, layers=3)
    plain = nasc.compile(space, method="darts")
    batched = nasc.compile(space, method="darts", batch_kernels=True)
    copy_weights(plain, batched)
    return space, plain.double(), batched.double()


def test_the_batched_supernet_computes_the_same_outputs_gradients_and_statistics(twins):
    space, plain, batched = twins
    assert any(r.op == "sep_conv_batch" for r in batched.graph.nodes_of(Op))
    torch.manual_seed(1)
    x, y = torch.randn(2, 3, 8, 8, dtype=torch.float64), torch.randint(0, 10, (2,))
    for net in (plain, batched):
        net.train().relax().zero_grad(set_to_none=True)
    la, lb = F.cross_entropy(plain(x), y), F.cross_entropy(batched(x), y)
    torch.testing.assert_close(lb, la, atol=ATOL, rtol=0)
    la.backward(), lb.backward()
    for lab, a in zip(plain.labels, plain.alpha):
        b = batched.alpha[batched.labels.index(lab)]
        torch.testing.assert_close(b.grad, a.grad, atol=ATOL, rtol=1e-4)
    ma, mb = candidate_modules(plain), candidate_modules(batched)
    assert ma.keys() == mb.keys()
    n = 0
    for key in ma:
        for m, m2 in zip(ma[key], mb[key]):
            for p, q in zip(m.parameters(), m2.parameters()):
                torch.testing.assert_close(q.grad, p.grad, atol=ATOL, rtol=1e-4)
                n += 1
            for p, q in zip(m.buffers(), m2.buffers()):
                torch.testing.assert_close(q, p, atol=ATOL, rtol=1e-5)
    assert n > 0
    plain.eval(), batched.eval()
    with torch.no_grad():
        torch.testing.assert_close(batched(x), plain(x), atol=ATOL, rtol=1e-5)


def test_inherited_networks_take_the_chosen_candidates_out_of_the_batches(twins):
    space, plain, batched = twins
    arch = dict(space.sample(0))
    kinds = ["sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5"]
    for i, lab in enumerate(sorted(k for k in arch if ".op" in k)):
        arch[lab] = kinds[i % 4]
    plain.eval(), batched.eval()
    a = nasc.instantiate(space, arch, weights=plain).eval().double()
    b = nasc.instantiate(space, arch, weights=batched).eval().double()
    ops = [type(m).__name__ for m in b.modules()]
    assert "SepConv" in ops and "DilConv" in ops
    assert not any(name.endswith("Batch") or name == "ChannelSlice" for name in ops)
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(b(x), a(x), atol=ATOL, rtol=1e-5)
        torch.testing.assert_close(b(x), batched.fix(arch)(x), atol=ATOL, rtol=1e-5)
    batched.relax()
    assert sum(p.numel() for p in b.parameters()) == sum(p.numel() for p in a.parameters())
