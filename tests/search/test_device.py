"""``--device``: the data, the supernet, every phase of a search and ``nasc train`` run on the
device asked for. Without a GPU, placement is checked with a foreign default device (see
``foreign_default_device`` in conftest.py): a tensor made without naming its device would be
a meta tensor and fail the run. The recipes' own end-to-end test runs that way too."""

import pytest
import torch
from nasc.dsl.diagnostics import NasError
from tinydata import tiny

import nasc
from nasc.search.run import search, train_architecture

pytestmark = pytest.mark.usefixtures("one_thread_module")
SMALL = {"C": 4, "N": 1}
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


DATA = tiny()  # (made on the CPU, outside any foreign default device)


def _run(method, tmp_path=None, device="cpu", **settings):
    return search("nas_bench_201", method=method, data=DATA, epochs=1, retrain_epochs=1,
                  batch=16, space_params=SMALL, retrain_params=SMALL, progress=False,
                  device=device, out=tmp_path, **settings)


@pytest.mark.parametrize("method, settings", [
    ("darts", {"order": 2, "compare_random": True}),  # + the random-search baseline
    ("pc-darts", {}),
    ("gdas", {}),
    ("spos", {"spos_population": 4, "spos_generations": 2, "spos_topk": 2}),
    ("evolution", {"trials": 3, "trial_epochs": 1, "population": 2}),
])  # fmt: skip
def test_every_tensor_of_a_search_is_on_the_run_device(method, settings, tmp_path,
                                                       foreign_default_device):
    with foreign_default_device():
        result = _run(method, tmp_path / "run", **settings)
    report = result.report
    assert report["device"] == "cpu" and report["processes"] == 1
    assert 0.0 <= report["test_accuracy"] <= 1.0
    if method == "darts":
        assert 0.0 <= report["random_search_baseline"]["test_accuracy"] <= 1.0
    # and the run is the run it is on the default device
    again = _run(method, **settings)
    assert dict(again.architecture) == dict(result.architecture)
    assert again.report["test_accuracy"] == report["test_accuracy"]


def test_nasc_train_on_a_device(tmp_path, foreign_default_device):
    arch = nasc.load("nas_bench_201", **SMALL).sample(0)
    arch = nasc.Architecture(dict(arch), space="nas_bench_201", params=SMALL)
    with foreign_default_device():
        report = train_architecture(arch, data=DATA, epochs=1, batch=16, progress=False,
                                    out=tmp_path, device="cpu")
    assert report["device"] == "cpu" and 0.0 <= report["test_accuracy"] <= 1.0


def test_instantiate_builds_on_the_device_asked_for():
    space = nasc.load("nas_bench_201", **SMALL)
    net = nasc.instantiate(space, space.sample(0), device="meta")
    assert all(p.is_meta for p in net.parameters())


def test_an_unknown_or_missing_device_is_a_clear_error(capsys):
    from nasc.cli import main

    with pytest.raises(NasError, match="unknown device 'gpu'"):
        _run("darts", device="gpu")
    if not torch.cuda.is_available():
        with pytest.raises(NasError, match="no GPU is visible"):
            _run("darts", device="cuda")
        assert main(["search", "nas_bench_201", "--device", "cuda", "--epochs", "1"]) != 0
        err = capsys.readouterr().err
        assert "no GPU is visible" in err and "Traceback" not in err


@cuda
def test_a_search_runs_on_the_gpu(tmp_path):
    result = _run("darts", tmp_path / "run", device="cuda")
    assert result.report["device"] == "cuda:0"
    assert 0.0 <= result.report["test_accuracy"] <= 1.0
    assert nasc.load(str(tmp_path / "run" / "derived.nas")).count() == 1
