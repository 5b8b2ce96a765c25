"""The Triton kernels on a GPU: achieved memory bandwidth against the device's peak, forward
and backward, and supernet training steps against the eager naive networks.

    python bench/kernels.py [--batch 64] [--C 16] [--layers 8] [--repeats 20]

Bandwidth: bytes each kernel must move (every operand read once, every result written once;
the BN mixture's backward reads its operands twice: channel sums, then the gradients) over the
median time of ``--repeats`` runs (CUDA events). The peak is the device's HBM bandwidth (from
its memory clock and bus width, else a table of data sheets, else ``--peak-gbs``); a large
device-to-device copy is timed too, as what the memory system delivers in practice.

Supernet steps (issue 5: DARTS C=16, 8 cells, batch 64, 32x32): time and peak memory of the
compiled supernet with ``NASC_KERNELS=triton`` and ``=torch`` against the naive network of
``tests/backends/reference.py`` with the same weights (DARTS and PC-DARTS), and the DCNAS
supernet on both paths.

On a machine without CUDA it stops with a message; ``--check`` runs the whole script on the CPU
under Triton's interpreter at toy sizes (timings meaningless) to test the script itself.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))

#: HBM bandwidth in GB/s from the data sheets, by a substring of the device name.
PEAK_GBS = {"H200": 4800.0, "H100 PCIe": 2000.0, "H100": 3350.0, "A100-SXM4-80GB": 2039.0,
            "A100 80GB PCIe": 1935.0, "A100": 1555.0, "L40S": 864.0, "A10": 600.0}


def peak_gbs(device: torch.device, override: float | None) -> tuple[float, str]:
    """The device's peak memory bandwidth and where the number comes from."""
    if override:
        return override, "--peak-gbs"
    props = torch.cuda.get_device_properties(device)
    clock, width = getattr(props, "memory_clock_rate", 0), getattr(props, "memory_bus_width", 0)
    if clock and width:  # kHz, bits; double data rate
        return 2 * clock * 1e3 * width / 8 / 1e9, "memory clock x bus width"
    for name, gbs in PEAK_GBS.items():
        if name in props.name:
            return gbs, f"data sheet ({name})"
    raise SystemExit(f"no peak bandwidth known for {props.name}; pass --peak-gbs")


def timed(fn: Callable[[], object], repeats: int, device: torch.device) -> float:
    """Median seconds of ``fn`` (after two warm-up runs)."""
    for _ in range(2):
        fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end) / 1e3)
        else:
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
    return statistics.median(times)


def kernel_cases(shape: tuple[int, int, int, int], k: int, dtype: torch.dtype,
                 device: torch.device) -> list[tuple[str, Callable, Callable, int, int]]:
    """``(name, forward, backward, bytes forward, bytes backward)`` per kernel, on a DARTS edge
    of ``shape`` with ``k`` candidates (channels_last, as the supernet runs them)."""
    from nasc.backends.triton import aggregate, mixture, partial

    gen = torch.Generator().manual_seed(0)

    def tensor(*s: int) -> torch.Tensor:
        return torch.randn(s, generator=gen).to(device, dtype).contiguous(
            memory_format=torch.channels_last).requires_grad_()

    n, c, h, w = shape
    e = torch.finfo(dtype).bits // 8
    numel = n * c * h * w
    xs = [tensor(*shape) for _ in range(k)]
    wt = torch.randn(k, generator=gen).softmax(0).to(device).requires_grad_()
    means = [torch.randn(c, generator=gen).to(device) for _ in range(k)]
    invstds = [torch.rand(c, generator=gen).to(device) + 0.5 for _ in range(k)]
    g = tensor(*shape).detach()
    cases = []

    def case(name, fwd, n_in, n_out, n_bwd):
        out = fwd()
        grad = g if out.shape == g.shape else torch.randn_like(out)
        cases.append((name, fwd, lambda: torch.autograd.grad(out, [wt, *xs], grad,
                                                             retain_graph=True,
                                                             allow_unused=True),
                      (n_in + n_out) * e, n_bwd * e))

    case(f"mixture K={k}", lambda: mixture.weighted_sum(wt, xs), k * numel, numel,
         (2 * k + 1) * numel)
    case(f"BN mixture K={k}",
         lambda: mixture.weighted_bn_sum(wt, xs, means, invstds, True), k * numel, numel,
         (k + 1) * numel + (k + 1) * numel + k * numel)
    case(f"mixed op 1 plain + {k - 1} BN",
         lambda: mixture.weighted_mixture(wt[:1], xs[:1], wt[1:], xs[1:], means[1:],
                                          invstds[1:], True),
         k * numel, numel, (k + 1) * numel + (k + 1) * numel + k * numel)
    # PC-DARTS reduction edge: C/4 channels from the mixture, the rest pooled 2x2 and shuffled
    x = tensor(n, 4 * c, 2 * h, 2 * w)
    mix = tensor(n, c, h, w)
    out_numel = n * 4 * c * h * w
    pm_out = partial.partial_merge(mix, x, c, 4, 2)
    pm_g = torch.randn_like(pm_out)
    cases.append(("partial merge (stride 2)", lambda: partial.partial_merge(mix, x, c, 4, 2),
                  lambda: torch.autograd.grad(pm_out, [mix, x], pm_g, retain_graph=True),
                  (n * c * h * w + 3 * c * n * 4 * h * w + out_numel) * e,
                  # g, dmix, x read for the argmax, dx written (the bypass, then zeros)
                  (out_numel + n * c * h * w + 3 * c * n * 4 * h * w * 2
                   + c * n * 4 * h * w) * e))
    half = xs[: max(k // 2, 1)]
    cat_out = aggregate.weighted_concat(wt[: len(half)], half)
    cat_g = torch.randn_like(cat_out)
    cases.append((f"weighted concat x{len(half)}",
                  lambda: aggregate.weighted_concat(wt[: len(half)], half),
                  lambda: torch.autograd.grad(cat_out, half, cat_g, retain_graph=True),
                  2 * len(half) * numel * e, 3 * len(half) * numel * e))
    return cases


def copy_gbs(device: torch.device, repeats: int, numel: int) -> float:
    a = torch.empty(numel, device=device)
    b = torch.empty_like(a)
    return 2 * a.numel() * 4 / timed(lambda: b.copy_(a), repeats, device) / 1e9


def supernet_rows(args, device: torch.device) -> list[tuple[str, float, float, float]]:
    """``(what, first loss, step seconds, peak MB)`` for each network of the comparison (the
    losses of a compiled supernet and its naive network agree: same weights)."""
    from darts_step import copy_weights  # the naive networks get the supernet's weights
    from reference import PCSearchNetwork, SearchNetwork

    import nasc

    rows = []

    def measure(name: str, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> None:
        model.train()

        def step():
            model.zero_grad(set_to_none=True)
            out = model(x)
            F.cross_entropy(out, y).backward()

        with torch.no_grad():
            loss = F.cross_entropy(model(x), y).item()
        if device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats(device)
            base = torch.cuda.memory_allocated(device)
        seconds = timed(step, args.steps, device)
        peak = ((torch.cuda.max_memory_allocated(device) - base) / 1e6
                if device.type == "cuda" else float("nan"))
        rows.append((name, loss, seconds, peak))

    for method, naive in (("darts", SearchNetwork), ("pc-darts", PCSearchNetwork)):
        torch.manual_seed(0)
        net = nasc.compile(nasc.load("darts", C=args.C, layers=args.layers), method=method)
        ref = naive(args.C, 10, args.layers)
        copy_weights(net, ref)
        net, ref = net.to(device), ref.to(device)
        x = torch.randn(args.batch, 3, args.size, args.size, device=device)
        y = torch.randint(0, 10, (args.batch,), device=device)
        for mode in ("triton", "torch"):
            os.environ["NASC_KERNELS"] = mode
            measure(f"{method} compiled, {mode} path", net, x, y)
        measure(f"{method} naive (reference.py)", ref, x, y)
        del net, ref
    torch.manual_seed(0)
    net = nasc.compile(nasc.load("dcnas", L=args.dcnas_L, F=args.dcnas_F, classes=19),
                       method="dcnas").to(device)
    net.sample(seed=0, step=0)
    x = torch.randn(max(args.batch // 8, 2), 3, args.dcnas_size, args.dcnas_size, device=device)
    y = torch.randint(0, 19, (x.shape[0], args.dcnas_size, args.dcnas_size), device=device)
    for mode in ("triton", "torch"):
        os.environ["NASC_KERNELS"] = mode
        measure(f"dcnas L={args.dcnas_L} compiled, {mode} path", net, x, y)
    return rows


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--C", type=int, default=16)
    p.add_argument("--layers", type=int, default=8)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--K", type=int, default=7, help="candidates per mixture")
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--steps", type=int, default=5, help="timed supernet steps")
    p.add_argument("--dcnas-L", type=int, default=4)
    p.add_argument("--dcnas-F", type=int, default=64)
    p.add_argument("--dcnas-size", type=int, default=128)
    p.add_argument("--peak-gbs", type=float, default=None)
    p.add_argument("--check", action="store_true",
                   help="run on the CPU under TRITON_INTERPRET=1 at toy sizes (no numbers)")
    args = p.parse_args(argv)
    if args.check:
        os.environ["TRITON_INTERPRET"] = "1"  # before the kernels are defined
        device = torch.device("cpu")
        torch.set_num_threads(1)  # toy tensors: more threads only contend
        args.batch, args.C, args.layers, args.size, args.repeats, args.steps = 2, 4, 3, 8, 1, 1
        args.dcnas_L, args.dcnas_F, args.dcnas_size = 1, 8, 32
    elif not torch.cuda.is_available():
        raise SystemExit("bench/kernels.py measures the Triton kernels on a CUDA device and "
                         "none is available here (the CPU runs them only under the "
                         "interpreter: see tests/kernels; --check tests this script)")
    else:
        device = torch.device("cuda")
    torch.backends.cudnn.benchmark = True
    peak, source = (float("nan"), "none (--check)") if args.check else peak_gbs(
        device, args.peak_gbs)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu (interpreter)"
    print(f"device: {name}; peak {peak:.0f} GB/s ({source}); torch {torch.__version__}")
    shape = (args.batch, args.C, args.size, args.size)
    measured = copy_gbs(device, args.repeats, 1 << 20 if args.check else 1 << 28)
    print(f"device-to-device copy: {measured:.0f} GB/s ({measured / peak:.0%} of peak)\n")
    print(f"{'kernel (' + 'x'.join(map(str, shape)) + ')':<34}{'pass':<10}{'us':>10}"
          f"{'GB/s':>10}{'% peak':>9}{'% copy':>9}")
    for dtype in (torch.float32, torch.bfloat16):
        for kname, fwd, bwd, b_fwd, b_bwd in kernel_cases(shape, args.K, dtype, device):
            for pass_, fn, nbytes in (("forward", fwd, b_fwd), ("backward", bwd, b_bwd)):
                t = timed(fn, args.repeats, device)
                gbs = nbytes / t / 1e9
                print(f"{kname + ' ' + str(dtype)[6:]:<34}{pass_:<10}{t * 1e6:>10.1f}"
                      f"{gbs:>10.0f}{gbs / peak:>9.0%}{gbs / measured:>9.0%}")
    print(f"\n{'supernet step':<40}{'loss':>9}{'ms':>10}{'peak MB':>10}")
    for what, loss, seconds, mb in supernet_rows(args, device):
        print(f"{what:<40}{loss:>9.4f}{seconds * 1e3:>10.1f}{mb:>10.0f}")


if __name__ == "__main__":
    main()
