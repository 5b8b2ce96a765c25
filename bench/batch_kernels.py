"""Kernel-size batching (``nasc.compile(..., batch_kernels=True)``): is it faster here?

Compiles the DARTS supernet twice, without and with the ``batch_kernels`` pass
(``ir/passes/batch.py``: ``sep_conv_3x3``/``sep_conv_5x5`` of an edge as one
``sep_conv_batch``, ``dil_conv_3x3``/``dil_conv_5x5`` as one ``dil_conv_batch``), gives both the
same weights and architecture parameters, asserts that the losses agree, then times training
steps of the two in one run (interleaved, best of ``--repeats``) and reports the ratio. It also
times the isolated op on one edge's tensor, forward and backward: two depthwise convs (3x3 and
5x5) against one conv with the 3x3 kernel zero-padded to 5x5, and the whole candidate pairs
against their batched modules (and three MBConv candidates of a DCNAS edge against theirs).

    python bench/batch_kernels.py [--C 16] [--layers 8] [--batch 16] [--size 32] [--repeats 5]
                                  [--threads N]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from nasc.backends.torch.batched import (
    DilConvBatch,
    MBConvBatch,
    SepConvBatch,
    copy_weights,
    padded_kernel,
)
from nasc.backends.torch.ops import DilConv, SepConv
from nasc.ir.cost import DEFAULT, OpCall
from nasc.ir.cost.batch import padded_macs

import nasc


def best_of(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Best wall time of each function, the functions interleaved (a busy machine's load
    drifts: interleaving gives each the same conditions)."""
    for fn in fns.values():  # warm-up
        fn()
    best = {name: float("inf") for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t)
    return best


def supernet_step(args) -> dict[str, float]:
    torch.manual_seed(0)
    space = nasc.load("darts", C=args.C, layers=args.layers)
    plain = nasc.compile(space, method="darts")
    batched = nasc.compile(space, method="darts", batch_kernels=True)
    copy_weights(plain, batched)
    n_batches = sum(1 for r in batched.graph if getattr(r, "op", "").endswith("_batch"))
    x = torch.randn(args.batch, 3, args.size, args.size)
    y = torch.randint(0, 10, (args.batch,))
    plain.train(), batched.train()
    with torch.no_grad():
        l_plain = F.cross_entropy(plain(x), y).item()
        l_batched = F.cross_entropy(batched(x), y).item()
    assert abs(l_plain - l_batched) <= 1e-5 * max(1.0, abs(l_plain)), (l_plain, l_batched)

    def step(net):
        def run():
            net.zero_grad(set_to_none=True)
            F.cross_entropy(net(x), y).backward()
        return run

    t = best_of({"plain": step(plain), "batched": step(batched)}, args.repeats)
    return {"loss_plain": l_plain, "loss_batched": l_batched, "batched_ops": n_batches,
            "step_s_plain": t["plain"], "step_s_batched": t["batched"],
            "step_ratio": t["batched"] / t["plain"]}


def isolated(args) -> dict[str, float]:
    """One edge's candidates at the first cells' shape (C channels, size x size), fwd + bwd."""
    torch.manual_seed(0)
    c, n, s = args.C, args.batch, args.size
    x = torch.randn(n, c, s, s).contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)
    w3 = torch.randn(c, 1, 3, 3, requires_grad=True)
    w5 = torch.randn(c, 1, 5, 5, requires_grad=True)

    def two_dw():
        (F.conv2d(x, w3, padding=1, groups=c).sum() + F.conv2d(x, w5, padding=2, groups=c).sum()
         ).backward()

    def one_padded():  # both kernels in one call: output channel 2i+j is kernel j on channel i
        w = torch.stack([padded_kernel(w3, 5), w5], dim=1).flatten(0, 1)
        F.conv2d(x, w, padding=2, groups=c).sum().backward()

    def one_padded_repeat():  # the batched modules' form: input repeated, blocks by kernel
        w = torch.cat([padded_kernel(w3, 5), w5])
        F.conv2d(torch.cat([x, x], 1), w, padding=2, groups=2 * c).sum().backward()

    with torch.no_grad():
        a = torch.cat([F.conv2d(x, w3, padding=1, groups=c), F.conv2d(x, w5, padding=2, groups=c)])
        w = torch.cat([padded_kernel(w3, 5), w5])
        b = F.conv2d(torch.cat([x, x], 1), w, padding=2, groups=2 * c)
        b = torch.cat([b[:, :c], b[:, c:]])
        assert torch.allclose(a, b, atol=1e-5)

    def modules(cands, batch):
        def run_pair():
            sum(m(x).sum() for m in cands).backward()

        def run_batch():
            batch(x).sum().backward()
        return run_pair, run_batch

    sep_batch = SepConvBatch(c, c, (3, 5), 1, affine=False).to(memory_format=torch.channels_last)
    dil_batch = DilConvBatch(c, c, (3, 5), 1, 2, affine=False).to(
        memory_format=torch.channels_last)
    mb_batch = MBConvBatch(c, c, (3, 5, 7), 1, 3, True, "hswish", affine=True).to(
        memory_format=torch.channels_last)  # a DCNAS edge: k in {3, 5, 7} at e=3, with SE
    sep_pair, sep_one = modules(list(sep_batch.candidates), sep_batch)
    dil_pair, dil_one = modules(list(dil_batch.candidates), dil_batch)
    mb_three, mb_one = modules(list(mb_batch.candidates), mb_batch)
    assert isinstance(sep_batch.candidates[0], SepConv)
    assert isinstance(dil_batch.candidates[0], DilConv)
    t = best_of({"two_dw": two_dw, "one_padded": one_padded, "one_padded_repeat":
                 one_padded_repeat, "sep_pair": sep_pair, "sep_batch": sep_one,
                 "dil_pair": dil_pair, "dil_batch": dil_one, "mb_three": mb_three,
                 "mb_batch": mb_one}, 5 * args.repeats)
    return {
        "dw_s_two": t["two_dw"], "dw_s_one_padded": t["one_padded"],
        "dw_ratio": t["one_padded"] / t["two_dw"],
        "dw_s_one_padded_repeat": t["one_padded_repeat"],
        "dw_ratio_repeat": t["one_padded_repeat"] / t["two_dw"],
        "sep_s_pair": t["sep_pair"], "sep_s_batch": t["sep_batch"],
        "sep_ratio": t["sep_batch"] / t["sep_pair"],
        "dil_s_pair": t["dil_pair"], "dil_s_batch": t["dil_batch"],
        "dil_ratio": t["dil_batch"] / t["dil_pair"],
        "mbconv_s_three": t["mb_three"], "mbconv_s_batch": t["mb_batch"],
        "mbconv_ratio": t["mb_batch"] / t["mb_three"],
    }


def macs(args) -> dict[str, float]:
    """MACs of one edge's sep_conv pair at the first cells' shape: nominal (the cost model)
    and what the batched module runs (padded depthwise kernels)."""
    call = OpCall(op="sep_conv_batch", params=(("C", args.C), ("ks", (3, 5)), ("stride", 1)),
                  in_channels=(args.C,), in_hw=((args.size, args.size),),
                  out_channels=2 * args.C, out_hw=(args.size, args.size), bn_affine=False)
    nominal = DEFAULT["sep_conv_batch"].macs(call)
    run = padded_macs(call)
    return {"sep_pair_MMACs": nominal / 1e6, "sep_batch_run_MMACs": run / 1e6,
            "macs_ratio": run / nominal}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--C", type=int, default=16)
    p.add_argument("--layers", type=int, default=8)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads (default: torch's); 1 is steadier on a loaded machine")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    result = {**supernet_step(args), **isolated(args), **macs(args),
              "threads": torch.get_num_threads()}
    for k, v in result.items():
        print(f"{k:>24}: {v:.4f}" if isinstance(v, float) else f"{k:>24}: {v}")
    return result


if __name__ == "__main__":
    main()
