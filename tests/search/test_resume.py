"""``--resume``: an interrupted run continues to exactly the result of an uninterrupted one.

The first test kills a real ``python -m nasc search`` process with SIGKILL mid-epoch; the
others interrupt an in-process run at a chosen checkpoint of every phase (search, SPOS'
evolution, multi-trial trials, retraining) by failing the next checkpoint write.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import nasc.training
from nasc.search import search
from nasc.training import load_checkpoint

TINY = str(Path(__file__).with_name("tinydata.py")) + ":tiny"
CACHED = str(Path(__file__).with_name("tinydata.py")) + ":cached"
ROOT = Path(__file__).resolve().parents[2]
SMALL = {"C": 4, "N": 1}


def _argv(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "nasc", "search", "nas_bench_201", "--method", "darts",
            "--data", CACHED, "--epochs", "2", "--retrain-epochs", "1", "--batch", "16",
            "-D", "C=4", "-D", "N=1", "-R", "C=4", "-R", "N=1", "--checkpoint-every", "2",
            "--out", str(out), *extra]


def _env(data: Path) -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
            "PYTHONPATH": str(ROOT), "NASC_TINY_DATA": str(data)}


def _same_run(a: Path, b: Path) -> None:
    assert (a / "architecture.json").read_text() == (b / "architecture.json").read_text()
    ra, rb = (json.loads((d / "report.json").read_text()) for d in (a, b))
    for r in (ra, rb):
        r.pop("timings")
    assert ra == rb
    assert (a / "metrics.jsonl").read_text() == (b / "metrics.jsonl").read_text()
    ca, cb = load_checkpoint(a / "checkpoint.pt"), load_checkpoint(b / "checkpoint.pt")
    for key in ("supernet", "model"):
        if key in ca or key in cb:
            assert ca[key].keys() == cb[key].keys()
            for name in ca[key]:
                assert torch.equal(ca[key][name], cb[key][name]), (key, name)


def test_a_killed_search_resumes_to_the_uninterrupted_result(tmp_path):
    import runpy

    save_tiny = runpy.run_path(str(Path(__file__).with_name("tinydata.py")))["save_tiny"]
    full, killed = tmp_path / "full", tmp_path / "killed"
    save_tiny(tmp_path / "tiny.pt")
    env = _env(tmp_path / "tiny.pt")
    subprocess.run(_argv(full), check=True, env=env, cwd=ROOT, capture_output=True,
                   timeout=300)
    proc = subprocess.Popen(_argv(killed), env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while not (killed / "checkpoint.pt").exists():
            assert proc.poll() is None, "the run ended before its first checkpoint"
            assert time.monotonic() < deadline
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not (killed / "report.json").exists(), "killed too late: the run had finished"
    state = load_checkpoint(killed / "checkpoint.pt")["state"]
    assert state["phase"] == "search" and state["epoch"] < 2
    assert not list(killed.glob("*.tmp")) or (killed / "checkpoint.pt").stat().st_size > 0
    out = subprocess.run(_argv(killed, "--resume"), env=env, cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    _same_run(full, killed)


class _Crash(Exception):
    pass


def _interrupt_after(monkeypatch, n: int) -> None:
    """Let ``n`` checkpoints be written, then fail as if the process died at the next one."""
    real = nasc.training.Writer.checkpoint
    count = {"n": 0}

    def checkpoint(self, state, name="checkpoint.pt"):
        if count["n"] >= n:
            raise _Crash
        count["n"] += 1
        real(self, state, name)

    monkeypatch.setattr(nasc.training.Writer, "checkpoint", checkpoint)


@pytest.mark.parametrize(
    ("method", "settings", "crash_at", "phase"),
    [
        ("gdas", {}, 4, "search"),  # mid-epoch, with a temperature schedule and Gumbel noise
        ("darts", {}, 9, "retrain"),  # during retraining
        ("spos", {"spos_population": 4, "spos_generations": 3, "spos_topk": 2}, 7, "evolve"),
        ("evolution", {"trials": 5, "trial_epochs": 1, "population": 3}, 3, "search"),
    ],
)
def test_every_phase_resumes_exactly(tmp_path, monkeypatch, one_thread, method, settings,
                                     crash_at, phase):
    kw = dict(method=method, data=TINY, epochs=2, retrain_epochs=1, batch=16, progress=False,
              space_params=SMALL, retrain_params=SMALL, checkpoint_every=2, **settings)
    search("nas_bench_201", out=tmp_path / "full", **kw)
    with monkeypatch.context() as m:
        _interrupt_after(m, crash_at)
        with pytest.raises(_Crash):
            search("nas_bench_201", out=tmp_path / "cut", **kw)
    assert load_checkpoint(tmp_path / "cut" / "checkpoint.pt")["state"]["phase"] == phase
    result = search("nas_bench_201", out=tmp_path / "cut", resume=True, **kw)
    _same_run(tmp_path / "full", tmp_path / "cut")
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
