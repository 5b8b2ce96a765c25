"""Under ``torchrun`` the processes share the evaluations that need no gradient exchange:
multi-trial candidates and SPOS' sub-architecture scores are split across ranks (each computed
once, every rank receives all); ``nasc train`` trains one network data-parallel."""

import json

import pytest
import torch
from test_ddp import HERE, torchrun
from tinydata import tiny

from nasc.search.run import search

pytestmark = pytest.mark.usefixtures("one_thread_module")


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp_trials")
    torchrun(2, str(HERE / "ddp_trials_worker.py"), str(out), timeout=600)
    return out


def _seen(out, kind):
    return [json.loads((out / f"{kind}_rank{r}.json").read_text()) for r in (0, 1)]


def test_random_search_trials_split_across_ranks_give_one_process_result(ranks):
    r0, r1 = _seen(ranks, "random")
    assert r0["report"]["trials"] == r1["report"]["trials"]
    assert r0["architecture"] == r1["architecture"]
    assert r0["report"]["processes"] == 2
    # each trial trains from scratch on the whole trainA: the same numbers as one process
    from ddp_trials_worker import RANDOM, SMALL

    one = search("nas_bench_201", data=tiny(), epochs=1, retrain_epochs=1, batch=16,
                 space_params=SMALL, retrain_params=SMALL, progress=False, **RANDOM)
    assert [t["architecture"] for t in one.report["trials"]] == [
        t["architecture"] for t in r0["report"]["trials"]]
    torch.testing.assert_close([t["score"] for t in one.report["trials"]],
                               [t["score"] for t in r0["report"]["trials"]])
    assert dict(one.architecture) == r0["architecture"]


def test_spos_scores_each_sub_architecture_once_across_ranks(ranks):
    r0, r1 = _seen(ranks, "spos")
    assert r0["architecture"] == r1["architecture"]
    assert r0["report"]["evolution_valid_accuracy"] == r1["report"]["evolution_valid_accuracy"]
    mine, theirs = set(r0["fixed"]), set(r1["fixed"])
    assert mine and theirs and not mine & theirs  # split, not repeated
    assert abs(len(r0["fixed"]) - len(r1["fixed"])) <= 2  # 4 + 4 minus repeats, in halves


def test_nasc_train_runs_data_parallel_and_rank_0_writes(ranks):
    r0, r1 = _seen(ranks, "train")
    assert r0["processes"] == r1["processes"] == 2
    assert r0["test_accuracy"] == r1["test_accuracy"]  # one network: BN statistics averaged
    assert 0.0 <= r0["test_accuracy"] <= 1.0
    written = json.loads((ranks / "train" / "report.json").read_text())
    assert written["test_accuracy"] == r0["test_accuracy"]
