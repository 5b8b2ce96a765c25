"""Data sets read from their official files: CIFAR's python pickles (and their download),
ImageNet's folders, Cityscapes' image/label pairs; all written here in exactly those formats."""

from __future__ import annotations

import hashlib
import pickle

import numpy as np
import pytest
import torch
from officialdata import (
    CITY_IDS,
    tar_folder,
    write_cifar10,
    write_cifar100,
    write_cityscapes,
    write_imagenet,
)

from nasc.dsl.diagnostics import NasError
from nasc.search.data import IGNORE, load_data
from nasc.search.datasets import cifar as cifar_mod
from nasc.search.datasets import data_dir
from nasc.search.datasets.augment import CIFAR10_MEAN, CIFAR10_STD, CifarAugment
from nasc.search.datasets.download import Archive


# ---- CIFAR -------------------------------------------------------------------------------------
def test_cifar10_reads_the_official_batches(tmp_path):
    folder = write_cifar10(tmp_path, per_class=2, test_per_class=1)
    s = load_data("cifar10", data_dir=tmp_path)
    assert s.name == "cifar10" and s.classes == 10 and s.in_channels == 3
    assert [len(p[1]) for p in (s.train_a, s.train_b, s.test)] == [50, 50, 10]
    assert s.train_a[0].shape == (50, 3, 32, 32) and s.meta["class_names"][3] == "c3"
    # DARTS' split: the first half of the training images trains the weights, in file order
    first = pickle.loads((folder / "data_batch_1").read_bytes(), encoding="bytes")
    raw = torch.tensor(first[b"data"][7], dtype=torch.float32).view(3, 32, 32) / 255
    mean, std = torch.tensor(CIFAR10_MEAN).view(3, 1, 1), torch.tensor(CIFAR10_STD).view(3, 1, 1)
    assert torch.allclose(s.train_a[0][7], (raw - mean) / std, atol=1e-6)
    assert s.train_a[1][7] == first[b"labels"][7]
    last = pickle.loads((folder / "data_batch_5").read_bytes(), encoding="bytes")
    assert s.train_b[1][-1] == last[b"labels"][-1]
    assert isinstance(s.augment, CifarAugment)


def test_cifar100_uses_the_fine_labels(tmp_path):
    write_cifar100(tmp_path, per_class=2)
    s = load_data("cifar100", data_dir=tmp_path)
    assert s.classes == 100 and len(s.train[1]) == 200 and s.test[1].max() == 99


def test_the_data_dir_defaults_to_nasc_data_then_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NASC_DATA", str(tmp_path))
    assert data_dir() == tmp_path and data_dir(tmp_path / "x") == tmp_path / "x"
    write_cifar10(tmp_path)
    assert load_data("cifar10").classes == 10
    monkeypatch.delenv("NASC_DATA")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data_dir() == tmp_path / "home" / ".cache" / "nasc"


@pytest.mark.parametrize("damage, message", [
    (lambda f: (f / "data_batch_3").unlink(), "lacks data_batch_3"),
    (lambda f: (f / "test_batch").write_bytes(b"not a pickle"), "is not a CIFAR python batch"),
    (lambda f: _rewrite(f / "data_batch_2", data=np.zeros((10, 3071), np.uint8)),
     "must be N x 3072 uint8"),
    (lambda f: _rewrite(f / "data_batch_2", data=np.zeros((10, 3072), np.float32)),
     "must be N x 3072 uint8"),
    (lambda f: _rewrite(f / "data_batch_4", labels=[0] * 9), "has 10 images but 9 labels"),
    (lambda f: _rewrite(f / "data_batch_1", labels=[12] * 10), "holds label 12, outside 0..9"),
    (lambda f: _rewrite(f / "test_batch", drop=b"labels"), "has no b'labels' entry"),
    (lambda f: (f / "batches.meta").write_bytes(pickle.dumps({b"label_names": [b"a"]})),
     "lists 1 class names"),
])
def test_damaged_cifar_files_are_clear_errors(tmp_path, damage, message):
    damage(write_cifar10(tmp_path))
    with pytest.raises(NasError, match=message) as e:
        load_data("cifar10", data_dir=tmp_path)
    assert "\n" not in str(e.value)


def _rewrite(path, *, data=None, labels=None, drop=None):
    d = pickle.loads(path.read_bytes(), encoding="bytes")
    if data is not None:
        d[b"data"] = data
    if labels is not None:
        d[b"labels"] = labels
    if drop is not None:
        del d[drop]
    path.write_bytes(pickle.dumps(d, protocol=2))


class _Evil:
    def __reduce__(self):
        return (print, ("this must not run",))


def test_a_pickle_that_runs_code_is_refused(tmp_path, capsys):
    folder = write_cifar10(tmp_path)
    (folder / "data_batch_1").write_bytes(pickle.dumps({b"data": _Evil()}))
    with pytest.raises(NasError, match="not part of a CIFAR batch"):
        load_data("cifar10", data_dir=tmp_path)
    assert "must not run" not in capsys.readouterr().out


def test_without_a_network_the_error_names_the_path_and_url(tmp_path, monkeypatch):
    url = (tmp_path / "offline" / "cifar-10-python.tar.gz").as_uri()
    monkeypatch.setitem(cifar_mod.ARCHIVES, "cifar10",
                        Archive(title="CIFAR-10", url=url, md5="0" * 32,
                                folder="cifar-10-batches-py"))
    with pytest.raises(NasError) as e:
        load_data("cifar10", data_dir=tmp_path / "d")
    text = str(e.value)
    assert "\n" not in text and url in text and str(tmp_path / "d" / "cifar-10-batches-py") in text
    assert not list((tmp_path / "d").glob("*.part"))


def test_the_official_urls_are_torchvisions():
    a = cifar_mod.ARCHIVES
    assert a["cifar10"].url == "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
    assert a["cifar10"].md5 == "c58f30108f718f92721af3b95e74349a"
    assert a["cifar100"].md5 == "eb9058c3a382ffc7106e4002c42a8d85"


def test_an_archive_is_downloaded_verified_and_extracted(tmp_path, monkeypatch):
    src = write_cifar10(tmp_path / "src")
    tar = tar_folder(src, tmp_path / "cifar-10-python.tar.gz")
    md5 = hashlib.md5(tar.read_bytes()).hexdigest()
    dest = tmp_path / "data"

    def archive(sum_):
        return Archive(title="CIFAR-10", url=tar.as_uri(), md5=sum_, folder="cifar-10-batches-py")

    monkeypatch.setitem(cifar_mod.ARCHIVES, "cifar10", archive("f" * 32))
    with pytest.raises(NasError, match=f"has MD5 {md5}, not the published f{{32}}"):
        load_data("cifar10", data_dir=dest)
    assert not (dest / tar.name).exists() and not list(dest.glob("*.part"))
    monkeypatch.setitem(cifar_mod.ARCHIVES, "cifar10", archive(md5))
    s = load_data("cifar10", data_dir=dest)
    assert (dest / "cifar-10-batches-py" / "batches.meta").is_file() and s.classes == 10
    assert (dest / tar.name).read_bytes() == tar.read_bytes()


# ---- ImageNet ----------------------------------------------------------------------------------
def test_imagenet_folders_stream_with_class_subsets(tmp_path):
    write_imagenet(tmp_path, train=4, val=2)
    s = load_data("imagenet", data_dir=tmp_path, size=16)
    assert s.classes == 3 and s.meta["wnids"][0] == "n01440764"
    assert [len(p[1]) for p in (s.train_a, s.train_b, s.test)] == [6, 6, 6]
    assert s.train_a[0].shape == (6, 3, 16, 16) and s.test[0][[0, 5]].shape == (2, 3, 16, 16)
    # halves per class, disjoint, and every class in both
    a = {p for p, _ in s.train_a[0].files.items}
    b = {p for p, _ in s.train_b[0].files.items}
    assert not a & b and sorted(s.train_a[1].tolist()) == [0, 0, 1, 1, 2, 2]
    sub = load_data("imagenet", data_dir=tmp_path, classes=2, fraction=0.5, size=16)
    assert sub.classes == 2 and len(sub.train[1]) == 4 and len(sub.meta["wnids"]) == 2
    named = load_data("imagenet", data_dir=tmp_path, classes=["n01484850", "n01440764"],
                      size=16)
    assert named.meta["wnids"] == ["n01440764", "n01484850"]


def test_imagenet_training_views_are_augmented_reproducibly(tmp_path):
    write_imagenet(tmp_path, train=2, val=1, size=(50, 30))
    files = load_data("imagenet", data_dir=tmp_path, size=24).train_a[0].files
    x1, y1 = files[(0, 123)]
    x2, _ = files[(0, 123)]
    x3, _ = files[(0, 124)]
    assert x1.shape == (3, 24, 24) and torch.equal(x1, x2) and not torch.equal(x1, x3)
    assert y1.dim() == 0


@pytest.mark.parametrize("setup, message", [
    (lambda r: (r / "imagenet" / "val").rename(r / "imagenet" / "valx"), "no val/"),
    (lambda r: [p.unlink() for p in list((r / "imagenet" / "train" / "n01443537").iterdir())[1:]],
     "n01443537 has 1 image"),
    (lambda r: (r / "imagenet" / "val" / "n99999999").mkdir(), "n99999999 is a class"),
    (lambda r: (r / "imagenet").rename(r / "other"), "no imagenet in"),
])
def test_bad_imagenet_folders_are_clear_errors(tmp_path, setup, message):
    write_imagenet(tmp_path)
    setup(tmp_path)
    with pytest.raises(NasError, match=message):
        load_data("imagenet", data_dir=tmp_path, size=16)


def test_imagenet_options_are_checked(tmp_path):
    write_imagenet(tmp_path)
    for opts, message in (({"classes": 1}, "two at least"), ({"classes": ["nX"]}, "nX"),
                          ({"fraction": 0}, "fraction"), ({"size": 2}, "size"),
                          ({"crop": 3}, "no option 'crop'")):
        with pytest.raises(NasError, match=message):
            load_data("imagenet", data_dir=tmp_path, **opts)
    with pytest.raises(NasError, match="takes no options"):
        load_data("cifar10", data_dir=tmp_path, size=3)
    with pytest.raises(NasError, match="did you mean 'imagenet'"):
        load_data("imagenett")


def test_an_unreadable_image_names_its_file(tmp_path):
    write_imagenet(tmp_path)
    bad = next((tmp_path / "imagenet" / "val" / "n01440764").iterdir())
    bad.write_bytes(b"\xff\xd8 truncated")
    s = load_data("imagenet", data_dir=tmp_path, size=16)
    i = [p for p, _ in s.test[0].files.items].index(bad)
    with pytest.raises(NasError, match=f"cannot read the image {bad}"):
        s.test[0][i]


# ---- Cityscapes --------------------------------------------------------------------------------
def test_cityscapes_maps_label_ids_to_the_19_train_ids(tmp_path):
    write_cityscapes(tmp_path, size=(16, 32))
    s = load_data("cityscapes", data_dir=tmp_path, size=(16, 32))
    assert s.classes == 19 and s.dense and s.in_channels == 3
    assert [len(p[1]) for p in (s.train_a, s.train_b, s.test)] == [1, 2, 2]
    y = s.test[1][0]
    assert y.shape == (16, 32) and y.dtype == torch.long
    from PIL import Image

    path = s.test[1].files.items[0][1]
    ids = torch.from_numpy(np.asarray(Image.open(path)).astype(np.int64))
    expect = {7: 0, 8: 1, 11: 2, 21: 8, 23: 10, 26: 13, 0: IGNORE, 24: 11}
    assert set(np.unique(CITY_IDS).tolist()) == set(expect)
    for k, v in expect.items():
        assert (y[ids == k] == v).all()
    assert s.train_a[0][0].shape == (3, 16, 32)


def test_cityscapes_works_at_a_reduced_size_and_crops_for_training(tmp_path):
    write_cityscapes(tmp_path, size=(16, 32))
    s = load_data("cityscapes", data_dir=tmp_path, size=(8, 16), crop=(8, 8))
    assert s.test[0].shape == (2, 3, 8, 16) and s.test[1].shape == (2, 8, 16)
    files = s.train_b[0].files
    for seed in range(6):
        x, y = files[(0, seed)]
        assert x.shape == (3, 8, 8) and y.shape == (8, 8)
        assert set(y.unique().tolist()) <= {*range(19), IGNORE}


def test_cityscapes_augmentation_keeps_images_and_labels_aligned():
    from nasc.search.datasets.augment import segmentation_train

    y = torch.randint(0, 19, (12, 20), generator=torch.Generator().manual_seed(1))
    x = torch.stack([y.float(), -y.float(), y.float() * 2])
    for seed in range(10):
        xc, yc = segmentation_train(x, y, (9, 14), torch.Generator().manual_seed(seed),
                                    ignore=IGNORE, scale=(1.0, 1.0))
        assert torch.equal(xc[0].long(), yc) and torch.equal(xc[1], -xc[0])
        xp, yp = segmentation_train(x, y, (30, 30), torch.Generator().manual_seed(seed),
                                    ignore=IGNORE, scale=(1.0, 1.0))
        keep = yp != IGNORE
        assert keep.sum() == y.numel() and torch.equal(xp[0][keep].long(), yp[keep])


def test_cityscapes_images_without_labels_are_clear_errors(tmp_path):
    write_cityscapes(tmp_path)
    gt = next((tmp_path / "cityscapes" / "gtFine" / "val").glob("*/*_labelIds.png"))
    gt.unlink()
    with pytest.raises(NasError, match=f"has no labels: expected {gt}"):
        load_data("cityscapes", data_dir=tmp_path)
    with pytest.raises(NasError, match="size"):
        load_data("cityscapes", data_dir=tmp_path, size=(4, "x"))


def test_options_written_into_the_data_name(tmp_path):
    write_imagenet(tmp_path)
    write_cityscapes(tmp_path)
    s = load_data("imagenet,classes=2,fraction=0.5,size=16", data_dir=tmp_path)
    assert s.classes == 2 and s.train_a[0].shape[2:] == (16, 16)
    s = load_data("imagenet,classes=n01440764+n01484850,size=12", data_dir=tmp_path)
    assert s.meta["wnids"] == ["n01440764", "n01484850"]
    s = load_data("cityscapes,size=8x16,crop=8x8", data_dir=tmp_path)
    assert s.test[0].shape[2:] == (8, 16) and s.meta["crop"] == (8, 8)
    for bad in ("imagenet,size", "imagenet,=3", "imagenet,size="):
        with pytest.raises(NasError, match="is not NAME=VALUE"):
            load_data(bad, data_dir=tmp_path)
    with pytest.raises(NasError, match="no class folder 'nX'"):
        load_data("imagenet,classes=nX", data_dir=tmp_path)


def test_an_archive_without_the_folder_is_a_clear_error(tmp_path, monkeypatch):
    other = tmp_path / "src" / "something-else"
    other.mkdir(parents=True)
    (other / "x").write_text("x")
    tar = tar_folder(other, tmp_path / "cifar-10-python.tar.gz")
    md5 = hashlib.md5(tar.read_bytes()).hexdigest()
    monkeypatch.setitem(cifar_mod.ARCHIVES, "cifar10",
                        Archive(title="CIFAR-10", url=tar.as_uri(), md5=md5,
                                folder="cifar-10-batches-py"))
    with pytest.raises(NasError, match="did not hold the folder cifar-10-batches-py/"):
        load_data("cifar10", data_dir=tmp_path / "d")
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == [tar.name]  # no leftovers
