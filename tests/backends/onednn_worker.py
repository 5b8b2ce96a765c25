"""One training step of every stdlib space, channels_last against NCHW with the same weights;
run by ``test_onednn_avx2.py`` in a process of its own under ``ONEDNN_MAX_CPU_ISA=AVX2``.

Prints ``start CASE`` before each case (so that a crash or a hang names it) and ``ok CASE`` or
``FAIL CASE: ...`` after; exits 1 when a case fails. ``python onednn_worker.py NAME...`` runs
the cases whose names start with one of the NAMEs; ``-v`` prints how close each tensor comes
to failing.
"""

from __future__ import annotations

import copy
import sys

import torch
from torch import nn

import nasc

# (space, small parameters, methods (a name, or a name and options), input shape); the darts
# cases have a normal cell and two reduction cells (layers=3): every DARTS edge, FactorizedReduce
# on 1/4 of C=8 channels and the reduction cells' preprocessing. Each space's network (of
# ``space.sample(0)``) is compared too, converted to channels_last as a user would.
CASES = [
    ("darts", dict(C=4, layers=3, steps=2, multiplier=2), ["darts", "gdas", "spos"], (2, 3, 8, 8)),
    ("darts", dict(C=8, layers=3, steps=2, multiplier=2), ["pc-darts"], (2, 3, 8, 8)),
    ("nas_bench_201", dict(C=4, N=1), ["darts", "pc-darts", "gdas", "spos"], (2, 3, 8, 8)),
    ("nasnet", dict(C=4, N=1, blocks=2), ["darts", "pc-darts"], (2, 3, 8, 8)),
    ("enas", dict(C=4, layers=1, nodes=2), ["darts", "spos"], (2, 3, 8, 8)),
    ("auto_deeplab", dict(L=2, F=2, blocks=1, stem=2, classes=3),
     [("darts", {"edge_weights": "inputs"})], (2, 3, 32, 32)),
    ("dcnas", dict(L=1, F=8, classes=3), ["dcnas"], (2, 3, 32, 32)),
    ("densenas", dict(widths=[4, 6, 8, 10, 12, 16, 20, 24, 28],
                      strides=[2, 4, 8, 8, 8, 16, 16, 32, 32], stages=[0, 1, 2, 2, 2, 3, 3, 4, 4],
                      layers=[0, 3, 3, 3, 3, 3, 3, 0, 0], classes=5, stem=4, last=32),
     ["densenas"], (2, 3, 32, 32)),
    ("proxylessnas", dict(stem=8, first=8, stages=[[8, 2, 2], [16, 2, 2], [16, 1, 1]], last=32,
                          classes=5), ["proxyless"], (2, 3, 32, 32)),
    ("mobilenet_chain", dict(classes=5, stem=8, first=8), [], (2, 3, 32, 32)),  # value choices
    ("hrnas", dict(stem=[4, 4], widths=[[4], [4, 8], [4, 8, 8]], blocks=[[1], [1, 1], [1, 1, 1]],
                   head=[4, 8, 8], last=8, r=1, tokens=3, s=2, d=4, classes=3),
     ["hrnas"], (2, 3, 32, 32)),
    ("mobilenet_v2", dict(classes=5), [], (2, 3, 32, 32)),
    ("ofa_mbv3", dict(classes=5, width=0.5), [], (2, 3, 32, 32)),  # value choices
]
SAMPLING = {"spos", "proxyless", "densenas", "dcnas"}


def _loss(out, seed: int) -> torch.Tensor:
    """A fixed random projection of every output (no labels to shape per task)."""
    gen = torch.Generator().manual_seed(seed)
    outs = out if isinstance(out, tuple | list) else (out,)
    return sum((o.float() * torch.randn(o.shape, generator=gen)).sum() for o in outs)


def _step(net, x, mode: str) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Loss and gradients of one training step, BN layers using their running statistics:
    batch statistics of the few values a small network has at its coarsest scales make the
    gradients ill-conditioned (float32 NCHW itself is then 10% off float64 and more), and the
    convolutions run the same kernels either way."""
    if mode == "sample":
        net.sample(seed=0, step=0)
    net.train()
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()
    net.zero_grad()
    torch.manual_seed(0)  # Gumbel noise, dropout, drop path
    loss = _loss(net(x), 1)
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in net.named_parameters()
                           if p.grad is not None}


def pair(space, method: str | None, options: dict):
    """The channels_last module and its NCHW twin with the same weights: supernets of
    ``method``, or (``None``) the network of ``space.sample(0)`` converted to channels_last."""
    torch.manual_seed(0)
    if method is None:
        nchw = nasc.instantiate(space, space.sample(0) if space.specs else None)
        nhwc = copy.deepcopy(nchw).to(memory_format=torch.channels_last)
        return nhwc, nchw
    nhwc = nasc.compile(space, method=method, **options)
    nchw = nasc.compile(space, method=method, channels_last=False, **options)
    nchw.load_state_dict(nhwc.state_dict())
    return nhwc, nchw


def compare(nhwc, nchw, shape, mode: str, tol: float = 1e-3,
            verbose: bool = False) -> str | None:
    """``None`` when a step of the channels_last module is as accurate as the NCHW one, else
    what differs. Both are measured against the NCHW module in float64 (PyTorch's own
    convolutions, not oneDNN): the channels_last loss and each gradient may be off by at most
    10 times the NCHW error, plus ``tol`` of the tensor's largest entry and ``tol / 100`` of
    the largest entry of any gradient (some gradients are 0 but for rounding: a conv or a BN
    bias before an affine-free BN, which undoes its scale and shift)."""
    ref = copy.deepcopy(nchw).double()
    x = torch.randn(shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    loss_a, ga = _step(nhwc, x.float().contiguous(memory_format=torch.channels_last), mode)
    loss_b, gb = _step(nchw, x.float(), mode)
    loss_r, gr = _step(ref, x, mode)
    if not ga.keys() == gb.keys() == gr.keys() or not ga:
        return f"gradients of other parameters: {sorted(ga.keys() ^ gb.keys())[:5]}"
    floor = tol / 100 * max(g.abs().max().item() for g in gr.values())
    tensors = [("loss", loss_a, loss_b, loss_r)] + [(n, ga[n], gb[n], gr[n]) for n in gr]
    for n, a, b, r in tensors:
        err, nchw_err = ((t.double() - r).abs().max().item() for t in (a, b))
        scale = r.abs().max().item()
        if verbose:  # how close each tensor comes to failing (1: fails)
            print(f"  {err / (10 * nchw_err + tol * scale + floor):.2g} {n}")
        if not err <= 10 * nchw_err + tol * scale + floor:  # (NaN included)
            return (f"{n}: error {err:.3g} (NCHW: {nchw_err:.3g}); its largest entry is "
                    f"{scale:.3g}, the largest of any gradient {floor * 100 / tol:.3g}")
    return None


def main(prefixes: list[str], verbose: bool = False) -> int:
    torch.set_num_threads(1)
    failed = 0
    for name, params, methods, shape in CASES:
        space = nasc.load(name, **params)
        small = ",".join(f"{k}={v}" for k, v in params.items() if k in ("C", "L", "N"))
        small = f"[{small}]" if small else ""
        runs = [(None, {}, "network")]
        for i, m in enumerate(methods):
            method, options = (m, {}) if isinstance(m, str) else m
            # every candidate runs relaxed; a sampling method's own step runs the drawn path
            if method not in SAMPLING or i == 0:
                runs.append((method, options, "relax"))
            if method in SAMPLING:
                runs.append((method, options, "sample"))
        for method, options, mode in runs:
            case = f"{name}{small} {method or ''} {mode}".replace("  ", " ")
            if prefixes and not any(case.startswith(p) for p in prefixes):
                continue
            print(f"start {case}", flush=True)
            problem = compare(*pair(space, method, options), shape, mode, verbose=verbose)
            failed += problem is not None
            print(f"ok {case}" if problem is None else f"FAIL {case}: {problem}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    args = sys.argv[1:]
    sys.exit(main([a for a in args if a != "-v"], verbose="-v" in args))
