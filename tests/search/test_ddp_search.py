"""``torchrun --nproc_per_node 2 -m nasc search ...``: the distributed search end to end on the
CPU (gloo), on a tiny NAS-Bench-201 supernet for one epoch."""

import json
import os
import subprocess
import sys

import torch

import nasc
from nasc.search.run import build_supernet, search_space
from nasc.search.training import load_checkpoint


def test_torchrun_runs_the_distributed_search(tmp_path):
    run = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "nasc", "search", "nas_bench_201", "--method", "darts", "--data", "digits",
           "--epochs", "1", "--retrain-epochs", "1", "-D", "C=4", "-D", "N=1",
           "--out", str(run)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    assert proc.stdout.count("test accuracy") == 1  # rank 0 reports, alone
    for name in ("architecture.json", "derived.nas", "report.json", "metrics.jsonl",
                 "checkpoint.pt", "derived.dot"):
        assert (run / name).is_file(), name
    assert not list(run.glob("*.tmp"))
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["phase"] for r in rows] == ["search", "retrain"]  # one writer, not two
    # the architecture written is the one the checkpointed supernet derives
    ckpt = load_checkpoint(run / "checkpoint.pt")
    net = build_supernet(ckpt["config"], search_space(ckpt["config"]))
    net.load_state_dict(ckpt["supernet"])
    arch = nasc.Architecture.load(run / "architecture.json")
    assert dict(search_space(ckpt["config"]).canonical(net.derive())) == dict(arch)
    assert all(torch.isfinite(a).all() for a in net.arch_parameters())
