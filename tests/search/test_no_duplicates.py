"""Multi-trial searches never train or score the same network twice (docs/unique.md)."""

from __future__ import annotations

import random
from types import SimpleNamespace

import pytest

import nasc
from nasc.search import multitrial
from nasc.search.strategies import evolve

SPLITS = SimpleNamespace(train_a=(None, list(range(4))))  # what run_trials reads itself

# 2 x 3 = 6 decision assignments, 3 networks: with a = none, b does not matter
SMALL = """
import nas_bench_201
space s(C: int = 4) {
    input x: image(C)
    let a = choose [none[C=C], nor_conv_3x3[C=C]] @"a" (x)
    output x + choose [skip_connect[C=C], avg_pool_3x3[C=C], relu] @"b" (a)
}
"""


@pytest.mark.parametrize("method", ["random", "evolution"])
def test_multi_trial_methods_train_each_network_once(method, monkeypatch):
    space = nasc.parse(SMALL)
    assert space.count() == 6 and space.count(unique=True) == 4
    trained = []

    def fake_training(space, arch, splits, **kw):
        trained.append(space.canonical_hash(arch))
        return random.Random(len(trained)).random()

    monkeypatch.setattr(multitrial, "train_briefly", fake_training)
    found = multitrial.run_trials(method, space, SPLITS, trials=10, epochs=1, batch=2, seed=0,
                                  population=2, sample=2)
    assert len(trained) == len(set(trained)) == len(found["trials"])  # each network once
    if method == "random":
        assert len(trained) == 4  # all four networks, then no new one: the search stops
    else:  # ageing evolution mutates the best member; it may run out of new children sooner
        assert 2 <= len(trained) <= 4
    assert found["duplicates_skipped"] > 0


def test_random_search_reports_no_duplicates_where_none_were_drawn(monkeypatch):
    space = nasc.load("nas_bench_201", N=1)
    monkeypatch.setattr(multitrial, "train_briefly", lambda *a, **kw: 0.5)
    found = multitrial.run_trials("random", space, SPLITS, trials=3, epochs=1, batch=2, seed=0)
    assert found["duplicates_skipped"] == 0 and len(found["trials"]) == 3


def test_spos_evolution_scores_each_network_once():
    space = nasc.parse(SMALL)
    scored = []

    def score(arch):
        scored.append(space.canonical_hash(arch))
        return len(scored)

    found = evolve(space, score, random.Random(0), population=4, generations=4, topk=2)
    assert len(scored) == len(set(scored)) == 4
    assert found["duplicates_skipped"] > 0
    assert found["duplicates_skipped"] == found["state"]["duplicates_skipped"]
