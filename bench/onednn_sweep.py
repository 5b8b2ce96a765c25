"""oneDNN's channels_last convolutions against a float64 reference, over the conv shapes nasc
builds; each case in a process of its own, with a timeout.

oneDNN's AVX2 1x1 convolution corrupts memory in the weight gradient of a strided 1x1 conv of
an NHWC input with fewer than 8 input channels (oneDNN issue 6035; ``backends/torch/conv.py``).
This script looks for other conv configurations with the same shape of bug. For every case it
runs the forward, ``dX`` and ``dW`` of ``F.conv2d`` in float32 NCHW and in float32 NHWC
(channels_last input and weight, as nasc's supernets and networks run), compares each with the
float64 NCHW result (PyTorch's own convolution, not oneDNN) relative to its largest entry, and
reports a case as ``crash`` (signal or error), ``hang`` (no result after the timeout, and the
process no longer uses CPU time; one that does is waited for up to six times the timeout: two
threads on a loaded machine can be that slow, and a case that ends then counts as ``slow``)
or ``wrong`` (relative error above ``--tol``). Cases
that nasc runs in another form (a strided 1x1 conv: ``SubsampledConv2d``) are also run in that
form (``via nasc``).

The cases: kernels 1x1, 3x3, 5x5, 7x7 (dilation 1 and 2), 1xk and kx1 (NASNet's and DARTS'
factorised convs, stride along one axis), dense (``C_out`` in {C/2, C, 2C, 8}), depthwise and
2-group convs, stride 1 and 2, ``C_in`` 1..16, at two input sizes (8x16x16 and 3x15x15), with 1
and 2 threads. Set ``ONEDNN_MAX_CPU_ISA=AVX2`` (the default here) to take the kernels an AVX2
machine takes on any x86 CPU; ``ONEDNN_VERBOSE=1`` on one case shows the primitive::

    python bench/onednn_sweep.py [--isa AVX2] [--threads 1 2] [--timeout 10] [--channels 16]
                                 [--kernels 1 3 5 7]
    python bench/onednn_sweep.py --only "k=1x1 s=2x2 d=1 g=1 cin=4 cout=8"   # one case
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import sys
import time
from itertools import product

SIZES = ((8, 16), (3, 15))  # (batch, height = width)


def cases(max_channels: int):
    """``(kh, kw, sh, sw, dilation, groups, c_in, c_out)`` for every configuration swept."""
    shapes = [(1, 1, 1), (3, 3, 1), (5, 5, 1), (7, 7, 1), (3, 3, 2), (5, 5, 2)]
    shapes += [(1, 3, 1), (3, 1, 1), (1, 7, 1), (7, 1, 1)]
    for (kh, kw, d), s, cin in product(shapes, (1, 2), range(1, max_channels + 1)):
        strides = {(s, s)}
        if s > 1 and (kh == 1) != (kw == 1):  # conv_1xk_kx1: the stride along the kernel
            strides.add((1, s) if kh == 1 else (s, 1))
        for sh, sw in sorted(strides):
            couts = {max(cin // 2, 1), cin, 2 * cin, 8} if kh == kw == 1 else {cin, 8}
            for cout in sorted(couts):
                yield kh, kw, sh, sw, d, 1, cin, cout
            if cin > 1:
                yield kh, kw, sh, sw, d, cin, cin, cin  # depthwise
            if cin % 2 == 0 and cin > 2:
                yield kh, kw, sh, sw, d, 2, cin, cin  # two groups


def name(case) -> str:
    kh, kw, sh, sw, d, g, cin, cout = case
    return f"k={kh}x{kw} s={sh}x{sw} d={d} g={g} cin={cin} cout={cout}"


def _run(case, threads: int, via_nasc: bool, conn) -> None:
    """In the child: the worst relative error of each (layout, tensor), sent through ``conn``."""
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(threads)
    kh, kw, sh, sw, d, g, cin, cout = case
    pad = (d * (kh - 1) // 2, d * (kw - 1) // 2)
    if via_nasc:
        from nasc.backends.torch.conv import make_conv2d

        conv = make_conv2d(cin, cout, (kh, kw), (sh, sw), pad, d, g, bias=False)
    gen = torch.Generator().manual_seed(0)
    worst: dict[str, float] = {}
    for n, h in SIZES:
        x = torch.randn(n, cin, h, h, dtype=torch.float64, generator=gen)
        w = torch.randn(cout, cin // g, kh, kw, dtype=torch.float64, generator=gen)
        r = None

        def run(x, w, fmt):
            nonlocal r
            x = x.detach().contiguous(memory_format=fmt).requires_grad_()
            w = w.detach().contiguous(memory_format=fmt).requires_grad_()
            if via_nasc and x.dtype == torch.float32:
                with torch.no_grad():
                    conv.weight = torch.nn.Parameter(w.detach().clone())
                y = conv(x)
                w = conv.weight
            else:
                y = F.conv2d(x, w, None, (sh, sw), pad, d, g)
            if r is None:
                r = torch.randn(y.shape, dtype=torch.float64, generator=gen)
            (y * r.to(y.dtype)).sum().backward()
            return [t.double() for t in (y.detach(), x.grad, w.grad)]

        want = run(x, w, torch.contiguous_format)
        for layout, fmt in (("nchw", torch.contiguous_format), ("nhwc", torch.channels_last)):
            got = run(x.float(), w.float(), fmt)
            for what, a, b in zip(("y", "dX", "dW"), got, want):
                err = ((a - b).abs().max() / b.abs().max().clamp_min(1e-30)).item()
                key = f"{layout} {what}"
                worst[key] = max(worst.get(key, 0.0), err)
    conn.send(worst)
    conn.close()


def _busy(pid: int, interval: float = 1.0) -> bool:
    """Whether process ``pid`` uses CPU time (a slow case) rather than waiting (a hang: a
    deadlock, or an abort stuck in the allocator it corrupted)."""
    def ticks() -> int:
        try:
            fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            return -1
        return int(fields[11]) + int(fields[12])  # utime + stime

    before = ticks()
    time.sleep(interval)
    return ticks() > before >= 0


def check(case, threads: int, via_nasc: bool, timeout: float, tol: float) -> tuple[str, str]:
    """``(verdict, detail)`` of one case, run in a forked process."""
    ctx = mp.get_context("fork")
    here, there = ctx.Pipe(duplex=False)
    p = ctx.Process(target=_run, args=(case, threads, via_nasc, there))
    p.start()
    there.close()
    try:
        result = None
        waited = 0.0
        while result is None and waited < 6 * timeout:
            step = timeout if waited == 0 else 2.0
            if here.poll(step):
                result = here.recv()
                break
            waited += step
            if not p.is_alive() or not _busy(p.pid):  # blocked, or dead: no more waiting
                break
    except EOFError:  # the child closed the pipe without a result: it is dying
        p.join(5)
        if p.is_alive():
            p.kill()
            p.join()
            return "crash", "no result, and stuck while exiting"
        return "crash", f"exit code {p.exitcode}"
    p.join(5 if result is not None else 0)
    if p.is_alive():
        p.kill()
        p.join()
        return "hang", (f"no result, blocked after {waited:g} s" if result is None
                        else "no exit")
    if result is None or p.exitcode != 0:
        return "crash", f"exit code {p.exitcode}"
    bad = {k: v for k, v in result.items() if v > tol}
    if bad:
        return "wrong", ", ".join(f"{k} {v:.2g}" for k, v in sorted(bad.items()))
    return ("slow" if waited >= timeout else "ok"), f"worst {max(result.values()):.1g}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--isa", default="AVX2", help="ONEDNN_MAX_CPU_ISA ('' leaves it unset)")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("--tol", type=float, default=1e-4, help="relative error counted as wrong")
    ap.add_argument("--channels", type=int, default=16, help="C_in from 1 to this")
    ap.add_argument("--kernels", type=int, nargs="+", help="only cases with these kernel sizes")
    ap.add_argument("--only", help="run only the case of this name")
    args = ap.parse_args()
    if args.isa:
        os.environ["ONEDNN_MAX_CPU_ISA"] = args.isa  # before oneDNN starts: children inherit it
    import torch
    from nasc.backends.torch.conv import subsampled

    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch "
          f"{torch.__version__}, ONEDNN_MAX_CPU_ISA={os.environ.get('ONEDNN_MAX_CPU_ISA', '')}, "
          f"threads {args.threads}, sizes {SIZES}, tol {args.tol:g}")
    todo = [c for c in cases(args.channels) if args.only in (None, name(c))
            and (args.kernels is None or max(c[:2]) in args.kernels)]
    start, counts, bad = time.perf_counter(), {}, []
    for i, case in enumerate(todo):
        if i % 200 == 0:
            print(f"# case {i} of {len(todo)}, {time.perf_counter() - start:.0f} s", flush=True)
        forms = [False] + ([True] if subsampled(case[:2], case[2:4]) else [])
        for threads, via_nasc in product(args.threads, forms):
            verdict, detail = check(case, threads, via_nasc, args.timeout, args.tol)
            label = f"{name(case)} threads={threads}" + (" via nasc" if via_nasc else "")
            counts[(verdict, via_nasc)] = counts.get((verdict, via_nasc), 0) + 1
            if verdict not in ("ok", "slow") or args.only:
                bad.append(label)
                print(f"{verdict:5} {label}: {detail}", flush=True)
    print(f"# {sum(counts.values())} runs of {len(todo)} cases in "
          f"{time.perf_counter() - start:.0f} s")
    for via_nasc in (False, True):
        row = {v: n for (v, f), n in sorted(counts.items()) if f == via_nasc}
        print(f"# {'via nasc' if via_nasc else 'F.conv2d'}: {row}")
    return 1 if any(v not in ("ok", "slow") and f for (v, f) in counts) else 0


if __name__ == "__main__":
    sys.exit(main())
