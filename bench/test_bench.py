"""pytest-benchmark suite: ``python -m pytest bench --benchmark-enable``.

Timings are for tracking over time on one machine; the ratios that matter (compiled against a
hand-written network, in one run) come from ``bench/darts_step.py``.
"""

import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import nasc

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "backends"))


def test_load_darts(benchmark):
    benchmark(lambda: nasc.load("darts"))


def test_count_darts(benchmark):
    space = nasc.load("darts")
    assert benchmark(space.count) == (180 * 7**8) ** 2


def test_compile_darts(benchmark):
    space = nasc.load("darts", C=16, layers=8)
    benchmark(lambda: nasc.compile(space, method="darts"))


@pytest.mark.parametrize("method", ["darts", "pc-darts"])
def test_supernet_step(benchmark, method):
    net = nasc.compile(nasc.load("darts", C=8, layers=5), method=method)
    x, y = torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,))

    def step():
        F.cross_entropy(net(x), y).backward()

    benchmark(step)


def test_naive_reference_step(benchmark):
    from reference import SearchNetwork

    ref = SearchNetwork(8, 10, 5)
    x, y = torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,))
    benchmark(lambda: F.cross_entropy(ref(x), y).backward())


# ---- kernels (issue 5): the fused operations against their unfused torch forms ------------
# CPU entries time the torch paths; the Triton entries need a CUDA device (on the CPU the
# interpreter is a correctness tool, not a speed one). Shapes: one DARTS edge at C=16, batch
# 64, 32x32, with its 7 computed candidates.
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="Triton kernels need CUDA")
KERNEL_SHAPE, K = (64, 16, 32, 32), 7


def _operands(device="cpu", dtype=torch.float32):
    gen = torch.Generator().manual_seed(0)
    xs = [torch.randn(KERNEL_SHAPE, generator=gen).to(device, dtype)
          .contiguous(memory_format=torch.channels_last).requires_grad_() for _ in range(K)]
    w = torch.randn(K, generator=gen).softmax(0).to(device).requires_grad_()
    return w, xs


def _fwd_bwd(fn):
    def run():
        fn().sum().backward()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
    return run


def test_mixture_unfused_stack(benchmark):
    """The hand-written mixed op: stack the candidates, weigh, sum."""
    w, xs = _operands()
    benchmark(_fwd_bwd(lambda: (torch.stack(xs) * w.view(-1, 1, 1, 1, 1)).sum(0)))


def test_mixture_torch_path(benchmark, monkeypatch):
    from nasc.backends.triton import dispatch

    monkeypatch.setenv("NASC_KERNELS", "torch")
    w, xs = _operands()
    benchmark(_fwd_bwd(lambda: dispatch.weighted_sum(w, xs)))


@cuda
@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_mixture_triton(benchmark, monkeypatch, dtype):
    from nasc.backends.triton import dispatch

    monkeypatch.setenv("NASC_KERNELS", "triton")
    w, xs = _operands("cuda", dtype)
    benchmark(_fwd_bwd(lambda: dispatch.weighted_sum(w, xs)))


def _bn_sum(mode, device="cpu"):
    from nasc.backends.triton import dispatch

    w, xs = _operands(device)
    bns = [torch.nn.BatchNorm2d(KERNEL_SHAPE[1], affine=False).to(device) for _ in xs]
    if mode == "unfused":
        return lambda: sum(wk * bn(x) for wk, bn, x in zip(w, bns, xs))
    return lambda: dispatch.weighted_bn_sum(w, xs, bns, True)


def test_bn_mixture_unfused(benchmark):
    """Each candidate's BN, then the weighted sum (every BN output kept for backward)."""
    benchmark(_fwd_bwd(_bn_sum("unfused")))


def test_bn_mixture_torch_path(benchmark, monkeypatch):
    monkeypatch.setenv("NASC_KERNELS", "torch")
    benchmark(_fwd_bwd(_bn_sum("fused")))


@cuda
@pytest.mark.gpu
def test_bn_mixture_triton(benchmark, monkeypatch):
    monkeypatch.setenv("NASC_KERNELS", "triton")
    benchmark(_fwd_bwd(_bn_sum("fused", "cuda")))


def _partial(device="cpu"):
    from nasc.backends.torch.ops import PartialMerge

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, 64, 32, 32, generator=gen).to(device).contiguous(
        memory_format=torch.channels_last).requires_grad_()
    mix = torch.randn(64, 16, 16, 16, generator=gen).to(device).contiguous(
        memory_format=torch.channels_last).requires_grad_()
    merge = PartialMerge(16, 4, stride=2, shuffle=True)
    return lambda: merge(mix, x)


def test_partial_merge_torch_path(benchmark, monkeypatch):
    """PC-DARTS' max-pool, concat and channel shuffle as three torch ops (a reduction edge)."""
    monkeypatch.setenv("NASC_KERNELS", "torch")
    benchmark(_fwd_bwd(_partial()))


@cuda
@pytest.mark.gpu
def test_partial_merge_triton(benchmark, monkeypatch):
    monkeypatch.setenv("NASC_KERNELS", "triton")
    benchmark(_fwd_bwd(_partial("cuda")))


def _concat(device="cpu"):
    from nasc.backends.triton import dispatch

    w, xs = _operands(device)
    return lambda: dispatch.weighted_concat(w[:4], xs[:4])


def test_weighted_concat_torch_path(benchmark, monkeypatch):
    monkeypatch.setenv("NASC_KERNELS", "torch")
    benchmark(_fwd_bwd(_concat()))


@cuda
@pytest.mark.gpu
def test_weighted_concat_triton(benchmark, monkeypatch):
    monkeypatch.setenv("NASC_KERNELS", "triton")
    benchmark(_fwd_bwd(_concat("cuda")))


@cuda
@pytest.mark.gpu
@pytest.mark.parametrize("mode", ["torch", "triton"])
@pytest.mark.parametrize("method", ["darts", "pc-darts"])
def test_supernet_step_cuda(benchmark, monkeypatch, method, mode):
    monkeypatch.setenv("NASC_KERNELS", mode)
    net = nasc.compile(nasc.load("darts", C=16, layers=8), method=method).cuda()
    x, y = torch.randn(64, 3, 32, 32, device="cuda"), torch.randint(0, 10, (64,), device="cuda")

    def step():
        F.cross_entropy(net(x), y).backward()
        torch.cuda.synchronize()

    benchmark(step)
