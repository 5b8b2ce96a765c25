"""``nasc search`` and ``nasc train`` end to end on a CIFAR-10 directory in the official format
(tiny: a few images, one epoch, a small network)."""

from __future__ import annotations

import json

from officialdata import write_cifar10

from nasc.cli import main


def test_search_and_train_on_cifar10_files(tmp_path, one_thread, capsys):
    data = tmp_path / "data"
    write_cifar10(data, per_class=1, test_per_class=1, classes=2)  # 2 of the 10 classes used
    out = tmp_path / "run"
    args = ["search", "darts", "--method", "darts", "--data", "cifar10", "--data-dir", str(data),
            "--epochs", "1", "--retrain-epochs", "1", "--batch", "8", "-D", "C=4",
            "-D", "layers=3", "-R", "C=4", "-R", "layers=3", "--out", str(out)]
    assert main(args) == 0, capsys.readouterr().err
    report = json.loads((out / "report.json").read_text())
    assert report["data"] == "cifar10" and 0 <= report["test_accuracy"] <= 1
    assert report["flops"] > 0  # costed at 32 x 32
    trained = tmp_path / "trained"
    assert main(["train", str(out), "--data", "cifar10", "--data-dir", str(data), "--epochs", "1",
                 "--batch", "8", "-D", "C=4", "-D", "layers=3", "--out", str(trained)]) == 0
    assert json.loads((trained / "report.json").read_text())["data"] == "cifar10"


def test_search_on_imagenet_folders(tmp_path, one_thread, capsys):
    from officialdata import write_imagenet

    write_imagenet(tmp_path / "data", train=2, val=1)
    out = tmp_path / "run"
    args = ["search", "darts", "--method", "darts", "--data", "imagenet,size=16",
            "--data-dir", str(tmp_path / "data"), "--epochs", "1", "--retrain-epochs", "1",
            "--batch", "4", "-D", "C=4", "-D", "layers=3", "-R", "C=4", "-R", "layers=3",
            "--out", str(out)]
    assert main(args) == 0, capsys.readouterr().err
    report = json.loads((out / "report.json").read_text())
    assert report["data"] == "imagenet" and 0 <= report["test_accuracy"] <= 1


def test_search_on_cityscapes_files(tmp_path, one_thread, capsys):
    from officialdata import write_cityscapes

    write_cityscapes(tmp_path / "data", train=("aachen", 4), val=("frankfurt", 1),
                     size=(32, 64))
    out = tmp_path / "run"
    args = ["search", "dcnas", "--method", "dcnas", "--data", "cityscapes,size=32x64,crop=32x32",
            "--data-dir", str(tmp_path / "data"), "--epochs", "1", "--retrain-epochs", "1",
            "--batch", "2", "-D", "L=2", "-D", "F=8", "-R", "L=2", "-R", "F=8",
            "--out", str(out)]
    assert main(args) == 0, capsys.readouterr().err
    report = json.loads((out / "report.json").read_text())
    assert report["data"] == "cityscapes" and 0 <= report["mean_iou"] <= 1
