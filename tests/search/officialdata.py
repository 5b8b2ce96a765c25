"""Small data sets written in exactly the official on-disk formats (a few images per class), so
that the code that reads them reads the real archives too."""

from __future__ import annotations

import pickle
import tarfile
from pathlib import Path

import numpy as np

CIFAR10_FILES = [f"data_batch_{i}" for i in range(1, 6)]


def _batch(rng, n: int, classes: int, key: bytes, label: str) -> dict[bytes, object]:
    labels = [i % classes for i in range(n)]
    # each class its own mean colour, so a network can tell them apart
    base = (np.array(labels)[:, None] * 251 % 200).astype(np.int64)
    data = (base + rng.integers(0, 56, size=(n, 3072))).astype(np.uint8)
    d = {b"batch_label": label.encode(), key: labels, b"data": data,
         b"filenames": [f"img_{i}.png".encode() for i in range(n)]}
    if key == b"fine_labels":
        d[b"coarse_labels"] = [c // 5 for c in labels]
    return d


def _dump(path: Path, obj) -> None:
    path.write_bytes(pickle.dumps(obj, protocol=2))


def write_cifar10(root: Path, per_class: int = 1, test_per_class: int = 1, seed: int = 0,
                  classes: int = 10) -> Path:
    """``root/cifar-10-batches-py`` with five training batches of ``per_class`` images per class
    each, a test batch and ``batches.meta``."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(CIFAR10_FILES):
        _dump(folder / name, _batch(rng, per_class * classes, classes, b"labels",
                                    f"training batch {i + 1} of 5"))
    _dump(folder / "test_batch", _batch(rng, test_per_class * classes, classes, b"labels",
                                        "testing batch 1 of 1"))
    _dump(folder / "batches.meta", {b"label_names": [f"c{i}".encode() for i in range(10)],
                                    b"num_cases_per_batch": per_class * classes,
                                    b"num_vis": 3072})
    return folder


def write_cifar100(root: Path, per_class: int = 2, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    _dump(folder / "train", _batch(rng, per_class * 100, 100, b"fine_labels", "training batch"))
    _dump(folder / "test", _batch(rng, 100, 100, b"fine_labels", "testing batch"))
    _dump(folder / "meta", {b"fine_label_names": [f"f{i}".encode() for i in range(100)],
                            b"coarse_label_names": [f"c{i}".encode() for i in range(20)]})
    return folder


def tar_folder(folder: Path, tar: Path) -> Path:
    """``folder`` as a ``.tar.gz`` holding ``folder.name/...`` (the official archives' shape)."""
    with tarfile.open(tar, "w:gz") as t:
        t.add(folder, arcname=folder.name)
    return tar


def write_imagenet(root: Path, wnids=("n01440764", "n01443537", "n01484850"), train: int = 4,
                   val: int = 2, size=(40, 30)) -> Path:
    from PIL import Image

    base = root / "imagenet"
    for split, n in (("train", train), ("val", val)):
        for c, wnid in enumerate(wnids):
            folder = base / split / wnid
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                rgb = np.full((size[1], size[0], 3), 40 + 70 * c, np.uint8)
                rgb[::3, :, i % 3] = 255
                name = f"{wnid}_{i}.JPEG" if split == "train" else f"ILSVRC2012_val_{c}{i:07d}.JPEG"
                Image.fromarray(rgb).save(folder / name, format="JPEG")
    return base


CITY_IDS = np.array([7, 8, 11, 21, 23, 26, 0, 24], np.uint8)  # road .. car, void, person


def write_cityscapes(root: Path, train=("aachen", 3), val=("frankfurt", 2),
                     size=(16, 32)) -> Path:
    from PIL import Image

    base = root / "cityscapes"
    for split, (city, n) in (("train", train), ("val", val)):
        for i in range(n):
            stem = f"{city}_{i:06d}_000019"
            img_dir = base / "leftImg8bit" / split / city
            gt_dir = base / "gtFine" / split / city
            img_dir.mkdir(parents=True, exist_ok=True)
            gt_dir.mkdir(parents=True, exist_ok=True)
            ids = CITY_IDS[(np.arange(size[0])[:, None] // 4 + np.arange(size[1])[None] // 8
                            + i) % len(CITY_IDS)]
            rgb = np.stack([ids * 9, ids * 5, 255 - ids * 7], -1).astype(np.uint8)
            Image.fromarray(rgb).save(img_dir / f"{stem}_leftImg8bit.png")
            Image.fromarray(ids).save(gt_dir / f"{stem}_gtFine_labelIds.png")
            # the other gtFine files of the official layout, which are not read
            Image.fromarray(ids).save(gt_dir / f"{stem}_gtFine_instanceIds.png")
            (gt_dir / f"{stem}_gtFine_polygons.json").write_text("{}")
    return base

