"""A search run's state: where it is and what it has found, typed, and its serialisation.

The state is what a checkpoint's ``"state"`` entry holds (:meth:`RunState.to_dict`, plain
Python values only, so that it can be read back without running code); the modules' tensors
(supernet, optimisers, the retrained network) sit beside it in the checkpoint, written by the
phase that owns them. :meth:`RunState.from_dict` reads it back.
"""

from __future__ import annotations

import math
import time
from typing import Any

import attrs

#: the phases of a run, in order ("evolve": SPOS' evolution after the supernet's training)
PHASES = ("search", "evolve", "retrain", "done")


@attrs.define(kw_only=True)
class RetrainState:
    """Where retraining is: epoch, batch, the epoch's losses so far, the rows written, and the
    optimiser's and scheduler's state at the last checkpoint."""

    epoch: int = 0
    batch: int = 0
    losses: list[float] = attrs.Factory(list)
    rows: list[dict[str, Any]] = attrs.Factory(list)
    opt: dict[str, Any] | None = None
    sched: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {"epoch": self.epoch, "batch": self.batch, "losses": list(self.losses),
               "rows": list(self.rows)}
        if self.opt is not None:
            out.update(opt=self.opt, sched=self.sched)
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RetrainState:
        return cls(epoch=d["epoch"], batch=d["batch"], losses=list(d["losses"]),
                   rows=list(d["rows"]), opt=d.get("opt"), sched=d.get("sched"))


@attrs.define(kw_only=True)
class RunState:
    """A search run's progress and results (see :data:`PHASES`)."""

    phase: str = attrs.field(default="search", validator=attrs.validators.in_(PHASES))
    #: the search phase's position: epoch, batch within it, global step, the epoch's losses
    epoch: int = 0
    batch: int = 0
    step: int = 0
    losses: list[float] = attrs.Factory(list)
    #: one row per search epoch (also written to metrics.jsonl)
    history: list[dict[str, Any]] = attrs.Factory(list)
    #: seconds per phase, accumulated across interruptions
    timings: dict[str, float] = attrs.Factory(dict)
    #: SPOS' evolution state (nasc.search.strategies.evolve) and its best score
    evolution: dict[str, Any] | None = None
    evolution_best_score: float | None = None
    #: the multi-trial state (nasc.search.multitrial.run_trials) and its trials' results
    trials: dict[str, Any] | None = None
    trial_results: list[dict[str, Any]] | None = None
    #: networks drawn again by a multi-trial or evolutionary search and not trained or scored
    #: twice (docs/unique.md)
    duplicates_skipped: int | None = None
    #: HR-NAS: the kept unit counts of each shrink so far (to rebuild the shrunk supernet)
    shrinks: list[dict[str, int]] = attrs.Factory(list)
    #: the searched architecture (JSON), once found
    arch: str | None = None
    retrain: RetrainState = attrs.Factory(RetrainState)
    report: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        out = attrs.asdict(self, recurse=False)
        out["retrain"] = self.retrain.to_dict()
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunState:
        fields = {f.name for f in attrs.fields(cls)}
        known = {k: v for k, v in d.items() if k in fields}
        known["retrain"] = RetrainState.from_dict(d["retrain"])
        return cls(**known)


class Clock:
    """Seconds per phase, accumulated into ``timings`` across interruptions."""

    def __init__(self, timings: dict[str, float]) -> None:
        self.timings = timings
        self.last = time.perf_counter()

    def tick(self, key: str) -> None:
        now = time.perf_counter()
        self.timings[key] = self.timings.get(key, 0.0) + now - self.last
        self.last = now


def progress_bar(enabled: bool):
    """The run's progress bars (rich), shown only when ``enabled``."""
    from rich.progress import (
        BarColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(TextColumn("{task.description}"), BarColumn(),
                    TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                    TextColumn("eta"), TimeRemainingColumn(), disable=not enabled)


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float replaced by ``None``: metrics.jsonl and report.json
    are JSON, which has no NaN or infinity."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


__all__ = ["PHASES", "Clock", "RetrainState", "RunState", "json_safe", "progress_bar"]
