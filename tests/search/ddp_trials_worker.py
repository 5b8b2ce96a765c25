"""One rank of the distributed multi-trial, SPOS-evolution and ``nasc train`` tests: run by
``tests/search/test_ddp_trials.py`` under ``torchrun --nproc_per_node 2`` (gloo, CPU).
Usage: ``ddp_trials_worker.py OUT``; writes ``OUT/{random,spos,train}`` (rank 0's run
directories) and ``OUT/RUN_rankR.json`` (what each rank saw)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from nasc.backends.torch.supernet import Supernet
from tinydata import tiny

from nasc.search import distributed
from nasc.search.run import search, train_architecture

SMALL = {"C": 4, "N": 1}
RANDOM = {"method": "random", "trials": 3, "trial_epochs": 1}
SPOS = {"method": "spos", "spos_population": 4, "spos_generations": 2, "spos_topk": 2}


def run(kind: str, out: Path) -> dict:
    common = {"data": tiny(), "epochs": 1, "retrain_epochs": 1, "batch": 16,
              "space_params": SMALL, "retrain_params": SMALL, "progress": False}
    return search("nas_bench_201", out=out / kind, **common, **(RANDOM if kind == "random"
                                                                  else SPOS))


def main(out: Path) -> None:
    rank = distributed.launched_rank()
    fixed: list[str] = []  # the sub-architectures this rank scored (SPOS: fix, then score)
    real_fix = Supernet.fix

    def counting_fix(self, arch):
        fixed.append(json.dumps(dict(arch), sort_keys=True))
        return real_fix(self, arch)

    Supernet.fix = counting_fix
    # several runs in one process: the first makes the process group, the others use it
    for kind in ("random", "spos"):
        fixed.clear()
        r = run(kind, out)
        seen = {"report": r.report, "architecture": dict(r.architecture), "fixed": list(fixed)}
        (out / f"{kind}_rank{rank}.json").write_text(json.dumps(seen, default=str))
    report = train_architecture(out / "random", data=tiny(), epochs=1, batch=16,
                                out=out / "train", progress=False)
    (out / f"train_rank{rank}.json").write_text(json.dumps(report, default=str))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
