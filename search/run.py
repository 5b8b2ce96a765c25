"""``nasc search``: find an architecture on real data, derive it, retrain it, report.

A run goes through its phases (:mod:`nasc.search.phases`): the search (a supernet trained the
way its method's record says, :mod:`nasc.methods`, then derived, or SPOS' evolution over its
sub-architectures; or, for ``random`` and ``evolution``, trials of sampled networks,
:mod:`nasc.search.multitrial`), retraining the architecture from scratch on both training halves
(:mod:`nasc.search.retrain`), and the report on the held-out test split. GDAS and SNAS anneal
their Gumbel temperature per epoch; sampling methods draw their paths per step from the run's
seed. Every argument and setting is checked first (:mod:`nasc.search.settings`), and so are
the search space, the retrain space and the data against each other
(:mod:`nasc.search.checks`): what can only fail at the end fails before the first step.

A run directory is checkpointed atomically (``checkpoint.pt``) every epoch and every
``checkpoint_every`` steps, with everything a step depends on: the run's state
(:class:`~nasc.search.state.RunState`: phase, epoch, batch, step, metrics so far), the supernet
or network weights, optimisers, schedulers and the random states (torch, Python, NumPy).
``resume=True`` continues from it to exactly the result of an uninterrupted run with the same
settings. A loss or parameter that stops being finite ends the run with an error and keeps the
last checkpoint from before (:class:`~nasc.search.steps.NonFinite`). Every file goes through
one :class:`~nasc.search.training.Writer`; the training step is one function,
:func:`~nasc.search.steps.train_step`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import torch
from nasc.dsl.diagnostics import NasError
from nasc.search import distributed, phases, recipes, rundir
from nasc.search.checks import check_run
from nasc.search.data import Splits, as_splits, load_data
from nasc.search.phases import build_supernet
from nasc.search.retrain import Retraining, train_architecture
from nasc.search.settings import (
    DEFAULTS,
    MULTI_TRIAL,
    SETTINGS,
    check_arguments,
    config,
    differences,
    retrain_space,
    search_space,
)
from nasc.search.state import Clock, RunState, progress_bar
from nasc.search.steps import Job, NonFinite, check_finite_modules, make_job, train_step
from nasc.search.training import Writer, load_checkpoint, rng_state, set_rng_state

import nasc
from nasc import methods


@attrs.frozen(kw_only=True)
class SearchResult:
    architecture: nasc.Architecture
    report: dict[str, Any]
    out: Path | None


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
    check_arguments(epochs=epochs, retrain_epochs=retrain_epochs, seed=seed, batch=batch,
                    order=order, checkpoint_every=checkpoint_every)
    splits = load_data(data, seed) if isinstance(data, str) else as_splits(data, seed)
    cfg = config(space, method, splits, epochs=epochs, retrain_epochs=retrain_epochs,
                 seed=seed, batch=batch, space_params=space_params,
                 retrain_params=retrain_params, order=order,
                 checkpoint_every=checkpoint_every, settings=settings)
    spaces = search_space(cfg), retrain_space(cfg)
    check_run(cfg, *spaces, splits)  # what can only fail at the end fails before anything runs
    if resume and out is None:
        raise NasError("--resume needs the run directory (--out DIR)")
    # the run directory: owned by this run, never another run's overwritten (nasc.search.rundir)
    stamp = rundir.stamp(spaces[0], splits) if out is not None else None
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
            diff = differences(ckpt["config"], cfg)
            if diff:
                raise NasError(f"--resume: the run in {out} was started with other settings "
                               f"({', '.join(diff)}); repeat its command with --resume")
            rundir.check(ckpt.get("digests"), stamp, out)
        with _deterministic(deterministic):
            return Run(cfg, splits, writer, ckpt, progress and ctx.is_main, ctx,
                       spaces=spaces).run()
    finally:
        if writer is not None:
            writer.close()
        ctx.teardown()


class Run:
    """One search run: its configuration, data, state and live modules, through its phases
    (search or trials, retrain, report; :mod:`nasc.search.phases`)."""

    def __init__(self, cfg: dict[str, Any], splits: Splits, writer: Writer,
                 ckpt: dict[str, Any] | None, progress: bool,
                 dist: distributed.Context | None = None,
                 spaces: tuple[nasc.Space, nasc.Space] | None = None) -> None:
        self.cfg, self.splits, self.writer, self.progress = cfg, splits, writer, progress
        self.method = methods.get(cfg["method"])
        self.dist = dist or distributed.SINGLE_PROCESS
        ckpt = dict(ckpt or {})
        self.state = RunState.from_dict(ckpt.pop("state")) if "state" in ckpt else RunState()
        self.clock = Clock(self.state.timings)
        #: the random states to continue from, once a resumed phase has rebuilt its modules
        self.rng: dict[str, Any] | None = ckpt.pop("rng", None)
        #: the checkpoint's tensors a resumed phase continues from (supernet, optimisers, model)
        self.restored: dict[str, Any] = ckpt
        #: the trained supernet's weights, kept in every checkpoint after the search
        self.supernet_state: dict[str, Any] | None = ckpt.get("supernet")
        self.job: Job | None = None  # the supernet's search, while it runs
        self.retraining: Retraining | None = None  # the derived network's, while it runs
        #: the search and the retrain space, elaborated once
        self.sp, self.rs = spaces or (search_space(cfg), retrain_space(cfg))
        self._arch: nasc.Architecture | None = None
        self.bar: Any = None

    def architecture(self) -> nasc.Architecture:
        """The searched architecture in the retrain space (once the search has found it)."""
        if self._arch is None:
            self._arch = self.rs.canonical(nasc.Architecture.from_json(self.state.arch))
        return self._arch

    # -- checkpoints --
    def restore_rng(self) -> None:
        """Once a resumed phase has rebuilt its modules, continue the random streams."""
        if self.rng is not None:
            set_rng_state(self.rng, self.dist.device)
            self.rng = None

    def save(self) -> None:
        """Checkpoint: every rank averages its BN statistics, rank 0 writes, all wait. A
        parameter that is not finite stops the run instead (the last checkpoint stays)."""
        live = [self.job.net if self.job else None,
                self.retraining.model if self.retraining else None]
        for module in live:
            if module is not None:
                self.dist.sync_buffers(module)
        st = self.state
        where = (f"retraining epoch {st.retrain.epoch}, batch {st.retrain.batch}"
                 if self.retraining else f"search epoch {st.epoch}, batch {st.batch}")
        check_finite_modules(live, where)
        if self.writer.active:
            self.writer.checkpoint(self.snapshot())
        self.dist.barrier()

    def snapshot(self) -> dict[str, Any]:
        """What a checkpoint holds (see the module docstring)."""
        snap: dict[str, Any] = {"version": 1, "config": self.cfg,
                                "rng": rng_state(self.dist.device)}
        if self.job is not None:
            snap.update(self.job.snapshot())
        elif self.supernet_state is not None:
            snap["supernet"] = self.supernet_state
        if self.retraining is not None:
            snap.update(self.retraining.snapshot())  # (its optimiser's state: into the state)
        snap["state"] = self.state.to_dict()
        return snap

    # -- the phases --
    def run(self) -> SearchResult:
        cfg, st = self.cfg, self.state
        self.writer.start_metrics(st.history + st.retrain.rows)
        try:
            with progress_bar(self.progress) as self.bar:
                if st.phase in ("search", "evolve"):
                    if self.method.search == "trials":
                        phases.search_trials(self)
                    else:
                        phases.search_supernet(self)
                    self.restored = {}
                    st.phase = "retrain"
                    self.clock.tick("search_s")
                    self.save()
                if st.phase == "retrain":
                    phases.retrain(self)
                    st.report = phases.report(self)
                    if cfg["settings"]["compare_random"] and cfg["method"] != "random":
                        st.report["random_search_baseline"] = phases.baseline(self)
                    st.phase = "done"
                    self.retraining = None
                    self.save()
        except NonFinite as e:
            path = self.writer.path("checkpoint.pt")
            if path is not None and path.is_file():
                raise NonFinite(f"{e}\n  the last good checkpoint is kept: {path}") from None
            raise
        phases.write_outputs(self)
        self.writer.close()
        return SearchResult(architecture=self.architecture(), report=st.report,
                            out=self.writer.out)


# ---- nasc derive -------------------------------------------------------------------------------
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
    cfg = rundir.checked_config(ckpt, run / "checkpoint.pt")
    st = RunState.from_dict(ckpt["state"])
    m = methods.get(cfg["method"])
    sp = search_space(cfg)
    rundir.check(ckpt.get("digests"), {"space": rundir.stamp_space(sp)}, run)
    if m.search == "trials":
        trials = (st.trials or {}).get("trials") or []
        if not trials:
            raise NasError(f"{run}: no trial has finished yet; --resume the run")
        best = max(trials, key=lambda t: t["score"])
        arch = nasc.Architecture.from_json(best["arch"])
    elif m.after_search == "evolve":
        if st.arch is None:
            raise NasError(f"{run}: the SPOS evolutionary search has not finished; --resume "
                           "the run")
        arch = nasc.Architecture.from_json(st.arch)
    else:
        if "supernet" not in ckpt:
            raise NasError(f"{run}: the checkpoint holds no supernet")
        net = build_supernet(cfg, sp)
        if st.shrinks:  # HR-NAS: the checkpoint holds the shrunk supernet
            net = recipes.replay_shrinks(net, st.shrinks)
        net.load_state_dict(ckpt["supernet"])
        arch = sp.canonical(net.derive())
    rs = retrain_space(cfg)
    arch = rs.canonical(dict(arch))
    if w is not None:
        w.text("architecture.json", arch.to_json(indent=2) + "\n")
        w.text("derived.nas", rs.resolve(arch).to_nas())
    return arch


__all__ = ["DEFAULTS", "MULTI_TRIAL", "SETTINGS", "Job", "Run", "SearchResult",
           "build_supernet", "derive_run", "make_job", "retrain_space", "search",
           "search_space", "train_architecture", "train_step"]
