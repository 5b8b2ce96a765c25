"""The phases of a search run, one function each: the supernet's search (with SPOS' evolution
after it), the multi-trial search, retraining, the random-search baseline, and the report.

Each takes the :class:`~nasc.search.run.Run` (its configuration, data, state, writer and
progress bars), advances ``run.state`` and checkpoints through ``run.save()``. What a method
does differently is read from its record (``run.method``, :class:`nasc.methods.Method`).
"""

from __future__ import annotations

import json
import random
import time
from typing import TYPE_CHECKING, Any

import attrs
import torch
from nasc.search import recipes
from nasc.search.retrain import Retraining, evaluate, retrain_fresh
from nasc.search.state import json_safe
from nasc.search.steps import Job, make_job, train_step
from nasc.search.strategies import evolve as evolutionary_search
from nasc.search.strategies import recalibrate_bn, temperature
from nasc.search.training import (
    Cycler,
    Writer,
    accuracy,
    batches_per_epoch,
    epochs_of,
    order,
)

import nasc

if TYPE_CHECKING:
    from nasc.search.run import Run


def build_supernet(cfg: Any, sp: nasc.Space, device: torch.device | str | None = None):
    """The run's supernet, its weights initialised from the run's seed on ``device``."""
    torch.manual_seed(cfg["seed"])
    return nasc.compile(sp, method=cfg["method"], device=device)


def _alpha_row(net) -> dict[str, list[float]]:
    return {lab: torch.softmax(a.detach(), -1).tolist() for lab, a in zip(net.labels, net.alpha)}


# ---- the supernet's search ---------------------------------------------------------------------
def search_supernet(run: Run) -> None:
    """Train the supernet (bilevel, two-path or one-level, as the method says), then derive
    its architecture, or run SPOS' evolution on it."""
    cfg, st, splits, m = run.cfg, run.state, run.splits, run.method
    net = build_supernet(cfg, run.sp, run.dist.device)
    if st.shrinks:  # HR-NAS: a resumed run's supernet was shrunk already
        net = recipes.replay_shrinks(net, st.shrinks)
    x_a, y_a = splits.train_a
    per = batches_per_epoch(len(y_a), cfg["batch"])
    epochs = cfg["epochs"]
    run.job = job = make_job(cfg, net, epochs * per, tuple(x_a.shape[2:]))
    job.dist = run.dist
    run.dist.broadcast_state(net)
    if "supernet" in run.restored and "w_opt" in run.restored:
        job.restore(run.restored)
    run.restore_rng()
    every = cfg["checkpoint_every"]
    task = run.bar.add_task(f"search {cfg['space']} ({cfg['method']})", total=epochs * per,
                            completed=st.epoch * per + st.batch)
    while st.phase == "search" and st.epoch < epochs:
        e = st.epoch
        tau = temperature(cfg["method"], e, epochs, m.temperatures)
        if tau is not None:
            net.set_temperature(tau)
        input_tau = job.recipe.temperature(e, epochs)  # DCNAS eq. 5
        if input_tau is not None:
            net.set_input_temperature(input_tau)
        job.arch_step = m.arch_step != "none" and job.recipe.arch_active(e)
        b_batches = Cycler(*splits.train_b, cfg["batch"], cfg["seed"], e, stream=1)
        for i, (xa, ya) in epochs_of(x_a, y_a, cfg["batch"], cfg["seed"], e, stream=0,
                                     start=st.batch):
            st.losses.append(train_step(job, xa, ya, *b_batches[i], st.step))
            st.step += 1
            st.batch = i + 1
            run.bar.advance(task)
            if every and st.batch % every == 0 and st.batch < per:
                run.clock.tick("search_s")
                run.save()
        if job.sampling:
            net.relax()
        run.dist.sync_buffers(net)
        row = {"phase": "search", "epoch": e,
               "train_loss": sum(st.losses) / max(len(st.losses), 1),
               "valid_accuracy": accuracy(net, *splits.train_b), "alpha": _alpha_row(net)}
        if tau is not None:
            row["temperature"] = tau
        if input_tau is not None:
            row["input_temperature"] = input_tau
        if m.arch_step == "two_path":
            row["arch_steps"] = job.arch_step  # False in DenseNAS' warm-up
        if job.recipe.prunes_after(e, epochs):  # HR-NAS progressive shrinking
            net = _shrink(run, job)
            row["units"] = sum(st.shrinks[-1].values())
        st.history.append(row)
        run.writer.row(json_safe(row))
        st.epoch, st.batch, st.losses = e + 1, 0, []
        run.clock.tick("search_s")
        run.save()
    if m.after_search == "evolve":
        st.phase = "evolve"
        _evolve(run, net)
    else:
        st.arch = run.sp.canonical(net.derive()).to_json()
    # every rank derived the same architecture from the same parameters, or fail loudly
    run.dist.assert_same(architecture=st.arch, arch_parameters=list(net.arch_parameters()),
                         weights=list(net.weight_parameters()))
    run.job = None
    run.supernet_state = net.state_dict()


def calibration(run: Run) -> list[torch.Tensor]:
    """The first trainA batches of a fixed order: BN re-calibration (SPOS, HR-NAS)."""
    cfg = run.cfg
    x_a, y_a = run.splits.train_a
    perm = order(len(y_a), cfg["seed"], -1, stream=3)
    n = min(cfg["settings"]["calibration_batches"], batches_per_epoch(len(y_a), cfg["batch"]))
    return [x_a[perm[i * cfg["batch"] : (i + 1) * cfg["batch"]]] for i in range(n)]


def _shrink(run: Run, job: Job) -> Any:
    """HR-NAS: remove the units at or below eps, re-calibrate BN, move the optimiser."""
    new, kept = recipes.shrink_step(job.net, calibration(run))
    run.state.shrinks.append(kept)
    job.w_opt, job.w_sched = recipes.moved_optimizer(job.w_opt, job.w_sched,
                                                     new.weight_parameters())
    job.net = new
    return new


def _evolve(run: Run, net: Any) -> None:
    """SPOS: evolutionary search over sub-architectures scored with inherited weights."""
    cfg, s, st = run.cfg, run.cfg["settings"], run.state
    calib = calibration(run)

    def score(arch) -> float:
        net.fix(arch)
        recalibrate_bn(net, calib)
        return accuracy(net, *run.splits.train_b)

    def on_generation(state) -> None:
        st.evolution = state
        run.clock.tick("search_s")
        run.save()

    task = run.bar.add_task("evolve sub-architectures (SPOS)",
                            total=s["spos_population"] * s["spos_generations"])
    found = evolutionary_search(
        run.sp, score, random.Random(cfg["seed"]), population=s["spos_population"],
        generations=s["spos_generations"], topk=s["spos_topk"], mutation=s["spos_mutation"],
        state=st.evolution, on_generation=on_generation,
        progress=lambda k: run.bar.advance(task, k), spread=run.dist.spread)
    net.relax()
    st.arch = found["best"].to_json()
    st.evolution_best_score = found["score"]
    st.duplicates_skipped = found["duplicates_skipped"]


# ---- the multi-trial search --------------------------------------------------------------------
def search_trials(run: Run) -> None:
    """Random search or regularised evolution: train sampled networks, keep the best."""
    from nasc.search.multitrial import run_trials

    cfg, s, st = run.cfg, run.cfg["settings"], run.state
    per = batches_per_epoch(len(run.splits.train_a[1]), cfg["batch"])
    task = run.bar.add_task(f"{cfg['method']} search: {s['trials']} trials",
                            total=s["trials"] * s["trial_epochs"] * per)
    run.restore_rng()
    done = len((st.trials or {}).get("trials", []))
    run.bar.advance(task, done * s["trial_epochs"] * per)

    def on_trial(state) -> None:
        st.trials = state
        run.clock.tick("search_s")
        run.save()

    found = run_trials(cfg["method"], run.sp, run.splits, trials=s["trials"],
                       epochs=s["trial_epochs"], batch=cfg["batch"], seed=cfg["seed"],
                       population=s["population"], sample=s["sample"], state=st.trials,
                       on_trial=on_trial, progress=lambda k: run.bar.advance(task, k),
                       dist=run.dist)
    st.arch = found["best"].to_json()
    st.trial_results = found["trials"]
    st.duplicates_skipped = found["duplicates_skipped"]
    run.dist.assert_same(architecture=st.arch)


# ---- retraining and the report -----------------------------------------------------------------
def retrain(run: Run) -> None:
    """Retrain the searched architecture from scratch (checkpointed; resumes mid-epoch)."""
    cfg = run.cfg
    torch.manual_seed(cfg["seed"])
    model = nasc.instantiate(run.rs, run.architecture(), device=run.dist.device)
    run.dist.broadcast_state(model)
    if "model" in run.restored:
        model.load_state_dict(run.restored["model"])
    per = batches_per_epoch(len(run.splits.train[1]), cfg["batch"])
    run.retraining = job = Retraining.start(
        model, run.state.retrain, steps=cfg["retrain_epochs"] * per,
        main=recipes.main_output(run.rs), auxiliary_weight=cfg["settings"]["auxiliary_weight"])
    run.restore_rng()
    job.fit(run.splits, epochs=cfg["retrain_epochs"], batch=cfg["batch"], seed=cfg["seed"],
            save=run.save, bar=run.bar, every=cfg["checkpoint_every"],
            label="retrain derived network", clock=run.clock, writer=run.writer, dist=run.dist)


def baseline(run: Run) -> dict[str, Any]:
    """Random search at the method's budget: as many trainA epochs over all its trials as the
    search trained the supernet for; its best retrained like the method's result. (Not
    checkpointed inside: a resumed run repeats it, to the same numbers.)"""
    from nasc.search.multitrial import run_trials

    cfg, s = run.cfg, run.cfg["settings"]
    trial_epochs = min(s["trial_epochs"], max(cfg["epochs"], 1))
    trials = max(1, cfg["epochs"] // trial_epochs)
    t0 = time.perf_counter()
    per = batches_per_epoch(len(run.splits.train_a[1]), cfg["batch"])
    task = run.bar.add_task(f"random-search baseline: {trials} trials",
                            total=trials * trial_epochs * per)
    found = run_trials("random", run.sp, run.splits, trials=trials, epochs=trial_epochs,
                       batch=cfg["batch"], seed=cfg["seed"],
                       progress=lambda k: run.bar.advance(task, k), dist=run.dist)
    arch = run.rs.canonical(dict(found["best"]))
    job, _ = retrain_fresh(run.rs, arch, run.splits, epochs=cfg["retrain_epochs"],
                           batch=cfg["batch"], seed=cfg["seed"], bar=run.bar,
                           label="retrain random-search baseline", writer=Writer(None),
                           auxiliary_weight=cfg["settings"]["auxiliary_weight"],
                           device=run.dist.device)  # (each rank alone: the same numbers)
    return {"method": "random", "trials": trials, "trial_epochs": trial_epochs,
            "valid_accuracy": found["score"], **evaluate(job.model, run.rs, arch, run.splits),
            "duplicates_skipped": found["duplicates_skipped"],
            "architecture": arch.to_dict()["choices"], "seconds": time.perf_counter() - t0}


def report(run: Run) -> dict[str, Any]:
    """The run's report: settings, search and test results, costs, timings."""
    cfg, st, m = run.cfg, run.state, run.method
    arch = run.architecture()
    history = st.history
    out = {
        "space": cfg["space"],
        "method": cfg["method"],
        "order": cfg["order"],
        "data": cfg["data"],
        "seed": cfg["seed"],
        "device": str(run.dist.device),
        "processes": run.dist.world,
        "search_epochs": cfg["epochs"],
        "retrain_epochs": cfg["retrain_epochs"],
        "search_valid_accuracy": history[-1]["valid_accuracy"] if history else None,
        **evaluate(run.retraining.model, run.rs, arch, run.splits),
        "timings": {"search_s": 0.0, "retrain_s": 0.0, **st.timings},
        "architecture": arch.to_dict(),
    }
    if m.temperatures is not None:
        out["temperature_schedule"] = list(m.temperatures)
    if m.recipe:
        rec = recipes.recipe(cfg["method"], cfg["settings"], epochs=cfg["epochs"],
                             input_size=tuple(run.splits.test[0].shape[2:]))
        out["recipe"] = {k: v for k, v in attrs.asdict(rec).items()
                         if k not in ("method", "input_size")}
    if st.shrinks:
        out["shrinks"] = len(st.shrinks)
    if m.after_search == "evolve":
        out["evolution_valid_accuracy"] = st.evolution_best_score
    if m.search == "trials":
        out["trials"] = st.trial_results
    if st.duplicates_skipped is not None:  # networks drawn again and not trained (unique.md)
        out["duplicates_skipped"] = st.duplicates_skipped
    return out


def write_outputs(run: Run) -> None:
    """architecture.json, derived.nas, the pictures and report.json."""
    from nasc.search.pictures import write_pictures

    cfg, st = run.cfg, run.state
    arch = run.architecture()
    resolved = run.rs.resolve(arch)
    run.writer.text("architecture.json", arch.to_json(indent=2) + "\n")
    run.writer.text("derived.nas", resolved.to_nas())
    options = {lab: [f"input {o}" if spec.kind == "input" else str(o) for o in spec.options]
               for lab, spec in run.sp.specs.items()}
    notes = write_pictures(run.writer, st.history, resolved.graph, f"{cfg['space']} derived",
                           options=options, space=run.rs, arch=arch)
    if notes:
        st.report["notes"] = notes
    run.writer.text("report.json", json.dumps(json_safe(st.report), indent=2) + "\n")


__all__ = ["baseline", "build_supernet", "calibration", "report", "retrain", "search_supernet",
           "search_trials", "write_outputs"]
