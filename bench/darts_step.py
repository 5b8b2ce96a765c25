"""DARTS search step: the compiled supernet against a hand-written naive network.

The naive network is quark0/darts ``model_search.py`` written out by hand, the way a researcher
would (``tests/backends/reference.py``: ``MixedOp`` sums every primitive, zero included,
weighted by ``softmax(alpha)``), and the same naive network converted to channels_last with
one line (``model.to(memory_format=torch.channels_last)``, channels_last inputs). All get the
same weights and architecture parameters, so the losses agree; the script then reports, in one
run, the training-step times (the three interleaved, median and range over ``--repeats``
rounds), their ratios (of the medians, and the median of the per-round ratios) and the bytes
saved for backward (``torch.autograd.graph.saved_tensors_hooks``, unique storages).

    python bench/darts_step.py [--method darts|pc-darts] [--C 16] [--layers 8] [--batch 16]
                               [--repeats 3] [--threads N] [--isa avx2|native]
                               [--option fuse_bn_tail=true ...]
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "backends"))

from nasc.ir.nodes import Mixture, Op  # noqa: E402
from reference import PCSearchNetwork, SearchNetwork  # noqa: E402

import nasc  # noqa: E402


def copy_weights(net, ref: SearchNetwork) -> None:
    """Give the naive network the supernet's weights and architecture parameters."""
    g = net.graph
    mods = dict(net.ops.items())

    def copy(src: torch.nn.Module, dst: torch.nn.Module) -> None:
        sp, dp = list(src.parameters()), list(dst.parameters())
        sb, db = list(src.buffers()), list(dst.buffers())
        assert [p.shape for p in sp] == [p.shape for p in dp], (src, dst)
        with torch.no_grad():
            for a, b in zip(sp + sb, dp + db):
                b.copy_(a)

    ops = [r for r in g.nodes_of(Op) if r.guard.is_true]
    by_op = lambda name: [r for r in ops if r.op == name]  # noqa: E731
    copy(mods[str(by_op("conv2d")[0].id)], ref.stem[0])
    copy(mods[str(by_op("batch_norm")[0].id)], ref.stem[1])
    copy(mods[str(by_op("linear")[0].id)], ref.classifier)
    pre = [r for r in ops if r.op in ("relu_conv_bn", "factorized_reduce")]
    for i, cell in enumerate(ref.cells):
        copy(mods[str(pre[2 * i].id)], cell.pre0)
        copy(mods[str(pre[2 * i + 1].id)], cell.pre1)
    seen: dict[str, int] = {}
    kinds = ["reduce" if c.reduction else "normal" for c in ref.cells]
    for m in g.nodes_of(Mixture):
        kind, node, edge = m.label.split(".")
        k = seen.get(m.label, 0)
        seen[m.label] = k + 1
        cell = ref.cells[[i for i, x in enumerate(kinds) if x == kind][k]]
        n, j = int(node[1:]), int(edge[2:])
        mixed = cell._ops[sum(2 + i for i in range(n)) + j]
        if not isinstance(mixed._ops, torch.nn.ModuleList):  # pragma: no cover
            raise TypeError("unexpected reference layout")
        for inp, opt in zip(g.inputs(m.id), [o for o, c in zip(m.options, m.computed) if c]):
            weighted = [r for r in _region(g, inp) if isinstance(r, Op) and any(
                True for _ in mods[str(r.id)].parameters())] or [
                r for r in _region(g, inp) if isinstance(r, Op)]
            target = mixed._ops[["none", "max_pool_3x3", "avg_pool_3x3", "skip_connect",
                                 "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3",
                                 "dil_conv_5x5"].index(opt)]
            if weighted and list(target.parameters()) + list(target.buffers()):
                copy(mods[str(weighted[0].id)], target)
    with torch.no_grad():
        for lab, a in zip(net.labels, net.alpha):
            kind, node, edge = lab.split(".")
            if edge == "in":  # PC-DARTS edge weights beta, one row per node's inputs
                n = int(node[1:])
                start = sum(2 + i for i in range(n))
                target = ref.betas_reduce if kind == "reduce" else ref.betas_normal
                target[start : start + n + 2] = a
                continue
            n, j = int(node[1:]), int(edge[2:])
            row = sum(2 + i for i in range(n)) + j
            target = ref.alphas_reduce if kind == "reduce" else ref.alphas_normal
            rec = next(r for r in g.nodes_of(Mixture) if r.label == lab)
            order = ["none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3",
                     "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5"]
            target[row] = torch.stack([a[rec.options.index(o)] for o in order])


def _region(g, nid):
    """The op at slot ``nid`` and the ops before it inside its candidate."""
    out, stack = [], [nid]
    while stack:
        n = stack.pop()
        rec = g[n]
        if rec.guard.is_true or n in [r.id for r in out]:
            continue
        out.append(rec)
        stack.extend(g.inputs(n))
    return out


def _step(model, x, y) -> float:
    t = time.perf_counter()
    F.cross_entropy(model(x), y).backward()
    for p in model.parameters():
        p.grad = None
    return time.perf_counter() - t


def step_times(variants: dict, y, repeats: int) -> dict[str, list[float]]:
    """Training-step seconds of every variant, interleaved: each round times every variant
    once, in an order rotated per round, so that the load of a shared machine falls on all of
    them alike; one warm-up step each first."""
    for model, x in variants.values():
        _step(model, x, y)
    names = list(variants)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(repeats):
        for n in names[r % len(names):] + names[: r % len(names)]:
            model, x = variants[n]
            times[n].append(_step(model, x, y))
    return times


def saved_bytes(model, x, y) -> int:
    storages: dict[int, int] = {}

    def pack(t):
        storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        F.cross_entropy(model(x), y)
    return sum(storages.values())


def channels_last_copy(ref: torch.nn.Module) -> torch.nn.Module:
    """The naive network converted with the one line any user can write."""
    return copy.deepcopy(ref).to(memory_format=torch.channels_last)


ISAS = {  # what a machine without AVX-512 runs: oneDNN's convolutions and ATen's kernels
    "avx2": {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"},
    "native": {},
}


def _reexec_for(isa: str, argv: list[str]) -> None:
    """Run this script again with the environment of ``isa`` (both libraries read it once,
    when they load)."""
    want = ISAS[isa]
    if all(os.environ.get(k) == v for k, v in want.items()):
        return
    env = {**os.environ, **want}
    os.execve(sys.executable, [sys.executable, str(Path(__file__).resolve()), *argv], env)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--method", default="darts", choices=["darts", "pc-darts"])
    p.add_argument("--C", type=int, default=16)
    p.add_argument("--layers", type=int, default=8)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="a nasc.compile option for the compiled supernet (true/false/int)")
    p.add_argument("--isa", choices=list(ISAS), default=None,
                   help="avx2: run as on a machine without AVX-512 (re-executes the script "
                        "with ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2)")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = p.parse_args(argv)
    if args.isa:
        _reexec_for(args.isa, argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    space = nasc.load("darts", C=args.C, layers=args.layers)
    options = {}
    for kv in args.option:
        key, _, value = kv.partition("=")
        options[key] = {"true": True, "false": False}.get(value.lower(), value)
        if isinstance(options[key], str) and value.lstrip("-").isdigit():
            options[key] = int(value)
    net = nasc.compile(space, method=args.method, **options)
    ref = (PCSearchNetwork if args.method == "pc-darts" else SearchNetwork)(
        args.C, 10, args.layers)
    copy_weights(net, ref)
    ref_cl = channels_last_copy(ref)
    x = torch.randn(args.batch, 3, args.size, args.size)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (args.batch,))
    variants = {"compiled": (net, x), "naive": (ref, x), "naive_cl": (ref_cl, x_cl)}
    for model, _ in variants.values():
        model.train()
    with torch.no_grad():
        losses = {n: F.cross_entropy(m(xx), y).item() for n, (m, xx) in variants.items()}
    times = step_times(variants, y, args.repeats)
    saved = {n: saved_bytes(m, xx, y) for n, (m, xx) in variants.items()}
    med = {n: statistics.median(t) for n, t in times.items()}
    result: dict = {f"loss_{n}": v for n, v in losses.items()}
    for n in variants:
        result[f"step_s_{n}"] = med[n]
        result[f"step_s_{n}_range"] = f"{min(times[n]):.3f}-{max(times[n]):.3f}"
    for base in ("naive", "naive_cl"):
        paired = [a / b for a, b in zip(times["compiled"], times[base])]
        result[f"time_ratio_{base}"] = med["compiled"] / med[base]
        result[f"time_ratio_{base}_paired"] = (
            f"median {statistics.median(paired):.3f}, range {min(paired):.3f}-{max(paired):.3f}")
    for n in variants:
        result[f"saved_MB_{n}"] = saved[n] / 1e6
    result["saved_ratio"] = saved["compiled"] / saved["naive"]
    result["saved_ratio_naive_cl"] = saved["compiled"] / saved["naive_cl"]
    result["time_ratio"] = result["time_ratio_naive"]  # (the name older scripts read)
    result["options"] = options or "recipe defaults"
    result["threads"] = torch.get_num_threads()
    result["isa"] = " ".join(f"{k}={os.environ[k]}" for k in sorted(
        {k for v in ISAS.values() for k in v}) if k in os.environ) or "native"
    result["cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    for k, v in result.items():
        print(f"{k:>30}: {v:.4f}" if isinstance(v, float) else f"{k:>30}: {v}")
    return result


if __name__ == "__main__":
    main()
