"""Text to ready supernet, phase by phase, for the DCNAS space at L = 4..14 (issue 6).

    python bench/compile_time.py [--F 64] [--layers 4 6 8 10 12 14] [--repeats 3] [--plot PNG]
                                 [--device cpu|cuda]

Phases (best of ``--repeats``): ``load`` (parse, elaborate, verify the space), ``passes``
(the dcnas pipeline: alignment, relaxation, partial channels, CSE, sampling), ``modules``
(every op's module built and laid out, weights on the meta device: the structure), ``init``
(the weights allocated and initialised on the CPU: PyTorch's default initialisation, bound by
the random-number generator and memory bandwidth), and ``ready`` (the whole user path,
``nasc.compile(nasc.load("dcnas", L=L, F=F), method="dcnas", device="cpu")``, with the previous
supernet freed first: fresh pages, as a user's first compile gets). The connection count is
8L(L+1).
"""

from __future__ import annotations

import argparse
import time

import torch
from nasc.backends.torch.library import default_library
from nasc.backends.torch.supernet import Supernet
from nasc.ir.passes import PassManager

import nasc
from nasc.build import method_pipeline


def best(fn, repeats: int) -> tuple[float, object]:
    out, times = None, []
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def phases(L: int, F: int, repeats: int, device: str = "cpu") -> dict[str, float]:
    lib = default_library()
    t_load, space = best(lambda: nasc.load("dcnas", L=L, F=F), repeats)
    t_pass, g = best(lambda: PassManager(method_pipeline("dcnas")).run(space.graph), repeats)

    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    def build(where: str) -> Supernet:
        net = Supernet(g, lib, affine=True, search=False, device=where)
        sync()
        return net

    t_mod, net = best(lambda: build("meta"), repeats)
    t_all, _ = best(lambda: build(device), repeats)
    ready = []
    for _ in range(repeats):
        t = time.perf_counter()
        nasc.compile(nasc.load("dcnas", L=L, F=F), method="dcnas", device=device)
        sync()
        ready.append(time.perf_counter() - t)  # (the supernet is freed before the next)
    return {"L": L, "connections": 8 * L * (L + 1), "load": t_load, "passes": t_pass,
            "modules": t_mod, "init": max(t_all - t_mod, 0.0), "ready": min(ready),
            "params": sum(p.numel() for p in net.parameters())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--F", type=int, default=64)
    ap.add_argument("--layers", type=int, nargs="+", default=[4, 6, 8, 10, 12, 14])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--plot", metavar="PNG", help="also draw each phase against the connections")
    ap.add_argument("--device", default="cpu", help="where init and ready allocate the weights")
    args = ap.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        ap.error("--device cuda: no GPU is visible")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, F={args.F}, "
          f"weights on {args.device}")
    print("| L | connections | load (s) | passes (s) | modules (s) | text to structure (s) "
          f"| init (s) | text to ready supernet on {args.device} (s) | parameters |")
    print("|---|---|---|---|---|---|---|---|---|")
    rows = []
    for L in args.layers:
        r = phases(L, args.F, args.repeats, args.device)
        rows.append(r)
        structure = r["load"] + r["passes"] + r["modules"]
        print(f"| {L} | {r['connections']} | {r['load']:.2f} | {r['passes']:.2f} | "
              f"{r['modules']:.2f} | {structure:.2f} | {r['init']:.2f} | {r['ready']:.2f} | "
              f"{r['params']:,} |")
    if args.plot:
        plot(rows, args.plot, args.F, args.device)


def plot(rows: list[dict[str, float]], path: str, F: int, device: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = [r["connections"] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 4))
    bottom = [0.0] * len(rows)
    for key in ("load", "passes", "modules"):
        top = [b + r[key] for b, r in zip(bottom, rows)]
        ax.fill_between(n, bottom, top, label=key, alpha=0.8)
        bottom = top
    ax.plot(n, [r["ready"] for r in rows], "k--",
            label=f"ready supernet: nasc.compile(..., device='{device}')")
    for r, b in zip(rows, bottom):
        ax.annotate(f"L={r['L']}", (r["connections"], b), textcoords="offset points",
                    xytext=(-10, 6), fontsize=7)
    ax.axhline(1.5, color="red", lw=0.8, label="goal 1.5 s")
    ax.set_xlabel("input connections 8L(L+1)")
    ax.set_ylabel("seconds")
    ax.set_title(f"DCNAS (F={F}): text to supernet, stacked phases")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
