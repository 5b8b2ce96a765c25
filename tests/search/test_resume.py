"""``--resume``: an interrupted run continues to exactly the result of an uninterrupted one.

A real ``python -m nasc search`` process is killed with SIGKILL mid-epoch and resumed
(``test_resume_phases.py`` interrupts every other phase in process).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from nasc.search.training import load_checkpoint

TINY = str(Path(__file__).with_name("tinydata.py")) + ":tiny"
CACHED = str(Path(__file__).with_name("tinydata.py")) + ":cached"
ROOT = Path(__file__).resolve().parents[2]


def _argv(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "nasc", "search", "nas_bench_201", "--method", "darts",
            "--data", CACHED, "--epochs", "2", "--retrain-epochs", "1", "--batch", "16",
            "-D", "C=4", "-D", "N=1", "-R", "C=4", "-R", "N=1", "--checkpoint-every", "2",
            "--out", str(out), *extra]


def _env(data: Path) -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
            "PYTHONPATH": str(ROOT), "NASC_TINY_DATA": str(data)}


def test_a_killed_search_resumes_to_the_uninterrupted_result(tmp_path, same_run):
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
    same_run(full, killed)
