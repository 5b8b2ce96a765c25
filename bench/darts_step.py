"""DARTS search step: the compiled supernet against a hand-written naive network.

The naive network is quark0/darts ``model_search.py`` written out by hand, the way a researcher
would (``tests/backends/reference.py``: ``MixedOp`` sums every primitive, zero included,
weighted by ``softmax(alpha)``). Both get the same weights and architecture parameters, so the
losses agree; the script then reports, in one run, the training-step time ratio and the bytes
saved for backward (``torch.autograd.graph.saved_tensors_hooks``, unique storages).

    python bench/darts_step.py [--method darts|pc-darts] [--C 16] [--layers 8] [--batch 16]
"""

from __future__ import annotations

import argparse
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


def step_time(model, x, y, repeats: int) -> float:
    def step() -> float:
        t = time.perf_counter()
        F.cross_entropy(model(x), y).backward()
        return time.perf_counter() - t

    step()
    return min(step() for _ in range(repeats))


def saved_bytes(model, x, y) -> int:
    storages: dict[int, int] = {}

    def pack(t):
        storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        F.cross_entropy(model(x), y)
    return sum(storages.values())


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--method", default="darts", choices=["darts", "pc-darts"])
    p.add_argument("--C", type=int, default=16)
    p.add_argument("--layers", type=int, default=8)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    torch.manual_seed(0)
    space = nasc.load("darts", C=args.C, layers=args.layers)
    net = nasc.compile(space, method=args.method)
    ref = (PCSearchNetwork if args.method == "pc-darts" else SearchNetwork)(
        args.C, 10, args.layers)
    copy_weights(net, ref)
    x = torch.randn(args.batch, 3, args.size, args.size)
    y = torch.randint(0, 10, (args.batch,))
    net.train(), ref.train()
    with torch.no_grad():
        l_net = F.cross_entropy(net(x), y).item()
        l_ref = F.cross_entropy(ref(x), y).item()
    t_net, t_ref = step_time(net, x, y, args.repeats), step_time(ref, x, y, args.repeats)
    b_net, b_ref = saved_bytes(net, x, y), saved_bytes(ref, x, y)
    result = {
        "loss_compiled": l_net, "loss_naive": l_ref,
        "step_s_compiled": t_net, "step_s_naive": t_ref, "time_ratio": t_net / t_ref,
        "saved_MB_compiled": b_net / 1e6, "saved_MB_naive": b_ref / 1e6,
        "saved_ratio": b_net / b_ref, "threads": torch.get_num_threads(),
    }
    for k, v in result.items():
        print(f"{k:>18}: {v:.4f}" if isinstance(v, float) else f"{k:>18}: {v}")
    return result


if __name__ == "__main__":
    main()
