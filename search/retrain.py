"""Retraining an architecture from scratch, and evaluating it: the end of ``nasc search`` and
all of ``nasc train``.

DARTS' evaluation details (Liu et al., ICLR 2019, §3.2; ``cnn/train.py``): SGD with Nesterov
momentum and a cosine rate on trainA+trainB, drop paths growing to their space's probability over
the epochs, and with several outputs (``main``: the index of ``logits``) the auxiliary outputs'
loss added with ``auxiliary_weight`` (:func:`nasc.search.recipes.retrain_loss`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs
import torch
from nasc.dsl.diagnostics import NasError
from nasc.search import distributed, recipes
from nasc.search.data import Splits, as_splits, load_data
from nasc.search.settings import DEFAULTS, check_arguments, check_space_params, common_params
from nasc.search.state import Clock, RetrainState, json_safe, progress_bar
from nasc.search.steps import check_finite_loss
from nasc.search.training import Writer, accuracy, batches_per_epoch, epochs_of, rng_state

import nasc


@attrs.define
class Retraining:
    """A network being retrained: the network, its live optimiser and scheduler, and where it
    is (:class:`~nasc.search.state.RetrainState`, which a checkpoint holds)."""

    model: torch.nn.Module
    opt: torch.optim.Optimizer
    sched: Any
    state: RetrainState
    main: int | None = None
    auxiliary_weight: float = 0.4

    @classmethod
    def start(cls, model: torch.nn.Module, state: RetrainState, *, steps: int,
              lr: float = 0.05, main: int | None = None,
              auxiliary_weight: float = 0.4) -> Retraining:
        """Optimiser and scheduler for ``steps`` steps, continued from ``state`` if it holds
        theirs."""
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=3e-4,
                              nesterov=True)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(steps, 1))
        if state.opt is not None:
            opt.load_state_dict(state.opt)
            sched.load_state_dict(state.sched)
        return cls(model=model, opt=opt, sched=sched, state=state, main=main,
                   auxiliary_weight=auxiliary_weight)

    def snapshot(self) -> dict[str, Any]:
        """The network's weights for a checkpoint; the optimiser's state goes into ``state``."""
        self.state.opt, self.state.sched = self.opt.state_dict(), self.sched.state_dict()
        return {"model": self.model.state_dict()}

    def fit(self, splits: Splits, *, epochs: int, batch: int, seed: int,
            save: Callable[[], None], bar: Any, every: int | None, label: str, clock: Clock,
            writer: Writer, dist: distributed.Context = distributed.SINGLE_PROCESS) -> None:
        """Train on trainA+trainB from where ``state`` is to ``epochs``; ``save()``
        checkpoints (every epoch and every ``every`` steps)."""
        model, st = self.model, self.state
        x, y = splits.train
        per = batches_per_epoch(len(y), batch)
        model.train()
        task = bar.add_task(label, total=epochs * per, completed=st.epoch * per + st.batch)
        while st.epoch < epochs:
            e = st.epoch
            recipes.start_retrain_epoch(model, e, epochs)
            for i, (xb, yb) in epochs_of(x, y, batch, seed, e, stream=2, start=st.batch):
                self.opt.zero_grad()
                xb, yb = dist.shard(xb, yb)
                loss = recipes.retrain_loss(model(xb), yb, self.main, self.auxiliary_weight)
                loss.backward()
                dist.sync_grads(model.parameters())
                self.opt.step()
                self.sched.step()
                value = dist.mean(loss.detach())
                check_finite_loss(value, f"{label}: epoch {e}, batch {i}", xb)
                st.losses.append(value)
                st.batch = i + 1
                bar.advance(task)
                if every and st.batch % every == 0 and st.batch < per:
                    clock.tick("retrain_s")
                    save()
            row = {"phase": "retrain", "epoch": e,
                   "train_loss": sum(st.losses) / max(len(st.losses), 1)}
            st.rows.append(row)
            writer.row(json_safe(row))
            st.epoch, st.batch, st.losses = e + 1, 0, []
            clock.tick("retrain_s")
            save()


def evaluate(model: torch.nn.Module, space: nasc.Space, arch: nasc.Architecture,
             splits: Splits) -> dict[str, Any]:
    """A trained network's test accuracy (and, for dense labels, pixel accuracy and mean IoU),
    parameter count and multiply-adds at the test images' size."""
    from nasc.ir.cost import cost

    main = recipes.MainOutput(model, recipes.main_output(space))
    out = {"test_accuracy": accuracy(main, *splits.test),
           "parameters": sum(p.numel() for p in model.parameters()),
           "flops": cost(space.resolve(arch).graph, "macs",
                         input_size=tuple(splits.test[0].shape[2:]))}
    if splits.dense:  # segmentation: pixel accuracy and mean IoU on the test split
        out.update(recipes.segmentation_metrics(
            recipes.confusion(main, *splits.test, splits.classes)))
    return out


def retrain_fresh(space: nasc.Space, arch: nasc.Architecture, splits: Splits, *, epochs: int,
                  batch: int, seed: int, bar: Any, label: str, writer: Writer,
                  save: Callable[[Retraining], None] | None = None, every: int | None = None,
                  auxiliary_weight: float = 0.4,
                  dist: distributed.Context = distributed.SINGLE_PROCESS,
                  device: torch.device | str | None = None,
                  ) -> tuple[Retraining, dict[str, float]]:
    """``arch`` of ``space`` built from ``seed`` on ``device`` (default: ``dist``'s) and
    trained from scratch; returns it and the seconds it took. (``save(retraining)``
    checkpoints; no checkpoints without it.)"""
    torch.manual_seed(seed)
    model = nasc.instantiate(space, arch, device=device if device is not None else dist.device)
    dist.broadcast_state(model)
    per = batches_per_epoch(len(splits.train[1]), batch)
    job = Retraining.start(model, RetrainState(), steps=epochs * per,
                           main=recipes.main_output(space), auxiliary_weight=auxiliary_weight)
    timings: dict[str, float] = {}
    job.fit(splits, epochs=epochs, batch=batch, seed=seed,
            save=(lambda: save(job)) if save is not None else (lambda: None), bar=bar,
            every=every, label=label, clock=Clock(timings), writer=writer, dist=dist)
    return job, timings


# ---- nasc train --------------------------------------------------------------------------------
def train_architecture(arch: str | Path | nasc.Architecture, *, data: Any = "digits",
                       epochs: int | None = None, seed: int = 0, out: str | Path | None = None,
                       batch: int | None = None, progress: bool = True,
                       space_params: Mapping[str, Any] | None = None,
                       device: str | torch.device | None = None,
                       space: str | Path | None = None) -> dict[str, Any]:
    """Train an architecture from scratch (a JSON file, a run directory or an Architecture) on
    ``data`` and report its test accuracy; ``out`` (a new directory: another run's is refused)
    receives ``report.json``, ``metrics.jsonl``, ``architecture.json`` and ``checkpoint.pt``.
    ``space``: the architecture's space (a stdlib name or a ``.nas`` file), default the stdlib
    space it names.

    ``device`` as in :func:`nasc.search.search`. Under ``torchrun`` the processes train one
    network data-parallel (each its shard of every batch, gradients averaged; rank 0 writes the
    files)."""
    from nasc.space import fit_architecture, named_space

    check_arguments(epochs=epochs, batch=batch, seed=seed)
    where = "the architecture"
    if not isinstance(arch, nasc.Architecture):
        p = Path(arch)
        p = p / "architecture.json" if p.is_dir() else p
        where = f"architecture {p}"
        if not p.exists():
            raise NasError(f"no architecture file {p}")
        try:
            arch = nasc.Architecture.load(p)
        except ValueError as e:
            raise NasError(f"{p}: {e}") from None
    located = named_space(arch.space, given=space, what=where)
    check_space_params(arch.params, f"{where}: params")
    check_space_params(space_params or {}, "-D")
    splits = load_data(data, seed) if isinstance(data, str) else as_splits(data, seed)
    base = DEFAULTS.get(splits.name, DEFAULTS["digits"])
    epochs = base["retrain_epochs"] if epochs is None else epochs
    batch = base["batch"] if batch is None else batch
    params = {**arch.params, **common_params(str(located), splits), **(space_params or {})}
    space = nasc.load(located, **params)
    arch = fit_architecture(space, arch, what=where)
    from nasc.search.checks import check_network_runs

    check_network_runs(space, arch, splits, what="the network")
    ctx = distributed.init(device or "cpu", keep=True)
    try:
        return _train(space, arch, ctx.place(splits), ctx, epochs=epochs, batch=batch, seed=seed,
                      out=out, progress=progress)
    finally:
        ctx.teardown()


def _train(space: nasc.Space, arch: nasc.Architecture, splits: Splits, ctx: distributed.Context,
           *, epochs: int, batch: int, seed: int, out: str | Path | None,
           progress: bool) -> dict[str, Any]:
    writer = Writer(out, is_main=ctx.is_main, command="train")
    writer.start_metrics([])

    def save(job: Retraining) -> None:
        model = job.snapshot()  # (the optimiser's state into job.state)
        writer.checkpoint({**model, "state": job.state.to_dict(), "rng": rng_state(ctx.device)})

    with progress_bar(progress and ctx.is_main) as bar:
        job, timings = retrain_fresh(space, arch, splits, epochs=epochs, batch=batch, seed=seed,
                                     bar=bar, label=f"train {arch.space}", writer=writer,
                                     save=save, dist=ctx)
    ctx.sync_buffers(job.model)  # every rank's BN statistics, averaged: one network to evaluate
    report = {
        "space": arch.space,
        "data": splits.name,
        "epochs": epochs,
        "seed": seed,
        "device": str(ctx.device),
        "processes": ctx.world,
        **evaluate(job.model, space, arch, splits),
        "timings": {"retrain_s": 0.0, **timings},
        "architecture": arch.to_dict(),
    }
    writer.text("architecture.json", arch.to_json(indent=2) + "\n")
    writer.text("report.json", json.dumps(json_safe(report), indent=2) + "\n")
    writer.close()
    return report


__all__ = ["Retraining", "evaluate", "retrain_fresh", "train_architecture"]
