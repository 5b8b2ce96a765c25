"""The compiled kernels on a GPU (skipped without CUDA): this directory runs the interpreter,
so the check runs in a fresh process without ``TRITON_INTERPRET``."""

import os
import subprocess
import sys

import pytest
import torch

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]

SCRIPT = r"""
import copy, os
import torch, torch.nn.functional as F
import nasc
from nasc.backends.triton import dispatch
from nasc.backends.torch.ops import PartialMerge

def both(fn, *leaves):
    out = {}
    for mode in ("triton", "torch"):
        os.environ["NASC_KERNELS"] = mode
        ls = [t.detach().clone().requires_grad_() for t in leaves]
        y = fn(*ls)
        y.backward(torch.ones_like(y))
        out[mode] = (y, [t.grad for t in ls])
    (a, ga), (b, gb) = out["triton"], out["torch"]
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    for u, v in zip(ga, gb):
        torch.testing.assert_close(u, v, atol=1e-4, rtol=1e-4)

cl = dict(memory_format=torch.channels_last)
xs = [torch.randn(4, 16, 9, 9, device="cuda").contiguous(**cl) for _ in range(5)]
w = torch.randn(5, device="cuda").softmax(0)
both(lambda w, *xs: dispatch.weighted_sum(w, xs), w, *xs)
both(lambda w, *xs: dispatch.weighted_concat(w, xs), w, *xs)
bns = [torch.nn.BatchNorm2d(16, affine=False).cuda() for _ in xs]
both(lambda w, *xs: dispatch.weighted_bn_sum(w, xs, bns, True), w, *xs)
both(lambda w, *xs: dispatch.mixture(w[:1], xs[:1], w[1:], xs[1:], bns[1:], True), w, *xs)
x = torch.randn(4, 16, 9, 9, device="cuda").contiguous(**cl)
mix = torch.randn(4, 4, 5, 5, device="cuda").contiguous(**cl)
both(PartialMerge(4, 4, 2, True), mix, x)
for method in ("darts", "pc-darts"):
    torch.manual_seed(0)
    net = nasc.compile(nasc.load("darts", C=8, layers=3), method=method).cuda()
    twin = copy.deepcopy(net)
    x = torch.randn(4, 3, 16, 16, device="cuda")
    y = torch.randint(0, 10, (4,), device="cuda")
    losses = []
    for mode, m in (("triton", net), ("torch", twin)):
        os.environ["NASC_KERNELS"] = mode
        loss = F.cross_entropy(m(x), y)
        loss.backward()
        losses.append(loss)
    torch.testing.assert_close(losses[0], losses[1], atol=1e-5, rtol=1e-5)
    for (n, p), q in zip(net.named_parameters(), twin.parameters()):
        if p.grad is not None:
            torch.testing.assert_close(p.grad, q.grad, atol=1e-4, rtol=1e-3, msg=n)
print("ok")
"""


def test_compiled_kernels_match_the_torch_path_on_cuda():
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                         env=env, timeout=600)
    assert out.stdout.strip().endswith("ok"), out.stderr[-4000:]
