"""Every check only a GPU can do, in one run, as one markdown table (``bench/gpu_check.sh``).

    bench/gpu_check.sh OUT.md        (or: python bench/gpu_check.py OUT.md)

Rows (each ``PASS``, ``FAIL`` or ``SKIP`` with what it measured; logs beside ``OUT.md`` in
``OUT.logs/``):

* environment: Python, torch, triton, the device and its HBM bandwidth (runs anywhere);
* supernet against the naive network on the CPU: DARTS and PC-DARTS, tiny, the losses of the
  compiled supernet and of ``tests/backends/reference.py`` with the same weights agree (runs
  anywhere: the CPU part that keeps this script honest in CI);
* the CUDA kernel tests (``tests/kernels/test_cuda.py``);
* kernel bandwidth against the device's HBM bandwidth, and the DARTS and PC-DARTS supernet
  step (batch 64, fp32: the Triton path, the torch path, the naive network): time and peak
  memory, the losses agreeing (``bench/kernels.py``);
* the same supernet steps under bf16 autocast (Triton path against the naive network);
* DCNAS ``nasc.compile(..., device="cuda")`` time (``bench/compile_time.py --device cuda``);
* one epoch of ``nasc search --device cuda`` (search and retrain, digits);
* a one-GPU ``torchrun`` search.

With no GPU visible the GPU rows are ``SKIP`` with the reason, and the rest still run. Any
``FAIL`` (a command failing, a timeout, losses that disagree) makes the exit status 1; the table
is written in every case.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable


class Failed(Exception):
    """A check ran and found a mismatch."""


def cuda_visible() -> bool:
    import torch

    return torch.cuda.is_available()


def run(cmd: list[str], log: Path, timeout: float, env: dict | None = None) -> str:
    """Run ``cmd`` from the repository root, its output to ``log``; the output, or
    :class:`Failed` with its tail."""
    started = time.perf_counter()
    try:
        out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                             env={**os.environ, **(env or {})})
    except subprocess.TimeoutExpired as e:
        text = (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        log.write_text(text)
        raise Failed(f"timed out after {timeout:.0f} s: {' '.join(cmd[:4])} ...") from None
    text = out.stdout + out.stderr
    log.write_text(f"$ {' '.join(cmd)}\n# {time.perf_counter() - started:.1f} s, "
                   f"exit {out.returncode}\n{text}")
    if out.returncode != 0:
        tail = " / ".join(line for line in text.strip().splitlines()[-3:])
        raise Failed(f"exit {out.returncode}: {tail[-300:]}")
    return text


# ---- parsing the benchmarks' output -----------------------------------------------------------
def agreeing_losses(rows: list[tuple[str, float]], *, rtol: float) -> str:
    """Check that the losses of each group of rows (``darts ...``, ``pc-darts ...``: the same
    weights, so the same loss) agree within ``rtol``; the spread, or :class:`Failed`."""
    groups: dict[str, list[tuple[str, float]]] = {}
    for what, loss in rows:
        groups.setdefault(what.split()[0], []).append((what, loss))
    spreads = []
    for name, items in groups.items():
        losses = [v for _, v in items]
        ref = max(abs(v) for v in losses) or 1.0
        spread = (max(losses) - min(losses)) / ref
        if not spread <= rtol:  # (NaN fails too)
            raise Failed(f"{name}: losses disagree: " +
                         ", ".join(f"{w} {v:.4f}" for w, v in items))
        spreads.append(f"{name} {spread:.1e}")
    return "losses agree (relative spread " + ", ".join(spreads) + ")"


def kernel_summary(text: str) -> tuple[str, list[tuple[str, float, float, float]]]:
    """``bench/kernels.py``'s output as (a bandwidth summary, its supernet rows: what, loss,
    seconds, peak MB)."""
    peak = re.search(r"peak (\d+) GB/s \(([^)]*)\)", text)
    copy = re.search(r"device-to-device copy: (\d+) GB/s", text)
    kernels = re.findall(r"^(.+?)\s+(forward|backward)\s+([\d.]+)\s+(\d+)\s+(\d+)%\s+(\d+)%$",
                         text, re.M)
    steps = [(m[0].strip(), float(m[1]), float(m[2]) / 1e3, float(m[3])) for m in re.findall(
        r"^((?:darts|pc-darts|dcnas).+?)\s+(-?[\d.]+|nan)\s+([\d.]+)\s+([\d.]+|nan)$", text, re.M)]
    if not (peak and copy and kernels and steps):
        raise Failed("bench/kernels.py printed no table (see its log)")
    pct = sorted(int(k[4]) for k in kernels)
    best = max(kernels, key=lambda k: int(k[4]))
    summary = (f"HBM peak {peak[1]} GB/s ({peak[2]}); copy {copy[1]} GB/s; "
               f"{len(kernels)} kernel passes at {pct[0]}-{pct[-1]}% of peak "
               f"(median {pct[len(pct) // 2]}%, best {best[0].strip()} {best[1]} {best[4]}%)")
    return summary, steps


def step_summary(steps: list[tuple[str, float, float, float]]) -> str:
    """The supernet rows as ``name ms / MB`` with the compiled-to-naive ratios."""
    parts = []
    for method in ("darts", "pc-darts"):
        rows = {w: (s, mb) for w, _, s, mb in steps if w.split()[0] == method}
        naive = next((v for w, v in rows.items() if "naive" in w), None)
        for what, (s, mb) in rows.items():
            text = f"{what}: {s * 1e3:.1f} ms, {mb:.0f} MB"
            if naive is not None and "naive" not in what:
                text += f" ({s / naive[0]:.2f}x time, {mb / naive[1]:.2f}x memory of naive)"
            parts.append(text)
    return "; ".join(parts)


# ---- the checks -------------------------------------------------------------------------------
def check_environment(ctx) -> str:
    import torch

    try:
        import triton

        tv = triton.__version__
    except ImportError:
        tv = "not installed (pip install 'nasc[gpu]')"
    gpu = (f"{torch.cuda.get_device_name(0)}, {torch.cuda.device_count()} visible"
           if ctx.gpu else "no GPU visible")
    return (f"Python {sys.version.split()[0]}, torch {torch.__version__}, triton {tv}; {gpu}")


CPU_SUPERNET = r"""
import os, sys, torch, torch.nn.functional as F
sys.path[:0] = ["bench", "tests/backends"]
os.environ["NASC_KERNELS"] = "torch"
torch.set_num_threads(1)
import nasc
from darts_step import copy_weights
from reference import PCSearchNetwork, SearchNetwork
for method, naive in (("darts", SearchNetwork), ("pc-darts", PCSearchNetwork)):
    torch.manual_seed(0)
    net = nasc.compile(nasc.load("darts", C=4, layers=3), method=method)
    ref = naive(4, 10, 3)
    copy_weights(net, ref)
    x, y = torch.randn(2, 3, 8, 8), torch.randint(0, 10, (2,))
    for name, m in (("compiled", net), ("naive", ref)):
        m.train()
        loss = F.cross_entropy(m(x), y)
        loss.backward()
        print(f"{method} {name} {loss.item():.6f}")
"""


def check_cpu_supernet(ctx) -> str:
    text = run([PY, "-c", CPU_SUPERNET], ctx.log("cpu_supernet"), 300)
    rows = [(f"{m[0]} {m[1]}", float(m[2]))
            for m in re.findall(r"^(darts|pc-darts) (\w+) ([\d.]+)$", text, re.M)]
    if len(rows) != 4:
        raise Failed("expected 4 losses, got: " + text[-200:])
    return "C=4, 3 cells, batch 2, torch path: " + agreeing_losses(rows, rtol=1e-5)


def check_cuda_tests(ctx) -> str:
    text = run([PY, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/kernels/test_cuda.py"],
               ctx.log("test_cuda"), 300)
    summary = re.findall(r"^=*\s*(\d+ passed.*?)\s*=*$", text, re.M)
    if not summary or "skipped" in summary[-1] or "failed" in summary[-1]:
        raise Failed("not all passed: " + (summary[-1] if summary else text[-200:]))
    return summary[-1]


def check_kernels(ctx) -> str:
    text = run([PY, "bench/kernels.py", "--batch", "64"], ctx.log("kernels"), 300)
    summary, steps = kernel_summary(text)
    ctx.steps = steps
    return summary


def check_steps_fp32(ctx) -> str:
    if not getattr(ctx, "steps", None):
        raise Failed("no supernet rows (the kernel bandwidth check failed first)")
    rows = [(w, loss) for w, loss, *_ in ctx.steps]  # (DCNAS: its Triton and torch paths)
    return step_summary(ctx.steps) + "; " + agreeing_losses(rows, rtol=1e-3)


BF16_STEPS = r"""
import os, sys, time, torch, torch.nn.functional as F
sys.path[:0] = ["bench", "tests/backends"]
import nasc
from darts_step import copy_weights
from reference import PCSearchNetwork, SearchNetwork
dev = torch.device("cuda")
for method, naive in (("darts", SearchNetwork), ("pc-darts", PCSearchNetwork)):
    torch.manual_seed(0)
    net = nasc.compile(nasc.load("darts", C=16, layers=8), method=method)
    ref = naive(16, 10, 8)
    copy_weights(net, ref)
    x = torch.randn(64, 3, 32, 32, device=dev)
    y = torch.randint(0, 10, (64,), device=dev)
    for name, m in (("compiled, triton path", net.to(dev)), ("naive (reference.py)", ref.to(dev))):
        os.environ["NASC_KERNELS"] = "triton"
        m.train()
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
            loss = F.cross_entropy(m(x).float(), y).item()
        def step():
            m.zero_grad(set_to_none=True)
            with torch.autocast("cuda", dtype=torch.bfloat16):
                out = m(x)
            F.cross_entropy(out.float(), y).backward()
        for _ in range(2):
            step()
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(dev)
        base = torch.cuda.memory_allocated(dev)
        t = time.perf_counter()
        for _ in range(5):
            step()
        torch.cuda.synchronize()
        s = (time.perf_counter() - t) / 5
        mb = (torch.cuda.max_memory_allocated(dev) - base) / 1e6
        print(f"{method} {name}  {loss:.4f}  {s * 1e3:.2f}  {mb:.0f}")
"""


def check_steps_bf16(ctx) -> str:
    text = run([PY, "-c", BF16_STEPS], ctx.log("steps_bf16"), 300)
    steps = [(m[0].strip(), float(m[1]), float(m[2]) / 1e3, float(m[3])) for m in re.findall(
        r"^((?:darts|pc-darts) .+?)\s+([\d.]+)\s+([\d.]+)\s+(\d+)$", text, re.M)]
    if len(steps) != 4:
        raise Failed("expected 4 rows, got: " + text[-200:])
    # bf16 rounds differently in the two networks' summation orders: 2% on the loss
    return step_summary(steps) + "; " + agreeing_losses([s[:2] for s in steps], rtol=2e-2)


def check_compile_time(ctx) -> str:
    text = run([PY, "bench/compile_time.py", "--device", "cuda", "--layers", "4", "14",
                "--repeats", "1"], ctx.log("compile_time"), 300)
    rows = re.findall(r"^\| (\d+) \| (\d+) \|(.*)\|$", text, re.M)
    if len(rows) != 2:
        raise Failed("bench/compile_time.py printed no table (see its log)")
    cells = [[c.strip() for c in r[2].split("|")] for r in rows]
    ready = [c[-2] if len(c) > 1 else "?" for c in cells]  # the ready column, seconds
    return ", ".join(f"L={r[0]} ({r[1]} connections): ready {t} s"
                     for r, t in zip(rows, ready)) + " (see log for every phase)"


def _search_args(out: Path, space: str) -> list[str]:
    return ["search", space, "--method", "darts", "--data", "digits", "--epochs", "1",
            "--retrain-epochs", "1", "--device", "cuda", "--out", str(out)]


def _report(out: Path) -> str:
    report = json.loads((out / "report.json").read_text())
    acc = report.get("test_accuracy")
    if acc is None:
        raise Failed(f"{out}/report.json has no test_accuracy")
    return f"test accuracy {acc:.3f}"


def check_search(ctx) -> str:
    out = ctx.tmp / "search"
    t = time.perf_counter()
    run([PY, "-m", "nasc", *_search_args(out, "darts")], ctx.log("search"), 400)
    return f"darts on digits, 1+1 epochs in {time.perf_counter() - t:.0f} s; {_report(out)}"


def check_torchrun(ctx) -> str:
    out = ctx.tmp / "torchrun"
    t = time.perf_counter()
    run([PY, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1", "-m",
         "nasc", *_search_args(out, "nas_bench_201")], ctx.log("torchrun"), 400)
    return (f"nas_bench_201 on digits, 1 process, 1+1 epochs in "
            f"{time.perf_counter() - t:.0f} s; {_report(out)}")


#: (name, needs a GPU, check)
CHECKS = [
    ("environment", False, check_environment),
    ("supernet = naive network (CPU, tiny)", False, check_cpu_supernet),
    ("CUDA kernel tests", True, check_cuda_tests),
    ("kernel bandwidth vs HBM", True, check_kernels),
    ("DARTS/PC-DARTS step, batch 64, fp32", True, check_steps_fp32),
    ("DARTS/PC-DARTS step, batch 64, bf16", True, check_steps_bf16),
    ("DCNAS compile(device='cuda')", True, check_compile_time),
    ("nasc search --device cuda, 1 epoch", True, check_search),
    ("torchrun, 1 GPU", True, check_torchrun),
]


class Context:
    def __init__(self, out: Path, gpu: bool, tmp: Path) -> None:
        self.logs = out.with_suffix(".logs")
        self.logs.mkdir(parents=True, exist_ok=True)
        self.gpu, self.tmp = gpu, tmp

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path, help="the markdown file to write")
    p.add_argument("--only", nargs="+", metavar="ROW", help="run only these rows (by name)")
    args = p.parse_args(argv)
    gpu = cuda_visible()
    if not gpu:
        print("no GPU visible: the GPU checks are skipped, the CPU checks still run",
              flush=True)
    rows, failed = [], 0
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        ctx = Context(args.out, gpu, Path(tmp))
        for name, needs_gpu, check in CHECKS:
            if args.only and name not in args.only:
                continue
            t = time.perf_counter()
            if needs_gpu and not gpu:
                status, detail = "SKIP", "no GPU visible (torch.cuda.is_available() is False)"
            else:
                try:
                    status, detail = "PASS", check(ctx)
                except Failed as e:
                    status, detail = "**FAIL**", str(e)
                    failed += 1
            seconds = time.perf_counter() - t
            rows.append((name, status, f"{seconds:.0f}", detail))
            print(f"{status:>9}  {name} ({seconds:.0f} s): {detail}", flush=True)
    table = ["| check | result | s | details |", "|---|---|---|---|"]
    table += [f"| {n} | {s} | {t} | {d.replace('|', '/')} |" for n, s, t, d in rows]
    total = time.perf_counter() - started
    verdict = (f"{failed} check(s) FAILED" if failed else "all checks passed") + (
        "" if gpu else "; GPU checks skipped: no GPU visible")
    args.out.write_text(f"# bench/gpu_check.sh\n\n{verdict} in {total:.0f} s; logs in "
                        f"`{ctx.logs.name}/`.\n\n" + "\n".join(table) + "\n")
    print(f"wrote {args.out}: {verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
