"""pytest-benchmark suite: ``python -m pytest bench --benchmark-enable``.

Timings are for tracking over time on one machine; the ratios that matter (compiled against a
hand-written network, in one run) come from ``bench/darts_step.py``.
"""

import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import nasc

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "backends"))


def test_load_darts(benchmark):
    benchmark(lambda: nasc.load("darts"))


def test_count_darts(benchmark):
    space = nasc.load("darts")
    assert benchmark(space.count) == (180 * 7**8) ** 2


def test_compile_darts(benchmark):
    space = nasc.load("darts", C=16, layers=8)
    benchmark(lambda: nasc.compile(space, method="darts"))


@pytest.mark.parametrize("method", ["darts", "pc-darts"])
def test_supernet_step(benchmark, method):
    net = nasc.compile(nasc.load("darts", C=8, layers=5), method=method)
    x, y = torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,))

    def step():
        F.cross_entropy(net(x), y).backward()

    benchmark(step)


def test_naive_reference_step(benchmark):
    from reference import SearchNetwork

    ref = SearchNetwork(8, 10, 5)
    x, y = torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,))
    benchmark(lambda: F.cross_entropy(ref(x), y).backward())
