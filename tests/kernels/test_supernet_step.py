"""A whole supernet training step gives the same loss, gradients and BN statistics with
``NASC_KERNELS=triton`` (Triton's interpreter) as with ``NASC_KERNELS=torch``: DARTS (fused BN
tails), PC-DARTS (partial-channel merges, edge-normalised input aggregation) and DCNAS (sampled
inputs, fixed-mask partial channels)."""

import copy

import pytest
import torch
import torch.nn.functional as F
from nasc.backends.triton import dispatch

import nasc

CASES = {
    # one normal and two reduction cells of two steps: every kind of DARTS edge
    "darts": (dict(name="darts", C=4, layers=3, steps=2, multiplier=2), (2, 3, 8, 8)),
    "pc-darts": (dict(name="darts", C=8, layers=3, steps=2, multiplier=2), (2, 3, 8, 8)),
    "dcnas": (dict(name="dcnas", L=1, F=8, classes=3), (2, 3, 32, 32)),
}


def step(net, x, mode, monkeypatch):
    monkeypatch.setenv("NASC_KERNELS", mode)
    net.zero_grad()
    out = net(x)
    loss = F.cross_entropy(out, torch.zeros(out.shape[0], *out.shape[2:], dtype=torch.long))
    loss.backward()
    grads = {n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None}
    return loss.detach(), grads, {n: b.clone() for n, b in net.named_buffers()}


@pytest.mark.parametrize("method", list(CASES))
def test_a_supernet_step_is_the_same_on_both_paths(method, monkeypatch):
    params, shape = CASES[method]
    params = dict(params)
    torch.manual_seed(0)
    net = nasc.compile(nasc.load(params.pop("name"), **params), method=method)
    if method == "dcnas":
        net.sample(seed=0, step=0)
    twin = copy.deepcopy(net)
    x = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    used = []
    load = dispatch._kernels
    monkeypatch.setattr(dispatch, "_kernels", lambda name: used.append(name) or load(name))
    loss_t, grads_t, bufs_t = step(net, x, "triton", monkeypatch)
    assert "mixture" in used and ("partial" in used) == (method != "darts")
    used.clear()
    loss, grads, bufs = step(twin, x, "torch", monkeypatch)
    assert used == []
    torch.testing.assert_close(loss_t, loss, atol=1e-6, rtol=1e-6)
    assert grads_t.keys() == grads.keys() and len(grads) > 0
    assert any(n.startswith("alpha") for n in grads)
    for n in grads:
        torch.testing.assert_close(grads_t[n], grads[n], atol=1e-5, rtol=1e-4, msg=n)
    torch.testing.assert_close(bufs_t, bufs)
