"""The method records (nasc.methods): one place that knows a method, read by ``nasc.compile``
and the search loop; and the README's flow for every method's supernet."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest
import torch

import nasc
from nasc import methods
from nasc.build import _OPTIONS
from nasc.search import recipes

TINY = str(Path(__file__).with_name("tinydata.py")) + ":tiny"

_HRNAS = {"widths": [[4]], "blocks": [[1]], "stem": [4, 4], "head": [8], "last": 8,
          "classes": 3, "r": 1, "tokens": 2}
#: each supernet method on its stdlib space, at a small configuration (input size)
SPACES = {
    "darts": ("darts", {"C": 4, "layers": 3, "steps": 2, "multiplier": 2}, 8),
    "pc-darts": ("darts", {"C": 8, "layers": 3, "steps": 2, "multiplier": 2}, 8),
    "gdas": ("darts", {"C": 4, "layers": 3, "steps": 2, "multiplier": 2}, 8),
    "snas": ("darts", {"C": 4, "layers": 3, "steps": 2, "multiplier": 2}, 8),
    "spos": ("nas_bench_201", {"C": 4, "N": 1}, 8),
    "proxyless": ("proxylessnas", {"stem": 8, "first": 8, "last": 16, "classes": 3,
                                   "stages": [[8, 1, 2]]}, 16),
    "densenas": ("densenas", {"stem": 8, "widths": [8, 8, 16, 16], "strides": [1, 1, 2, 2],
                              "stages": [0, 1, 2, 2], "layers": [0, 1, 1, 0], "last": 16,
                              "m": 2, "classes": 3}, 8),
    "dcnas": ("dcnas", {"L": 2, "F": 4, "classes": 3}, 32),
    "hrnas": ("hrnas", _HRNAS, 32),
}


def test_every_supernet_method_has_a_space_in_this_test():
    assert set(SPACES) == set(methods.names(supernet=True))


def test_nasc_methods_is_the_records_compile_recipes():
    assert nasc.METHODS == {m.name: dict(m.compile) for m in methods.REGISTRY if m.supernet}
    assert set(nasc.METHODS) >= {"darts", "pc-darts", "gdas", "snas", "spos", "proxyless",
                                 "densenas", "dcnas", "hrnas"}
    nasc.METHODS["darts"]["zero"] = False  # a copy: the record does not change
    assert methods.get("darts").compile["zero"] is True
    nasc.METHODS["darts"]["zero"] = True


@pytest.mark.parametrize("m", methods.REGISTRY, ids=lambda m: m.name)
def test_every_record_is_consistent(m):
    assert set(m.compile or {}) <= _OPTIONS  # every compile option is one nasc.compile takes
    assert set(m.recipe) <= set(recipes.SETTINGS)  # every recipe setting is declared
    if m.temperatures is not None:
        assert m.compile["weighting"] == "gumbel"
    if m.arch_step == "two_path":
        assert m.compile.get("sampling") and m.cost in ("proxyless", "densenas")
    assert m.supernet == (m.search == "supernet")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        m.name = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        m.recipe["cost_weight"] = 1.0  # type: ignore[index]


def test_an_unknown_method_is_a_clear_error():
    with pytest.raises(nasc.NasError, match="unknown method 'darts2'; known: .*pc-darts"):
        nasc.compile(nasc.load("nas_bench_201", C=4, N=1), method="darts2")
    with pytest.raises(nasc.NasError, match="unknown method 'random'"):  # no supernet
        nasc.compile(nasc.load("nas_bench_201", C=4, N=1), method="random")


@pytest.mark.parametrize("method", sorted(SPACES))
def test_the_readme_flow_works_for_every_method(method):
    """``arch = space.canonical(net.derive())``; ``nasc.instantiate(space, arch, weights=net)``
    computes what the supernet computes on that architecture (issue 12, defect 5)."""
    name, params, size = SPACES[method]
    torch.manual_seed(0)
    space = nasc.load(name, **params)
    net = nasc.compile(space, method=method)
    arch = space.canonical(net.derive())
    assert set(arch) and set(arch) <= set(space.specs)
    model = nasc.instantiate(space, arch, weights=net)
    x = torch.randn(2, 3, size, size)
    net.fix(arch)
    net.eval(), model.eval()
    with torch.no_grad():
        a, b = net(x), model(x)
    a, b = (a[-1], b[-1]) if isinstance(a, (tuple, list)) else (a, b)
    torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)


def test_hrnas_derives_the_threshold_pruned_widths():
    """HR-NAS eq. 7: a unit whose importance factor is at most eps is pruned; ``derive()``
    gives the kept counts, and the network built from them inherits the kept weights."""
    from nasc.search import hrnas

    space = nasc.load("hrnas", **_HRNAS)
    net = nasc.compile(space, method="hrnas")
    full = net.derive()
    with torch.no_grad():
        factors = hrnas.importance_factors(net)
        factors["par0.0.0.c3"][1] = 0.0
        factors["fuse0.0.0.c5"][:] = 1e-4  # all at or below eps = 1e-3
        factors["par0.0.0.n"][0] = 0.0
    arch = net.derive()
    assert arch == {**full, "par0.0.0.c3": full["par0.0.0.c3"] - 1, "fuse0.0.0.c5": 0,
                    "par0.0.0.n": full["par0.0.0.n"] - 1}
    assert arch == hrnas.derive(net)
    model = nasc.instantiate(space, space.canonical(arch), weights=net)
    x = torch.randn(2, 3, 32, 32)
    net.eval(), model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(x), net(x), rtol=1e-4, atol=1e-5)
    small = hrnas.shrink(net)  # a shrunk supernet derives the same, removed labels included
    assert small.derive() == arch


def test_a_new_method_is_one_record(monkeypatch, tmp_path, one_thread):
    """An FBNet-like method (Gumbel-softmax over candidates with a latency term, annealed
    temperature) needs a record and nothing else: compile and the search loop read it."""
    fbnet = methods.Method(name="fbnet-like", paper="(a test)",
                           compile={"weighting": "gumbel", "hard": False, "tau": 5.0,
                                    "zero": False, "edge_weights": "inputs"},
                           temperatures=(5.0, 0.5, "exponential"))
    monkeypatch.setattr(methods, "_BY_NAME", {**methods._BY_NAME, fbnet.name: fbnet})
    monkeypatch.setattr(methods, "REGISTRY", (*methods.REGISTRY, fbnet))
    from nasc.search.run import search

    net = nasc.compile(nasc.load("nas_bench_201", C=4, N=1), method="fbnet-like")
    assert net.affine and net.method == "fbnet-like"  # not a DARTS-family search network
    result = search("nas_bench_201", method="fbnet-like", data=TINY, epochs=2, retrain_epochs=1,
                    batch=32, progress=False, space_params={"C": 4, "N": 1},
                    retrain_params={"C": 4, "N": 1})
    assert result.report["temperature_schedule"] == [5.0, 0.5, "exponential"]
    assert set(result.architecture) == set(nasc.load("nas_bench_201", C=4, N=1).specs)
