"""``nasc search`` run directories, ``nasc derive RUN``, ``nasc train ARCH`` and the pictures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import nasc
import nasc.search.pictures
from nasc.cli import main
from nasc.search.training import accuracy, loss_fn

TINY = str(Path(__file__).with_name("tinydata.py")) + ":tiny"
ARGS = ["--data", TINY, "--epochs", "2", "--retrain-epochs", "1", "--batch", "16",
        "-D", "C=4", "-D", "N=1", "-R", "C=4", "-R", "N=1"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("runs") / "run"
    try:
        assert main(["search", "nas_bench_201", "--method", "darts", *ARGS, "--out",
                     str(out)]) == 0
    finally:
        torch.set_num_threads(before)
    return out


def test_a_run_directory_holds_everything(run_dir):
    names = {p.name for p in run_dir.iterdir()}
    assert {"architecture.json", "derived.nas", "report.json", "metrics.jsonl",
            "checkpoint.pt", "derived.dot", "derived.png", "alpha.png"} <= names
    assert not [n for n in names if n.endswith(".tmp")]
    assert (run_dir / "alpha.png").read_bytes()[:4] == b"\x89PNG"
    assert (run_dir / "derived.png").read_bytes()[:4] == b"\x89PNG"
    assert (run_dir / "derived.dot").read_text().startswith("digraph")


def test_derive_rederives_from_the_checkpoint(run_dir, capsys):
    saved = (run_dir / "architecture.json").read_text()
    (run_dir / "architecture.json").unlink()
    (run_dir / "derived.nas").unlink()
    assert main(["derive", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert (run_dir / "architecture.json").read_text() == saved
    assert json.loads(out) == json.loads(saved)
    assert nasc.load(str(run_dir / "derived.nas")).count() == 1


def test_derive_needs_a_run_directory(tmp_path, capsys):
    assert main(["derive", str(tmp_path)]) == 1
    assert "no checkpoint.pt" in capsys.readouterr().err


def test_train_an_architecture_from_a_run_or_a_file(run_dir, tmp_path, capsys, one_thread):
    report = json.loads((run_dir / "report.json").read_text())
    assert main(["train", str(run_dir), "--data", TINY, "--epochs", "1", "--batch", "16",
                 "--out", str(tmp_path / "t")]) == 0
    out = capsys.readouterr().out
    trained = json.loads((tmp_path / "t" / "report.json").read_text())
    # the same architecture, seed and budget as the run's retraining: the same network
    assert trained["test_accuracy"] == report["test_accuracy"]
    assert trained["parameters"] == report["parameters"]
    assert f"test accuracy {trained['test_accuracy']:.4f}" in out
    assert main(["train", str(run_dir / "architecture.json"), "--data", TINY, "--epochs", "1",
                 "--batch", "16"]) == 0
    assert main(["train", str(tmp_path / "missing.json"), "--data", TINY]) == 1


def test_pictures_without_matplotlib_are_skipped_with_a_note(run_dir, tmp_path, monkeypatch):
    from nasc.ir.dot import to_dot  # noqa: F401 - the DOT picture needs nothing

    from nasc.search.pictures import write_pictures
    from nasc.search.training import Writer

    monkeypatch.setattr(nasc.search.pictures, "have_matplotlib", lambda: False)
    monkeypatch.setattr(nasc.search.pictures.shutil, "which", lambda name: None)
    space = nasc.load(str(run_dir / "derived.nas"))
    notes = write_pictures(Writer(tmp_path), [], space.graph, "t")
    assert (tmp_path / "derived.dot").is_file()
    assert not (tmp_path / "alpha.png").exists() and not (tmp_path / "derived.png").exists()
    assert any("matplotlib" in n for n in notes)


def test_dense_labels_use_upsampled_logits():
    """Segmentation: logits at a lower resolution are resized (bilinear) to the labels' size."""
    y = torch.zeros(2, 8, 8, dtype=torch.long)
    y[1] = 1
    logits = torch.zeros(2, 2, 2, 2)
    logits[0, 0] = 5.0
    logits[1, 1] = 5.0
    model = torch.nn.Identity()
    assert accuracy(model, logits, y) == 1.0
    y[1, :4] = 0  # the top half of image 1 is now wrong: 32 of 128 pixels
    assert accuracy(model, logits, y) == 0.75
    assert loss_fn(logits, y).item() > loss_fn(logits, torch.stack([y[0], y[0] + 1])).item()
