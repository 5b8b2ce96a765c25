"""``bench/gpu_check.sh``: on a machine without a GPU it runs its CPU rows, skips the GPU rows
with the reason, and writes the table; a failing row makes the exit status 1. The parsers of
the benchmarks' output are checked on lines printed with the benchmarks' own formats."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "bench" / "gpu_check.py")
gpu_check = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gpu_check)


def _table(text: str) -> dict[str, tuple[str, str]]:
    rows = [line.split(" | ") for line in text.splitlines() if line.startswith("| ")]
    return {r[0][2:]: (r[1], r[3].rstrip(" |")) for r in rows[1:]}


def test_without_a_gpu_the_cpu_rows_run_and_the_gpu_rows_say_why_not(tmp_path):
    out = tmp_path / "gpu.md"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHON": sys.executable}
    done = subprocess.run(["bash", str(ROOT / "bench" / "gpu_check.sh"), str(out)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no GPU visible: the GPU checks are skipped" in done.stdout
    rows = _table(out.read_text())
    assert list(rows) == [name for name, _, _ in gpu_check.CHECKS]
    assert rows["environment"][0] == "PASS" and "no GPU visible" in rows["environment"][1]
    status, detail = rows["supernet = naive network (CPU, tiny)"]
    assert status == "PASS" and "losses agree" in detail
    for name, needs_gpu, _ in gpu_check.CHECKS:
        if needs_gpu:
            assert rows[name] == ("SKIP", "no GPU visible (torch.cuda.is_available() is False)")
    assert (tmp_path / "gpu.logs" / "cpu_supernet.log").is_file()


def test_a_failing_row_is_marked_and_fails_the_run(tmp_path, monkeypatch):
    def broken(ctx):
        raise gpu_check.Failed("darts: losses disagree")

    monkeypatch.setattr(gpu_check, "CHECKS", [("environment", False,
                                               gpu_check.check_environment),
                                              ("broken", False, broken)])
    assert gpu_check.main([str(tmp_path / "o.md")]) == 1
    rows = _table((tmp_path / "o.md").read_text())
    assert rows["broken"] == ("**FAIL**", "darts: losses disagree")
    assert rows["environment"][0] == "PASS"
    assert "1 check(s) FAILED" in (tmp_path / "o.md").read_text()


def test_the_usage_error_is_exit_2():
    done = subprocess.run(["bash", str(ROOT / "bench" / "gpu_check.sh")], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2 and "usage" in done.stderr


def test_losses_that_disagree_fail():
    rows = [("darts compiled, triton path", 2.30), ("darts naive (reference.py)", 2.30),
            ("pc-darts compiled, triton path", 2.31), ("pc-darts naive (reference.py)", 2.52)]
    with pytest.raises(gpu_check.Failed, match="pc-darts: losses disagree"):
        gpu_check.agreeing_losses(rows, rtol=1e-3)
    assert "darts 0.0e+00" in gpu_check.agreeing_losses(rows[:2], rtol=1e-3)
    with pytest.raises(gpu_check.Failed):
        gpu_check.agreeing_losses([("darts a", float("nan")), ("darts b", 1.0)], rtol=1.0)


def test_the_kernel_table_is_read_as_bench_kernels_prints_it():
    # the lines exactly as bench/kernels.py formats them
    lines = [f"device: NVIDIA H100 80GB HBM3; peak {3352.0:.0f} GB/s (table); torch 2.11",
             f"device-to-device copy: {2990.4:.0f} GB/s ({0.89:.0%} of peak)", "",
             f"{'kernel (64x16x32x32)':<34}{'pass':<10}{'us':>10}{'GB/s':>10}{'% peak':>9}"
             f"{'% copy':>9}"]
    for name, pass_, t, gbs in (("mixture x7 float32", "forward", 40.2, 2500.0),
                                ("mixture x7 float32", "backward", 80.0, 2100.0),
                                ("partial merge bfloat16", "forward", 20.0, 1200.0)):
        lines.append(f"{name:<34}{pass_:<10}{t:>10.1f}{gbs:>10.0f}{gbs / 3352:>9.0%}"
                     f"{gbs / 2990:>9.0%}")
    lines += ["", f"{'supernet step':<40}{'loss':>9}{'ms':>10}{'peak MB':>10}"]
    for what, loss, s, mb in (("darts compiled, triton path", 2.3456, 0.0412, 1800.0),
                              ("darts compiled, torch path", 2.3456, 0.0630, 2600.0),
                              ("darts naive (reference.py)", 2.3457, 0.0800, 4000.0)):
        lines.append(f"{what:<40}{loss:>9.4f}{s * 1e3:>10.1f}{mb:>10.0f}")
    summary, steps = gpu_check.kernel_summary("\n".join(lines))
    assert summary.startswith("HBM peak 3352 GB/s (table); copy 2990 GB/s; 3 kernel passes at "
                              "36-75% of peak")
    assert "best mixture x7 float32 forward 75%" in summary
    assert steps[0] == ("darts compiled, triton path", 2.3456, pytest.approx(0.0412), 1800.0)
    text = gpu_check.step_summary(steps)
    assert "darts compiled, triton path: 41.2 ms, 1800 MB (0.52x time, 0.45x memory of naive)" \
        in text
    with pytest.raises(gpu_check.Failed, match="no table"):
        gpu_check.kernel_summary("device: cpu (interpreter); peak nan GB/s (none (--check))")
