"""One rank of the distributed supernet tests: run by ``tests/search/test_ddp.py`` under
``torchrun --nproc_per_node 2`` (gloo, CPU), and imported there for the single-process
reference run. Usage: ``ddp_worker.py OUT METHOD...``; writes ``OUT/METHOD_rankR.pt``."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

import nasc
from nasc.search import distributed
from nasc.search.training import loss_fn

SEED = 7
STEPS = 3
GLOBAL_BATCH = 8  # split into 4 + 4 on two ranks


def data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(SEED)
    return torch.randn(48, 3, 8, 8, generator=g), torch.randint(0, 10, (48,), generator=g)


def shard_loss(ctx: distributed.Context, emulate: int):
    """``loss(net, batch)``: this rank's loss on its shard of the global batch; with
    ``emulate=W`` in one process, the mean of the ``W`` shards' losses (what averaged gradients
    of ``W`` ranks are: batch-norm statistics per shard)."""

    def loss(net, batch):
        if emulate > 1:
            return sum(loss_fn(net(xs), ys) for xs, ys in (
                distributed.Context(rank=r, world=emulate).shard(*batch)
                for r in range(emulate))) / emulate
        xs, ys = ctx.shard(*batch)
        return loss_fn(net(xs), ys)

    return loss


def train(method: str, ctx: distributed.Context, *, emulate: int = 1, seed: int = SEED):
    """A few search steps on a tiny NAS-Bench-201 supernet: an architecture step on a trainB
    batch (not for SPOS; ``darts-2nd``: DARTS' second order), then a weight step on a trainA
    batch, gradients averaged over ranks."""
    from nasc.search.strategies import unrolled_arch_gradient

    base, second = method.removesuffix("-2nd"), method.endswith("-2nd")
    torch.manual_seed(ctx.rank if emulate == 1 else 0)  # ranks start apart: the broadcast joins
    net = nasc.compile(nasc.load("nas_bench_201", N=1, C=4), method=base)
    ctx.broadcast_state(net)
    w_opt = torch.optim.SGD(net.weight_parameters(), lr=0.05, momentum=0.9, weight_decay=3e-4)
    a_opt = torch.optim.Adam(net.arch_parameters(), lr=0.05, betas=(0.5, 0.999))
    ctx.sync_on_step(a_opt)  # architecture gradients averaged before each of its steps
    x, y = data()
    loss = shard_loss(ctx, emulate)
    sampling = base != "darts"
    paths, reduced, losses = [], [], []
    for step in range(STEPS):
        perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(100 + step))
        a, b = perm[:GLOBAL_BATCH], perm[GLOBAL_BATCH : 2 * GLOBAL_BATCH]
        if base != "spos":
            if sampling:
                net.sample(seed, step, paths=2)
            a_opt.zero_grad()
            if second:
                unrolled = unrolled_arch_gradient if emulate > 1 else ctx.unrolled_arch_gradient
                for p, g in zip(net.arch_parameters(), unrolled(
                        net, loss, (x[a], y[a]), (x[b], y[b]), 0.05, w_opt)):
                    p.grad = g
            else:
                loss(net, (x[b], y[b])).backward()
            a_opt.step()
        if sampling:
            net.sample(seed, step)
            paths.append(dict(net._mode[1]))
        w_opt.zero_grad()
        value = loss(net, (x[a], y[a]))
        value.backward()
        reduced.append(ctx.sync_grads(net.weight_parameters()))
        losses.append(ctx.mean(value.detach()))
        torch.nn.utils.clip_grad_norm_(list(net.weight_parameters()), 5.0)
        w_opt.step()
    ctx.sync_buffers(net)
    net.relax()
    arch = net.derive()
    digests = ctx.same_architecture(net, arch)
    return net, arch, {"paths": paths, "reduced": reduced, "digests": digests, "losses": losses}


def _expect_failure(fn) -> str:
    try:
        fn()
    except distributed.DistributedError as e:
        return str(e)
    return ""


def main(out: Path, methods: list[str]) -> None:
    with distributed.session("cpu") as ctx:
        assert ctx.world == 2 and ctx.backend == "gloo", ctx
        for method in methods:
            net, arch, log = train(method, ctx)
            torch.save({"state": net.state_dict(), "arch": arch, **log,
                        "rank": ctx.rank, "is_main": distributed.is_main()},
                       out / f"{method}_rank{ctx.rank}.pt")
        # the checks fail loudly, on every rank: paths drawn from different seeds ...
        net = nasc.compile(nasc.load("nas_bench_201", N=1, C=4), method="spos")
        ctx.broadcast_state(net)
        net.sample(ctx.rank, 0)
        loss_fn(net(data()[0][:4]), data()[1][:4]).backward()
        paths_error = _expect_failure(lambda: ctx.sync_grads(net.weight_parameters()))
        # ... architecture parameters that drifted apart on one rank
        with torch.no_grad():
            net.alpha[0][0] += 1e-7 * ctx.rank
        arch_error = _expect_failure(lambda: ctx.same_architecture(net, net.derive()))
        # rank 0 writes the checkpoint; after it, every rank reads the complete file
        ctx.checkpoint(out / "ckpt.pt", {"alpha0": net.alpha[0].detach().clone()})
        ctx.write_text(out / f"text_from_rank{ctx.rank}.txt", "written")
        seen = torch.load(out / "ckpt.pt")["alpha0"]
        torch.save({"paths_error": paths_error, "arch_error": arch_error, "seen": seen},
                   out / f"checks_rank{ctx.rank}.pt")


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2:])
