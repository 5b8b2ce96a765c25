"""``resume=True`` in every phase: an in-process run is interrupted at a chosen checkpoint
(search mid-epoch, SPOS' evolution, multi-trial trials, retraining) by failing the next
checkpoint write, as if the process had died there, and resumed to the uninterrupted result."""

from __future__ import annotations

from pathlib import Path

import pytest

import nasc.search.training
from nasc.search.run import search
from nasc.search.training import load_checkpoint

TINY = str(Path(__file__).with_name("tinydata.py")) + ":tiny"
SMALL = {"C": 4, "N": 1}


class _Crash(Exception):
    pass


def _interrupt_after(monkeypatch, n: int) -> None:
    """Let ``n`` checkpoints be written, then fail as if the process died at the next one."""
    real = nasc.search.training.Writer.checkpoint
    count = {"n": 0}

    def checkpoint(self, state, name="checkpoint.pt"):
        if count["n"] >= n:
            raise _Crash
        count["n"] += 1
        real(self, state, name)

    monkeypatch.setattr(nasc.search.training.Writer, "checkpoint", checkpoint)


@pytest.mark.parametrize(
    ("method", "settings", "crash_at", "phase"),
    [
        ("gdas", {}, 4, "search"),  # mid-epoch, with a temperature schedule and Gumbel noise
        ("darts", {}, 9, "retrain"),  # during retraining
        ("spos", {"spos_population": 4, "spos_generations": 3, "spos_topk": 2}, 7, "evolve"),
        ("evolution", {"trials": 5, "trial_epochs": 1, "population": 3}, 3, "search"),
    ],
)
def test_every_phase_resumes_exactly(tmp_path, monkeypatch, one_thread, same_run, method,
                                     settings, crash_at, phase):
    kw = dict(method=method, data=TINY, epochs=2, retrain_epochs=1, batch=16, progress=False,
              space_params=SMALL, retrain_params=SMALL, checkpoint_every=2, **settings)
    search("nas_bench_201", out=tmp_path / "full", **kw)
    with monkeypatch.context() as m:
        _interrupt_after(m, crash_at)
        with pytest.raises(_Crash):
            search("nas_bench_201", out=tmp_path / "cut", **kw)
    assert load_checkpoint(tmp_path / "cut" / "checkpoint.pt")["state"]["phase"] == phase
    result = search("nas_bench_201", out=tmp_path / "cut", resume=True, **kw)
    same_run(tmp_path / "full", tmp_path / "cut")
    assert result.report["method"] == method


def test_resume_refuses_other_settings(tmp_path, monkeypatch, one_thread):
    from nasc.dsl.diagnostics import NasError

    kw = dict(data=TINY, epochs=1, retrain_epochs=1, batch=16, progress=False,
              space_params=SMALL, retrain_params=SMALL)
    with monkeypatch.context() as m:  # one checkpoint is enough
        _interrupt_after(m, 1)
        with pytest.raises(_Crash):
            search("nas_bench_201", out=tmp_path / "r", checkpoint_every=2, **kw)
    with pytest.raises(NasError, match="other settings"):
        search("nas_bench_201", out=tmp_path / "r", resume=True, **{**kw, "epochs": 2})
    with pytest.raises(NasError, match="nothing to resume"):
        search("nas_bench_201", out=tmp_path / "none", resume=True, **kw)
