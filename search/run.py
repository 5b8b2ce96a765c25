"""``nasc search``: find an architecture on real data, derive it, retrain it, report.

The gradient methods follow DARTS' bilevel scheme: architecture parameters step on a batch of
``train_b``, weights on a batch of ``train_a`` (DARTS §2.3; DCNAS §3.4 trainA/trainB), the
architecture gradient first order (``∇_α L_val(w, α)``) or second order (DARTS eq. 7-8,
``order=2``). GDAS and SNAS anneal their Gumbel temperature per epoch
(:data:`nasc.search.strategies.TEMPERATURES`); sampling methods draw their paths per step from the
run's seed. SPOS trains its supernet with uniform single paths and then runs an evolutionary
search over sub-architectures scored with inherited weights. ``random`` and ``evolution`` are
multi-trial baselines (:mod:`nasc.search.multitrial`). The derived architecture is retrained from
scratch on both training halves and evaluated on the held-out test split.

A run directory is checkpointed atomically (``checkpoint.pt``) every epoch and every
``checkpoint_every`` steps, with everything a step depends on: supernet or network weights,
optimisers, schedulers, the random states (torch, Python, NumPy), the phase, epoch, batch and
step, and the metrics so far. ``resume=True`` continues from it to exactly the result of an
uninterrupted run with the same settings. Every file goes through one :class:`~nasc.search.training.
Writer` and the training step is one function, :func:`train_step`.
"""

from __future__ import annotations

import contextlib
import json
import random
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import torch

import nasc
from nasc.search import distributed, recipes, rundir
from nasc.search.data import Splits, as_splits, load_data
from nasc.dsl.diagnostics import NasError
from nasc.search.strategies import (
    TEMPERATURES,
    evolve,
    recalibrate_bn,
    temperature,
)
from nasc.search.training import (
    Cycler,
    Writer,
    accuracy,
    batches_per_epoch,
    epochs_of,
    load_checkpoint,
    loss_fn,
    order,
    rng_state,
    set_rng_state,
)

_HRNAS_SCENES = {"task": "segmentation", "stem": [8, 8], "widths": [[8], [8, 16], [8, 16, 24]],
                 "blocks": [[1], [1, 1], [1, 1, 1]], "head": [8, 16, 24], "last": 24, "r": 1,
                 "tokens": 4, "s": 4, "d": 16}

#: Sensible defaults per data set: sizes of the search and retrain networks and budgets.
DEFAULTS: dict[str, dict[str, Any]] = {
    "digits": {
        # 8x8 images: two reductions leave 2x2 maps
        "spaces": {
            "darts": {"search": {"C": 8, "layers": 5}, "retrain": {"C": 16, "layers": 5}},
            "nas_bench_201": {"search": {"C": 8, "N": 1}, "retrain": {"C": 16, "N": 2}},
            # 8x8 images: stages at 8x8, 4x4, 2x2 (the space reads 3-channel images)
            "proxylessnas": {
                "search": {"stem": 8, "first": 8, "stages": [[16, 2, 1], [24, 2, 2], [32, 2, 2]],
                           "last": 64},
                "retrain": {"stem": 16, "first": 16,
                            "stages": [[24, 2, 1], [32, 2, 2], [48, 2, 2]], "last": 128}},
            # blocks at strides 1, 2, 4 of the 8x8 input, m = 3 connections
            "densenas": {
                "search": {"stem": 8, "widths": [8, 8, 16, 16, 24, 24],
                           "strides": [1, 1, 2, 2, 4, 4], "stages": [0, 1, 2, 2, 3, 3],
                           "layers": [0, 1, 1, 1, 1, 0], "last": 64, "m": 3},
                "retrain": {"stem": 16, "widths": [16, 16, 24, 24, 32, 32],
                            "strides": [1, 1, 2, 2, 4, 4], "stages": [0, 1, 2, 2, 3, 3],
                            "layers": [0, 1, 1, 1, 1, 0], "last": 128, "m": 3}},
        },
        "epochs": 8,
        "retrain_epochs": 25,
        "batch": 64,
    },
    "digit-scenes": {
        # 64x64 scenes: DCNAS' four scales at 16x16 .. 2x2; HR-NAS' five modules, tiny widths
        "spaces": {
            "dcnas": {"search": {"L": 2, "F": 8}, "retrain": {"L": 2, "F": 16}},
            "hrnas": {"search": _HRNAS_SCENES, "retrain": _HRNAS_SCENES},
        },
        "epochs": 4, "retrain_epochs": 10, "batch": 16},
}

#: Multi-trial and evolutionary settings (overridable through ``search(..., **settings)``).
SETTINGS: dict[str, Any] = {
    "trials": 8,  # random / evolution: architectures trained
    "trial_epochs": 2,  # ... for this many epochs each
    "population": 4,  # regularised evolution's population (Real et al. 2019: P)
    "sample": 2,  # ... and tournament size (S)
    "spos_population": 20,  # SPOS' evolutionary search (paper: 50)
    "spos_generations": 5,  # (paper: 20)
    "spos_topk": 5,  # (paper: 10)
    "spos_mutation": 0.1,
    "calibration_batches": 4,  # SPOS' BN re-calibration before scoring a sub-architecture
    # also run random search at the same budget (trials x trial_epochs = search epochs of
    # trainA), retrain its best the same way and report it next to the method
    "compare_random": False,
    # each paper's recipe (nasc.search.recipes): cost weight and table, warm-up, temperatures, ...
    **recipes.SETTINGS,
}

MULTI_TRIAL = ("random", "evolution")


@attrs.frozen(kw_only=True)
class SearchResult:
    architecture: nasc.Architecture
    report: dict[str, Any]
    out: Path | None


# ---- building blocks ---------------------------------------------------------------------------
def _sizes(space: str, data: str, which: str) -> dict[str, Any]:
    cfg = DEFAULTS.get(data, DEFAULTS["digits"])
    return dict(cfg["spaces"].get(space, {}).get(which, {}))


def search_space(cfg: Mapping[str, Any]) -> nasc.Space:
    """The search network's space of a run configuration."""
    return nasc.load(cfg["space"], **{**cfg["common"], **cfg["search_sizes"],
                                      **cfg["space_params"]})


def retrain_space(cfg: Mapping[str, Any]) -> nasc.Space:
    """The retrained network's space of a run configuration."""
    return nasc.load(cfg["space"], **{**cfg["common"], **cfg["retrain_sizes"]})


def build_supernet(cfg: Mapping[str, Any], sp: nasc.Space,
                   device: torch.device | str | None = None):
    """The run's supernet, its weights initialised from the run's seed on ``device``."""
    torch.manual_seed(cfg["seed"])
    return nasc.compile(sp, method=cfg["method"], device=device)


@attrs.define
class Job:
    """What one search step needs: the supernet, its optimisers and the method's settings."""

    net: Any
    w_opt: torch.optim.Optimizer
    a_opt: torch.optim.Optimizer | None  # None: no architecture parameters (HR-NAS)
    w_sched: Any
    seed: int
    order: int = 1
    sampling: bool = False
    arch_step: bool = True
    recipe: recipes.Recipe | None = None
    table: Any = None  # the recipe's latency table, loaded once
    ref: float | None = None  # ProxylessNAS' reference cost
    #: the process of a distributed run (``torchrun``); one process: every hook is a no-op
    dist: distributed.Context = distributed.SINGLE_PROCESS


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
    rec = recipes.recipe(cfg["method"], cfg["settings"], epochs=cfg["epochs"],
                         input_size=input_size)
    table = rec.table() if rec.cost_table else None
    ref = None
    if rec.cost == "proxyless":
        ref = rec.cost_target or recipes.uniform_cost(net, rec, table)
    return Job(net=net, w_opt=w_opt, a_opt=a_opt, w_sched=w_sched, seed=cfg["seed"],
               order=cfg["order"], sampling=sampling, arch_step=cfg["method"] != "spos",
               recipe=rec, table=table, ref=ref)


def _supernet_loss(net, batch) -> torch.Tensor:
    return loss_fn(net(batch[0]), batch[1])


def train_step(job: Job, xa: torch.Tensor, ya: torch.Tensor, xb: torch.Tensor,
               yb: torch.Tensor, step: int) -> float:
    """One search step: the architecture on a trainB batch (first or second order), then the
    weights on a trainA batch. The one place a distributed wrapper hooks into."""
    net, rec, ctx = job.net, job.recipe, job.dist
    (xa, ya), (xb, yb) = ctx.shard(xa, ya), ctx.shard(xb, yb)  # this rank's part
    if job.a_opt is not None:
        ctx.sync_on_step(job.a_opt)  # architecture gradients averaged before each step
    if job.arch_step and job.a_opt is not None and rec is not None and rec.two_path:
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
    return ctx.mean(loss.detach())


def _alpha_row(net) -> dict[str, list[float]]:
    return {lab: torch.softmax(a.detach(), -1).tolist() for lab, a in zip(net.labels, net.alpha)}


class _Clock:
    """Seconds per phase, accumulated across interruptions."""

    def __init__(self, timings: dict[str, float]) -> None:
        self.timings = timings
        self.last = time.perf_counter()

    def tick(self, key: str) -> None:
        now = time.perf_counter()
        self.timings[key] = self.timings.get(key, 0.0) + now - self.last
        self.last = now


def _progress(enabled: bool):
    from rich.progress import (
        BarColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        disable=not enabled,
    )


@contextlib.contextmanager
def _deterministic(on: bool):
    """``torch.use_deterministic_algorithms`` for the run, restored afterwards."""
    before = torch.are_deterministic_algorithms_enabled()
    warn = torch.is_deterministic_algorithms_warn_only_enabled()
    if on:
        torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before, warn_only=warn)


# ---- retraining --------------------------------------------------------------------------------
def fit(model: torch.nn.Module, splits: Splits, *, epochs: int, batch: int, seed: int,
        state: dict[str, Any], save, bar, every: int | None, label: str, clock: _Clock,
        writer: Writer, lr: float = 0.05, main: int | None = None,
        auxiliary_weight: float = 0.4,
        dist: distributed.Context = distributed.SINGLE_PROCESS) -> None:
    """Train ``model`` from scratch on trainA+trainB (SGD, Nesterov momentum, cosine rate).

    DARTS' evaluation details: drop paths grow to their space's probability over the epochs,
    and with several outputs (``main``: the index of ``logits``) the auxiliary outputs' loss is
    added with ``auxiliary_weight`` (:func:`nasc.search.recipes.retrain_loss`).

    ``state`` holds the position (epoch, batch), the running losses and, once started, the
    optimiser and scheduler; ``save()`` checkpoints it (every epoch and every ``every`` steps).
    """
    x, y = splits.train
    per = batches_per_epoch(len(y), batch)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=3e-4,
                          nesterov=True)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(epochs * per, 1))
    if "opt" in state:
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
    state["live"] = (opt, sched)
    model.train()
    task = bar.add_task(label, total=epochs * per, completed=state["epoch"] * per + state["batch"])
    while state["epoch"] < epochs:
        e = state["epoch"]
        recipes.start_retrain_epoch(model, e, epochs)
        for i, (xb, yb) in epochs_of(x, y, batch, seed, e, stream=2, start=state["batch"]):
            opt.zero_grad()
            xb, yb = dist.shard(xb, yb)
            loss = recipes.retrain_loss(model(xb), yb, main, auxiliary_weight)
            loss.backward()
            dist.sync_grads(model.parameters())
            opt.step()
            sched.step()
            state["losses"].append(dist.mean(loss.detach()))
            state["batch"] = i + 1
            bar.advance(task)
            if every and state["batch"] % every == 0 and state["batch"] < per:
                clock.tick("retrain_s")
                save()
        row = {"phase": "retrain", "epoch": e,
               "train_loss": sum(state["losses"]) / max(len(state["losses"]), 1)}
        state["rows"].append(row)
        writer.row(row)
        state.update(epoch=e + 1, batch=0, losses=[])
        clock.tick("retrain_s")
        save()


def _fresh_retrain_state() -> dict[str, Any]:
    return {"epoch": 0, "batch": 0, "losses": [], "rows": []}


# ---- the search job ----------------------------------------------------------------------------
def _config(space: str, method: str, splits: Splits, *, epochs, retrain_epochs, seed, batch,
            space_params, retrain_params, order, checkpoint_every, settings) -> dict[str, Any]:
    base = DEFAULTS.get(splits.name, DEFAULTS["digits"])
    if order not in (1, 2):
        raise NasError(f"order must be 1 or 2 (DARTS first or second order), got {order}")
    if order == 2 and method not in ("darts", "pc-darts", "gdas", "snas"):
        raise NasError(f"second-order architecture gradients need a DARTS-family method, "
                       f"not {method!r}")
    if method not in MULTI_TRIAL and method not in nasc.METHODS:
        known = ", ".join(sorted([*nasc.METHODS, *MULTI_TRIAL]))
        raise NasError(f"unknown method {method!r}; known: {known}")
    unknown = set(settings) - set(SETTINGS)
    if unknown:
        raise NasError(f"unknown search setting {sorted(unknown)[0]!r}; known: "
                       f"{', '.join(sorted(SETTINGS))}")
    recipes.recipe(method, settings, epochs=1, input_size=(1, 1))  # its settings apply
    return {
        "space": space,
        "method": method,
        "order": order,
        "data": splits.name,
        "seed": seed,
        "epochs": base["epochs"] if epochs is None else epochs,
        "retrain_epochs": base["retrain_epochs"] if retrain_epochs is None else retrain_epochs,
        "batch": base["batch"] if batch is None else batch,
        "common": _common(space, splits),
        "search_sizes": _sizes(space, splits.name, "search"),
        "retrain_sizes": {**_sizes(space, splits.name, "retrain"), **(retrain_params or {})},
        "space_params": dict(space_params or {}),
        "checkpoint_every": checkpoint_every,
        "settings": {**SETTINGS, **settings},
    }


def _declared(space: str) -> list[str] | None:
    """The parameters ``space`` (a stdlib name or a .nas file) declares, read from its
    declaration without elaborating it (``None`` when it cannot be read here)."""
    from nasc import stdlib
    from nasc.dsl import ast
    from nasc.dsl.files import read_regular
    from nasc.dsl.parser import MAX_FILE_BYTES, parse_module
    from nasc.space import locate

    where = locate(space)
    path = stdlib.path_of(where) if isinstance(where, str) else where
    try:
        module = parse_module(read_regular(path, MAX_FILE_BYTES), file=str(path))
    except (OSError, TypeError, NasError):
        return None  # nasc.load reports it
    defs = [i for i in module.items if isinstance(i, ast.SpaceDef)]
    named = [d for d in defs if d.name == space] or defs
    return [p.name for p in named[0].params] if len(named) == 1 else None


def _common(space: str, splits: Splits) -> dict[str, Any]:
    """The data's class count and input channels, for the spaces that declare them; a space
    with a fixed input (no ``in_channels``) is checked against the data."""
    declared = _declared(space)
    common = {"classes": splits.classes, "in_channels": splits.in_channels}
    if declared is None:
        return common
    out = {k: v for k, v in common.items() if k in declared}
    if "in_channels" not in declared:
        from nasc.ir.nodes import Input

        try:
            fixed = [r.type.channels for r in nasc.load(space, **out).graph.nodes_of(Input)]
        except NasError:
            return out  # it needs other parameters: the run's own load checks them
        if fixed and fixed[0] != splits.in_channels:
            raise NasError(f"space {space!r} reads {fixed[0]}-channel images and has no "
                           f"in_channels parameter; the data {splits.name!r} has "
                           f"{splits.in_channels} channel(s)")
    return out


def _same(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    return [k for k in sorted(set(a) | set(b))
            if k != "checkpoint_every" and json.dumps(a.get(k), sort_keys=True, default=str)
            != json.dumps(b.get(k), sort_keys=True, default=str)]


def search(
    space: str,
    *,
    method: str = "darts",
    data: Any = "digits",
    epochs: int | None = None,
    retrain_epochs: int | None = None,
    seed: int = 0,
    out: str | Path | None = None,
    progress: bool = True,
    space_params: Mapping[str, Any] | None = None,
    retrain_params: Mapping[str, Any] | None = None,
    resume: bool = False,
    order: int = 1,
    batch: int | None = None,
    checkpoint_every: int | None = None,
    deterministic: bool = True,
    is_main: bool = True,
    device: str | torch.device | None = None,
    **settings: Any,
) -> SearchResult:
    """Search ``space`` with ``method`` on ``data``; retrain and evaluate the derived network.

    ``data`` is a built-in name, ``module:function``, or any data :func:`nasc.search.data.as_splits`
    accepts (torch ``Dataset``/``DataLoader`` objects included). ``resume=True`` continues the
    run in ``out`` (the other arguments must match the interrupted run's). ``space_params``
    set parameters of the search network's space, ``retrain_params`` of the retrained one's
    (defaults per data set in :data:`DEFAULTS`); ``settings`` override :data:`SETTINGS`.

    ``device``: ``cpu`` (the default), ``cuda``, ``cuda:N`` or ``auto`` (a GPU when there is
    one). The data splits move to the device once; the supernet is built and initialised there,
    and the search, evaluation, trials, shrinking and retraining all run there. Under
    ``torchrun`` every process takes ``cuda:LOCAL_RANK`` (NCCL) or the CPU (gloo). A run
    resumes on any device (checkpoints load onto the CPU first).
    """
    splits = load_data(data, seed) if isinstance(data, str) else as_splits(data, seed)
    cfg = _config(space, method, splits, epochs=epochs, retrain_epochs=retrain_epochs,
                  seed=seed, batch=batch, space_params=space_params,
                  retrain_params=retrain_params, order=order,
                  checkpoint_every=checkpoint_every, settings=settings)
    if resume and out is None:
        raise NasError("--resume needs the run directory (--out DIR)")
    # the run directory: owned by this run, never another run's overwritten (nasc.search.rundir)
    stamp = rundir.stamp(search_space(cfg), splits) if out is not None else None
    # under torchrun (WORLD_SIZE > 1): data-parallel processes, nasc.search.distributed
    ctx = distributed.init(device or "cpu", keep=True)
    writer: Writer | None = None
    ckpt: dict[str, Any] | None = None
    try:
        splits = ctx.place(splits)
        writer = Writer(out, is_main=is_main and ctx.is_main, resume=resume, stamp=stamp)
        if resume:
            path = Path(out) / "checkpoint.pt"
            if not path.exists():
                raise NasError(f"nothing to resume: {path} does not exist")
            ckpt = load_checkpoint(path, keys=("config", "state"))
            diff = _same(ckpt["config"], cfg)
            if diff:
                raise NasError(f"--resume: the run in {out} was started with other settings "
                               f"({', '.join(diff)}); repeat its command with --resume")
            rundir.check(ckpt.get("digests"), stamp, out)
        with _deterministic(deterministic):
            return _Run(cfg, splits, writer, ckpt, progress and ctx.is_main, ctx).run()
    finally:
        if writer is not None:
            writer.close()
        ctx.teardown()


class _Run:
    """One search run's phases: search (or trials), evolve (SPOS), retrain, report."""

    def __init__(self, cfg: dict[str, Any], splits: Splits, writer: Writer,
                 ckpt: dict[str, Any] | None, progress: bool,
                 dist: distributed.Context | None = None) -> None:
        self.cfg, self.splits, self.writer, self.progress = cfg, splits, writer, progress
        self.dist = dist or distributed.SINGLE_PROCESS
        self.ckpt = ckpt
        self.st: dict[str, Any] = ckpt["state"] if ckpt else {
            "phase": "search", "epoch": 0, "batch": 0, "step": 0, "losses": [],
            "history": [], "timings": {}, "evolution": None, "trials": None, "arch": None,
            "retrain": _fresh_retrain_state(), "report": None,
        }
        self.clock = _Clock(self.st["timings"])
        self.job: Job | None = None
        self.model: torch.nn.Module | None = None

    # -- checkpoints --
    def _restore_rng(self) -> None:
        """Once a resumed phase has rebuilt its modules, continue the random streams."""
        if self.ckpt is not None and "rng" in self.ckpt:
            set_rng_state(self.ckpt.pop("rng"), self.dist.device)

    def save(self) -> None:
        """Checkpoint: every rank averages its BN statistics, rank 0 writes, all wait."""
        for module in (self.job.net if self.job else None, self.model):
            if module is not None:
                self.dist.sync_buffers(module)
        self._write_checkpoint()
        self.dist.barrier()

    def _write_checkpoint(self) -> None:
        if not self.writer.active:
            return
        snap: dict[str, Any] = {"version": 1, "config": self.cfg, "state": self.st,
                                "rng": rng_state(self.dist.device)}
        if self.job is not None:
            snap.update(supernet=self.job.net.state_dict(), w_opt=self.job.w_opt.state_dict(),
                        w_sched=self.job.w_sched.state_dict())
            if self.job.a_opt is not None:
                snap["a_opt"] = self.job.a_opt.state_dict()
        elif self.ckpt is not None and "supernet" in self.ckpt:
            snap["supernet"] = self.ckpt["supernet"]
        if self.model is not None:
            opt, sched = self.st["retrain"]["live"]
            snap["model"] = self.model.state_dict()
            live = self.st["retrain"].pop("live")
            self.st["retrain"]["opt"], self.st["retrain"]["sched"] = (opt.state_dict(),
                                                                      sched.state_dict())
            self.writer.checkpoint(snap)
            self.st["retrain"]["live"] = live
            return
        self.writer.checkpoint(snap)

    def run(self) -> SearchResult:
        cfg, st = self.cfg, self.st
        self.writer.start_metrics(st["history"] + st["retrain"]["rows"])
        self.sp = search_space(cfg)
        with _progress(self.progress) as self.bar:
            if st["phase"] in ("search", "evolve"):
                if cfg["method"] in MULTI_TRIAL:
                    self._trials()
                else:
                    self._search()
                st["phase"] = "retrain"
                self.clock.tick("search_s")
                self.save()
            if st["phase"] == "retrain":
                self._retrain()
                st["retrain"].pop("live", None)
                st["report"] = self._report()
                if cfg["settings"]["compare_random"] and cfg["method"] != "random":
                    st["report"]["random_search_baseline"] = self._baseline()
                st["phase"] = "done"
                self.model = None
                self.save()
        self._write_outputs()
        self.writer.close()
        arch = retrain_space(cfg).canonical(nasc.Architecture.from_json(st["arch"]))
        return SearchResult(architecture=arch, report=st["report"], out=self.writer.out)

    # -- phases --
    def _search(self) -> None:
        cfg, st, splits = self.cfg, self.st, self.splits
        net = build_supernet(cfg, self.sp, self.dist.device)
        if st.get("shrinks"):  # HR-NAS: a resumed run's supernet was shrunk already
            net = recipes.replay_shrinks(net, st["shrinks"])
        x_a, y_a = splits.train_a
        per = batches_per_epoch(len(y_a), cfg["batch"])
        epochs = cfg["epochs"]
        self.job = job = make_job(cfg, net, epochs * per, tuple(x_a.shape[2:]))
        job.dist = self.dist
        self.dist.broadcast_state(net)
        if self.ckpt is not None:
            net.load_state_dict(self.ckpt["supernet"])
            job.w_opt.load_state_dict(self.ckpt["w_opt"])
            if job.a_opt is not None:
                job.a_opt.load_state_dict(self.ckpt["a_opt"])
            job.w_sched.load_state_dict(self.ckpt["w_sched"])
        self._restore_rng()
        every = cfg["checkpoint_every"]
        task = self.bar.add_task(f"search {cfg['space']} ({cfg['method']})", total=epochs * per,
                                 completed=st["epoch"] * per + st["batch"])
        while st["phase"] == "search" and st["epoch"] < epochs:
            e = st["epoch"]
            tau = temperature(cfg["method"], e, epochs)
            if tau is not None:
                net.set_temperature(tau)
            input_tau = job.recipe.temperature(e, epochs)  # DCNAS eq. 5
            if input_tau is not None:
                net.set_input_temperature(input_tau)
            job.arch_step = cfg["method"] != "spos" and job.recipe.arch_active(e)
            b_batches = Cycler(*splits.train_b, cfg["batch"], cfg["seed"], e, stream=1)
            for i, (xa, ya) in epochs_of(x_a, y_a, cfg["batch"], cfg["seed"], e, stream=0,
                                         start=st["batch"]):
                st["losses"].append(train_step(job, xa, ya, *b_batches[i], st["step"]))
                st["step"] += 1
                st["batch"] = i + 1
                self.bar.advance(task)
                if every and st["batch"] % every == 0 and st["batch"] < per:
                    self.clock.tick("search_s")
                    self.save()
            if job.sampling:
                net.relax()
            self.dist.sync_buffers(net)
            row = {"phase": "search", "epoch": e,
                   "train_loss": sum(st["losses"]) / max(len(st["losses"]), 1),
                   "valid_accuracy": accuracy(net, *splits.train_b), "alpha": _alpha_row(net)}
            if tau is not None:
                row["temperature"] = tau
            if input_tau is not None:
                row["input_temperature"] = input_tau
            if job.recipe.two_path:
                row["arch_steps"] = job.arch_step  # False in DenseNAS' warm-up
            if job.recipe.prunes_after(e, epochs):  # HR-NAS progressive shrinking
                net = self._shrink(job)
                row["units"] = sum(st["shrinks"][-1].values())
            st["history"].append(row)
            self.writer.row(row)
            st.update(epoch=e + 1, batch=0, losses=[])
            self.clock.tick("search_s")
            self.save()
        if cfg["method"] == "spos":
            st["phase"] = "evolve"
            self._evolve()
        else:
            st["arch"] = self.sp.canonical(_derive(net)).to_json()
        # every rank derived the same architecture from the same parameters, or fail loudly
        self.dist.assert_same(architecture=st["arch"],
                              arch_parameters=list(net.arch_parameters()),
                              weights=list(net.weight_parameters()))
        self.job = None
        self.ckpt = {"supernet": net.state_dict()}

    def _calibration(self) -> list[torch.Tensor]:
        """The first trainA batches of a fixed order: BN re-calibration (SPOS, HR-NAS)."""
        cfg = self.cfg
        x_a, y_a = self.splits.train_a
        perm = order(len(y_a), cfg["seed"], -1, stream=3)
        n = min(cfg["settings"]["calibration_batches"], batches_per_epoch(len(y_a), cfg["batch"]))
        return [x_a[perm[i * cfg["batch"] : (i + 1) * cfg["batch"]]] for i in range(n)]

    def _shrink(self, job: Job) -> Any:
        """HR-NAS: remove the units at or below eps, re-calibrate BN, move the optimiser."""
        new, kept = recipes.shrink_step(job.net, self._calibration())
        self.st.setdefault("shrinks", []).append(kept)
        job.w_opt, job.w_sched = recipes.moved_optimizer(job.w_opt, job.w_sched,
                                                         new.weight_parameters())
        job.net = new
        return new

    def _evolve(self) -> None:
        """SPOS: evolutionary search over sub-architectures scored with inherited weights."""
        cfg, s = self.cfg, self.cfg["settings"]
        net = self.job.net
        calib = self._calibration()

        def score(arch) -> float:
            net.fix(arch)
            recalibrate_bn(net, calib)
            return accuracy(net, *self.splits.train_b)

        def on_generation(state) -> None:
            self.st["evolution"] = state
            self.clock.tick("search_s")
            self.save()

        task = self.bar.add_task("evolve sub-architectures (SPOS)",
                                 total=s["spos_population"] * s["spos_generations"])
        found = evolve(self.sp, score, random.Random(cfg["seed"]),
                       population=s["spos_population"], generations=s["spos_generations"],
                       topk=s["spos_topk"], mutation=s["spos_mutation"],
                       state=self.st["evolution"], on_generation=on_generation,
                       progress=lambda k: self.bar.advance(task, k), spread=self.dist.spread)
        net.relax()
        self.st["arch"] = found["best"].to_json()
        self.st["evolution_best_score"] = found["score"]
        self.st["duplicates_skipped"] = found["duplicates_skipped"]

    def _trials(self) -> None:
        from nasc.search.multitrial import run_trials

        cfg, s = self.cfg, self.cfg["settings"]
        per = batches_per_epoch(len(self.splits.train_a[1]), cfg["batch"])
        task = self.bar.add_task(f"{cfg['method']} search: {s['trials']} trials",
                                 total=s["trials"] * s["trial_epochs"] * per)
        self._restore_rng()
        done = len((self.st["trials"] or {}).get("trials", []))
        self.bar.advance(task, done * s["trial_epochs"] * per)

        def on_trial(state) -> None:
            self.st["trials"] = state
            self.clock.tick("search_s")
            self.save()

        found = run_trials(cfg["method"], self.sp, self.splits, trials=s["trials"],
                           epochs=s["trial_epochs"], batch=cfg["batch"], seed=cfg["seed"],
                           population=s["population"], sample=s["sample"],
                           state=self.st["trials"], on_trial=on_trial,
                           progress=lambda k: self.bar.advance(task, k), dist=self.dist)
        self.st["arch"] = found["best"].to_json()
        self.st["trial_results"] = found["trials"]
        self.st["duplicates_skipped"] = found["duplicates_skipped"]
        self.dist.assert_same(architecture=self.st["arch"])

    def _retrain(self) -> None:
        cfg, st = self.cfg, self.st
        rs = retrain_space(cfg)
        arch = rs.canonical(nasc.Architecture.from_json(st["arch"]))
        torch.manual_seed(cfg["seed"])
        self.model = nasc.instantiate(rs, arch, device=self.dist.device)
        self.dist.broadcast_state(self.model)
        if self.ckpt is not None and "model" in self.ckpt:
            self.model.load_state_dict(self.ckpt["model"])
        self._restore_rng()
        fit(self.model, self.splits, epochs=cfg["retrain_epochs"], batch=cfg["batch"],
            seed=cfg["seed"], state=st["retrain"], save=self.save, bar=self.bar,
            every=cfg["checkpoint_every"], label="retrain derived network", clock=self.clock,
            writer=self.writer, main=recipes.main_output(rs),
            auxiliary_weight=cfg["settings"]["auxiliary_weight"], dist=self.dist)

    def _baseline(self) -> dict[str, Any]:
        """Random search at the method's budget: as many trainA epochs over all its trials as
        the search trained the supernet for; its best retrained like the method's result. (Not
        checkpointed inside: a resumed run repeats it, to the same numbers.)"""
        from nasc.search.multitrial import run_trials

        cfg, s = self.cfg, self.cfg["settings"]
        trial_epochs = min(s["trial_epochs"], max(cfg["epochs"], 1))
        trials = max(1, cfg["epochs"] // trial_epochs)
        t0 = time.perf_counter()
        per = batches_per_epoch(len(self.splits.train_a[1]), cfg["batch"])
        task = self.bar.add_task(f"random-search baseline: {trials} trials",
                                 total=trials * trial_epochs * per)
        found = run_trials("random", self.sp, self.splits, trials=trials, epochs=trial_epochs,
                           batch=cfg["batch"], seed=cfg["seed"],
                           progress=lambda k: self.bar.advance(task, k), dist=self.dist)
        rs = retrain_space(cfg)
        arch = rs.canonical(dict(found["best"]))
        torch.manual_seed(cfg["seed"])
        model = nasc.instantiate(rs, arch, device=self.dist.device)
        main = recipes.main_output(rs)
        fit(model, self.splits, epochs=cfg["retrain_epochs"], batch=cfg["batch"],
            seed=cfg["seed"], state=_fresh_retrain_state(), save=lambda: None, bar=self.bar,
            every=None, label="retrain random-search baseline", clock=_Clock({}),
            writer=Writer(None), main=main,
            auxiliary_weight=cfg["settings"]["auxiliary_weight"])
        model = recipes.MainOutput(model, main)
        return {"method": "random", "trials": trials, "trial_epochs": trial_epochs,
                "valid_accuracy": found["score"], "test_accuracy": accuracy(model,
                                                                            *self.splits.test),
                "parameters": sum(p.numel() for p in model.parameters()),
                "architecture": arch.to_dict()["choices"],
                "duplicates_skipped": found["duplicates_skipped"],
                "seconds": time.perf_counter() - t0}

    def _report(self) -> dict[str, Any]:
        from nasc.ir.cost import cost

        cfg, st = self.cfg, self.st
        rs = retrain_space(cfg)
        arch = rs.canonical(nasc.Architecture.from_json(st["arch"]))
        hw = tuple(self.splits.test[0].shape[2:])
        history = st["history"]
        model = recipes.MainOutput(self.model, recipes.main_output(rs))
        report = {
            "space": cfg["space"],
            "method": cfg["method"],
            "order": cfg["order"],
            "data": cfg["data"],
            "seed": cfg["seed"],
            "device": str(self.dist.device),
            "processes": self.dist.world,
            "search_epochs": cfg["epochs"],
            "retrain_epochs": cfg["retrain_epochs"],
            "search_valid_accuracy": history[-1]["valid_accuracy"] if history else None,
            "test_accuracy": accuracy(model, *self.splits.test),
            "parameters": sum(p.numel() for p in self.model.parameters()),
            "flops": cost(rs.resolve(arch).graph, "macs", input_size=hw),
            "timings": {"search_s": 0.0, "retrain_s": 0.0, **st["timings"]},
            "architecture": arch.to_dict(),
        }
        if cfg["method"] in TEMPERATURES:
            report["temperature_schedule"] = list(TEMPERATURES[cfg["method"]])
        if self.splits.dense:  # segmentation: pixel accuracy and mean IoU on the test split
            report.update(recipes.segmentation_metrics(
                recipes.confusion(model, *self.splits.test, self.splits.classes)))
        if cfg["method"] in recipes.DEFAULTS:
            rec = recipes.recipe(cfg["method"], cfg["settings"], epochs=cfg["epochs"],
                                 input_size=hw)
            report["recipe"] = {k: v for k, v in attrs.asdict(rec).items()
                                if k not in ("method", "input_size")}
        if "shrinks" in st:
            report["shrinks"] = len(st["shrinks"])
        if cfg["method"] == "spos":
            report["evolution_valid_accuracy"] = st.get("evolution_best_score")
        if cfg["method"] in MULTI_TRIAL:
            report["trials"] = st.get("trial_results")
        if "duplicates_skipped" in st:  # networks drawn again and not trained (docs/unique.md)
            report["duplicates_skipped"] = st["duplicates_skipped"]
        return report

    def _write_outputs(self) -> None:
        from nasc.search.pictures import write_pictures

        cfg, st = self.cfg, self.st
        rs = retrain_space(cfg)
        arch = rs.canonical(nasc.Architecture.from_json(st["arch"]))
        resolved = rs.resolve(arch)
        self.writer.text("architecture.json", arch.to_json(indent=2) + "\n")
        self.writer.text("derived.nas", resolved.to_nas())
        options = {lab: [f"input {o}" if spec.kind == "input" else str(o) for o in spec.options]
                   for lab, spec in search_space(cfg).specs.items()}
        notes = write_pictures(self.writer, st["history"], resolved.graph,
                               f"{cfg['space']} derived", options=options, space=rs, arch=arch)
        if notes:
            st["report"]["notes"] = notes
        self.writer.text("report.json", json.dumps(st["report"], indent=2) + "\n")


# ---- nasc derive / nasc train ------------------------------------------------------------------
def _derive(net: Any) -> dict[str, Any]:
    """The supernet's architecture: HR-NAS' kept unit counts, else its recipe's derivation."""
    if getattr(net, "method", None) == "hrnas":
        from nasc.search.hrnas import derive

        return derive(net)
    return net.derive()


def derive_run(run: str | Path, *, write: bool = True) -> nasc.Architecture:
    """Re-derive a run's architecture from its checkpoint (the supernet's architecture
    parameters; SPOS' evolutionary result; the best trial of a multi-trial run) and write
    ``architecture.json`` and ``derived.nas`` into the run directory."""
    run = Path(run)
    path = run / "checkpoint.pt"
    if not path.exists():
        raise NasError(f"{run} is not a run directory: no checkpoint.pt")
    w = Writer(run, resume=True, command="derive") if write else None  # owns the directory
    try:
        return _derive_run(run, load_checkpoint(path, keys=("config", "state")), w)
    finally:
        if w is not None:
            w.close()


def _derive_run(run: Path, ckpt: dict[str, Any], w: Writer | None) -> nasc.Architecture:
    cfg, st = rundir.checked_config(ckpt, run / "checkpoint.pt"), ckpt["state"]
    sp = search_space(cfg)
    rundir.check(ckpt.get("digests"), {"space": rundir.stamp_space(sp)}, run)
    if cfg["method"] in MULTI_TRIAL:
        trials = (st.get("trials") or {}).get("trials") or []
        if not trials:
            raise NasError(f"{run}: no trial has finished yet; --resume the run")
        best = max(trials, key=lambda t: t["score"])
        arch = nasc.Architecture.from_json(best["arch"])
    elif cfg["method"] == "spos":
        if st.get("arch") is None:
            raise NasError(f"{run}: the SPOS evolutionary search has not finished; --resume "
                           "the run")
        arch = nasc.Architecture.from_json(st["arch"])
    else:
        if "supernet" not in ckpt:
            raise NasError(f"{run}: the checkpoint holds no supernet")
        net = build_supernet(cfg, sp)
        if st.get("shrinks"):  # HR-NAS: the checkpoint holds the shrunk supernet
            net = recipes.replay_shrinks(net, st["shrinks"])
        net.load_state_dict(ckpt["supernet"])
        arch = sp.canonical(_derive(net))
    rs = retrain_space(cfg)
    arch = rs.canonical(dict(arch))
    if w is not None:
        w.text("architecture.json", arch.to_json(indent=2) + "\n")
        w.text("derived.nas", rs.resolve(arch).to_nas())
    return arch


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

    ``device`` as in :func:`search`. Under ``torchrun`` the processes train one network data-
    parallel (each its shard of every batch, gradients averaged; rank 0 writes the files)."""
    from nasc.space import fit_architecture, named_space

    what = "the architecture"
    if not isinstance(arch, nasc.Architecture):
        p = Path(arch)
        p = p / "architecture.json" if p.is_dir() else p
        what = f"architecture {p}"
        if not p.exists():
            raise NasError(f"no architecture file {p}")
        try:
            arch = nasc.Architecture.load(p)
        except ValueError as e:
            raise NasError(f"{p}: {e}") from None
    where = named_space(arch.space, given=space, what=what)
    splits = load_data(data, seed) if isinstance(data, str) else as_splits(data, seed)
    base = DEFAULTS.get(splits.name, DEFAULTS["digits"])
    epochs = base["retrain_epochs"] if epochs is None else epochs
    batch = base["batch"] if batch is None else batch
    params = {**arch.params, **_common(str(where), splits), **(space_params or {})}
    space = nasc.load(where, **params)
    arch = fit_architecture(space, arch, what=what)
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
    torch.manual_seed(seed)
    model = nasc.instantiate(space, arch, device=ctx.device)
    ctx.broadcast_state(model)
    state = _fresh_retrain_state()
    timings: dict[str, float] = {}
    clock = _Clock(timings)

    def save() -> None:
        live = state.pop("live")
        state["opt"], state["sched"] = live[0].state_dict(), live[1].state_dict()
        writer.checkpoint({"model": model.state_dict(), "state": state,
                           "rng": rng_state(ctx.device)})
        state["live"] = live

    main = recipes.main_output(space)
    with _progress(progress and ctx.is_main) as bar:
        fit(model, splits, epochs=epochs, batch=batch, seed=seed, state=state, save=save,
            bar=bar, every=None, label=f"train {arch.space}", clock=clock, writer=writer,
            main=main, dist=ctx)
    ctx.sync_buffers(model)  # every rank's BN statistics, averaged: one network to evaluate
    model = recipes.MainOutput(model, main)
    from nasc.ir.cost import cost

    report = {
        "space": arch.space,
        "data": splits.name,
        "epochs": epochs,
        "seed": seed,
        "device": str(ctx.device),
        "processes": ctx.world,
        "test_accuracy": accuracy(model, *splits.test),
        "parameters": sum(p.numel() for p in model.parameters()),
        "flops": cost(space.resolve(arch).graph, "macs",
                      input_size=tuple(splits.test[0].shape[2:])),
        "timings": {"retrain_s": 0.0, **timings},
        "architecture": arch.to_dict(),
    }
    writer.text("architecture.json", arch.to_json(indent=2) + "\n")
    writer.text("report.json", json.dumps(report, indent=2) + "\n")
    writer.close()
    return report
