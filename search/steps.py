"""One search step, and the checks that stop a run whose numbers stopped being numbers.

The gradient methods follow DARTS' bilevel scheme: architecture parameters step on a batch of
``train_b``, weights on a batch of ``train_a`` (DARTS §2.3; DCNAS §3.4 trainA/trainB), the
architecture gradient first order (``∇_α L_val(w, α)``) or second order (DARTS eq. 7-8,
``order=2``). What a method does differently is read from its record
(:class:`nasc.methods.Method`: ``arch_step``, ``cost``) and its recipe
(:class:`nasc.search.recipes.Recipe`).

A loss or a parameter that is not finite stops the run at once (:class:`NonFinite`), naming the
step and the likely cause, before any checkpoint could be overwritten with it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import attrs
import torch
from nasc.dsl.diagnostics import NasError
from nasc.search import distributed, recipes
from nasc.search.training import loss_fn

from nasc import methods


class NonFinite(NasError):
    """A loss or parameter became NaN or infinite: the run stops (its last checkpoint, from
    before, is kept)."""


@attrs.define
class Job:
    """What one search step needs: the supernet, its optimisers and the method's settings."""

    net: Any
    w_opt: torch.optim.Optimizer
    a_opt: torch.optim.Optimizer | None  # None: no architecture parameters (HR-NAS)
    w_sched: Any
    seed: int
    method: methods.Method
    order: int = 1
    sampling: bool = False
    arch_step: bool = True
    recipe: recipes.Recipe | None = None
    table: Any = None  # the recipe's latency table, loaded once
    ref: float | None = None  # ProxylessNAS' reference cost
    #: the process of a distributed run (``torchrun``); one process: every hook is a no-op
    dist: distributed.Context = distributed.SINGLE_PROCESS

    def snapshot(self) -> dict[str, Any]:
        """The tensors a checkpoint needs to continue this job."""
        out = {"supernet": self.net.state_dict(), "w_opt": self.w_opt.state_dict(),
               "w_sched": self.w_sched.state_dict()}
        if self.a_opt is not None:
            out["a_opt"] = self.a_opt.state_dict()
        return out

    def restore(self, saved: Mapping[str, Any]) -> None:
        """Continue from :meth:`snapshot`'s tensors."""
        self.net.load_state_dict(saved["supernet"])
        self.w_opt.load_state_dict(saved["w_opt"])
        if self.a_opt is not None:
            self.a_opt.load_state_dict(saved["a_opt"])
        self.w_sched.load_state_dict(saved["w_sched"])


def make_job(cfg: Mapping[str, Any], net: Any, steps: int,
             input_size: tuple[int, int] = (32, 32)) -> Job:
    w_opt = torch.optim.SGD(net.weight_parameters(), lr=0.05, momentum=0.9, weight_decay=3e-4)
    arch = list(net.arch_parameters())
    a_opt = torch.optim.Adam(arch, lr=6e-3, betas=(0.5, 0.999),
                             weight_decay=1e-3) if arch else None
    w_sched = torch.optim.lr_scheduler.CosineAnnealingLR(w_opt, max(steps, 1), eta_min=1e-3)
    from nasc.ir.nodes import InputMixture, Mixture

    sampling = any((isinstance(r, Mixture) and r.sampling is not None)
                   or (isinstance(r, InputMixture) and r.paths > 0)
                   for r in net.graph.relaxed_nodes())
    m = methods.get(cfg["method"])
    rec = recipes.recipe(cfg["method"], cfg["settings"], epochs=cfg["epochs"],
                         input_size=input_size)
    table = rec.table() if rec.cost_table else None
    ref = None
    if rec.cost == "proxyless":
        ref = rec.cost_target or recipes.uniform_cost(net, rec, table)
    return Job(net=net, w_opt=w_opt, a_opt=a_opt, w_sched=w_sched, seed=cfg["seed"],
               method=m, order=cfg["order"], sampling=sampling,
               arch_step=m.arch_step != "none", recipe=rec, table=table, ref=ref)


def _supernet_loss(net, batch) -> torch.Tensor:
    return loss_fn(net(batch[0]), batch[1])


def train_step(job: Job, xa: torch.Tensor, ya: torch.Tensor, xb: torch.Tensor,
               yb: torch.Tensor, step: int) -> float:
    """One search step: the architecture on a trainB batch (first or second order), then the
    weights on a trainA batch. The one place a distributed wrapper hooks into. Raises
    :class:`NonFinite` when the architecture parameters or the loss stop being finite."""
    net, rec, ctx = job.net, job.recipe, job.dist
    (xa, ya), (xb, yb) = ctx.shard(xa, ya), ctx.shard(xb, yb)  # this rank's part
    if job.a_opt is not None:
        ctx.sync_on_step(job.a_opt)  # architecture gradients averaged before each step
    if job.arch_step and job.a_opt is not None and job.method.arch_step == "two_path":
        # ProxylessNAS / DenseNAS: two sampled paths, the cost term, eq. 9's rebalancing
        recipes.two_path_arch_step(net, job.a_opt, rec, xb, yb, seed=job.seed, step=step,
                                   table=job.table, ref=job.ref)
    elif job.arch_step and job.a_opt is not None:
        if job.sampling:
            net.sample(job.seed, step, paths=2)
        job.a_opt.zero_grad()
        if job.order == 2:
            xi = job.w_opt.param_groups[0]["lr"]
            grads = ctx.unrolled_arch_gradient(net, _supernet_loss, (xa, ya), (xb, yb), xi,
                                               job.w_opt)
            for a, g in zip(net.arch_parameters(), grads):
                a.grad = g
        else:
            loss_fn(net(xb), yb).backward()
        job.a_opt.step()
    if job.a_opt is not None and job.arch_step and not all_finite(net.arch_parameters()):
        raise NonFinite(f"search step {step}: the architecture parameters became NaN or "
                        f"infinite in the architecture step; {_cause(job, xb)}")
    if job.sampling:
        net.sample(job.seed, step)
    job.w_opt.zero_grad()
    loss = loss_fn(net(xa), ya)
    penalty = recipes.weight_penalty(net, rec) if rec is not None else None  # HR-NAS eq. 7
    (loss if penalty is None else loss + penalty).backward()
    ctx.sync_grads(net.weight_parameters())
    torch.nn.utils.clip_grad_norm_(list(net.weight_parameters()), 5.0)
    job.w_opt.step()
    job.w_sched.step()
    value = ctx.mean(loss.detach())  # the same on every rank: all of them stop alike
    if penalty is not None and not math.isfinite(float(penalty.detach())):
        value = float(penalty.detach())
    if not math.isfinite(value):
        raise NonFinite(f"search step {step}: the training loss is {value:g}; "
                        f"{_cause(job, xa)}")
    return value


def all_finite(tensors: Iterable[torch.Tensor]) -> bool:
    """Whether every value of ``tensors`` is finite (one synchronisation in all)."""
    flags = [torch.isfinite(t.detach()).all() for t in tensors]
    return bool(torch.stack(flags).all()) if flags else True


def _cause(job: Job, x: torch.Tensor) -> str:
    """The likeliest cause of a non-finite number in a search step, for the user."""
    if not torch.isfinite(x).all():
        return "the data holds NaN or infinite values (check the data set)"
    rec = job.recipe
    if job.method.cost is not None and rec is not None and rec.cost_weight > 0:
        return ("the cost term diverged: check --cost-weight (lambda, now "
                f"{rec.cost_weight:g})" + (" and --cost-target" if rec.cost == "proxyless"
                                           else "") + ", or try smaller values")
    return "the training diverged (a learning rate too high for the data, or NaN in the data)"


def check_finite_loss(value: float, where: str, x: torch.Tensor) -> None:
    """Raise :class:`NonFinite` when a retraining loss ``value`` is NaN or infinite."""
    if not math.isfinite(value):
        cause = ("the data holds NaN or infinite values (check the data set)"
                 if not torch.isfinite(x).all() else
                 "the training diverged (a learning rate too high for the data, or an "
                 "auxiliary weight too large)")
        raise NonFinite(f"{where}: the training loss is {value:g}; {cause}")


def check_finite_modules(modules: Iterable[Any], where: str) -> None:
    """Raise :class:`NonFinite` when a parameter of ``modules`` is NaN or infinite (checked
    before each checkpoint, so that the last one on disk stays a good one)."""
    for module in modules:
        if module is not None and not all_finite(module.parameters()):
            bad = next(n for n, p in module.named_parameters()
                       if not torch.isfinite(p.detach()).all())
            raise NonFinite(f"{where}: parameter {bad!r} became NaN or infinite; the training "
                            "diverged (check the cost settings, the data and the learning rate)")


__all__ = ["Job", "NonFinite", "all_finite", "check_finite_loss", "check_finite_modules",
           "make_job", "train_step"]
