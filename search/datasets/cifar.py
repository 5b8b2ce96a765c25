"""CIFAR-10 and CIFAR-100 from the official python archives (Krizhevsky 2009).

``cifar-10-python.tar.gz`` extracts to ``cifar-10-batches-py/`` with ``data_batch_1`` ..
``data_batch_5`` (training), ``test_batch`` and ``batches.meta``; ``cifar-100-python.tar.gz``
to ``cifar-100-python/`` with ``train``, ``test`` and ``meta``. Each batch is a pickled dict with
``b"data"`` (N x 3072 uint8: the red, green and blue 32 x 32 planes of each image) and
``b"labels"`` (CIFAR-10) or ``b"fine_labels"`` (CIFAR-100, whose 100 fine classes are used).
Files are unpickled with an allow-list (NumPy arrays only), so a doctored file cannot run code.

The training set is split as DARTS does (``train_search.py``, ``train_portion=0.5``): its first
half trains the weights (``train_a``), the second the architecture (``train_b``); the test set
is only for the final report. Images are normalised by the data set's mean and std; the
training augmentation (:class:`~nasc.search.datasets.augment.CifarAugment`) is applied per batch.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import torch
from nasc.dsl.diagnostics import NasError
from nasc.search.data import Splits
from nasc.search.datasets.augment import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    CIFAR100_MEAN,
    CIFAR100_STD,
    CifarAugment,
)
from nasc.search.datasets.download import Archive, ensure

#: torchvision's URLs and MD5s (``torchvision.datasets.CIFAR10/100``)
ARCHIVES = {
    "cifar10": Archive(title="CIFAR-10",
                       url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                       md5="c58f30108f718f92721af3b95e74349a", folder="cifar-10-batches-py"),
    "cifar100": Archive(title="CIFAR-100",
                        url="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
                        md5="eb9058c3a382ffc7106e4002c42a8d85", folder="cifar-100-python"),
}

LAYOUT = {  # name: (train files, test file, meta file, label key, names key, classes)
    "cifar10": ([f"data_batch_{i}" for i in range(1, 6)], "test_batch", "batches.meta",
                b"labels", b"label_names", 10),
    "cifar100": (["train"], "test", "meta", b"fine_labels", b"fine_label_names", 100),
}

_ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
            ("numpy._core.multiarray", "scalar"), ("_codecs", "encode")}


class _Arrays(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not part of a CIFAR batch")
        return super().find_class(module, name)


def read_batch(path: Path) -> dict[bytes, Any]:
    """One pickled CIFAR file (latin-1 bytes keys, as the Python 2 pickles have)."""
    try:
        data = path.read_bytes()
        out = _Arrays(io.BytesIO(data), encoding="bytes").load()
    except OSError as e:
        raise NasError(f"data: cannot read {path}: {e.strerror}") from None
    except Exception as e:  # any malformed pickle
        raise NasError(f"data: {path} is not a CIFAR python batch ({e})") from None
    if not isinstance(out, dict):
        raise NasError(f"data: {path} holds a {type(out).__name__}, not a CIFAR batch dict")
    return out


def _images_labels(path: Path, key: bytes, classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    import numpy as np

    d = read_batch(path)
    for k in (b"data", key):
        if k not in d:
            raise NasError(f"data: {path} has no {k!r} entry (keys: "
                           f"{sorted(map(repr, d))}); is it a CIFAR-{classes} file?")
    data, labels = d[b"data"], d[key]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or \
            data.shape[1] != 3072:
        shape = getattr(data, "shape", type(data).__name__)
        raise NasError(f"data: {path}: b'data' must be N x 3072 uint8 (3 x 32 x 32 images), "
                       f"got {shape} {getattr(data, 'dtype', '')}".rstrip())
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) != len(data):
        raise NasError(f"data: {path} has {len(data)} images but {labels.size} labels")
    if len(labels) and (labels.min() < 0 or labels.max() >= classes):
        raise NasError(f"data: {path} holds label {int(labels.max())}, outside 0..{classes - 1}")
    x = torch.from_numpy(data.copy()).view(-1, 3, 32, 32)
    return x, torch.from_numpy(labels.astype(np.int64))


def cifar(name: str, root: Path, seed: int = 0) -> Splits:
    """``cifar10`` or ``cifar100`` from ``root`` (downloaded into it when absent)."""
    folder = ensure(ARCHIVES[name], root)
    train_files, test_file, meta_file, key, names_key, classes = LAYOUT[name]
    missing = [f for f in (*train_files, test_file, meta_file) if not (folder / f).is_file()]
    if missing:
        raise NasError(f"data: {folder} lacks {', '.join(missing)} of the "
                       f"{ARCHIVES[name].filename} layout")
    names = read_batch(folder / meta_file).get(names_key)
    if names is None or len(names) != classes:
        raise NasError(f"data: {folder / meta_file} lists {len(names or [])} class names under "
                       f"{names_key!r}, not {classes}")
    parts = [_images_labels(folder / f, key, classes) for f in train_files]
    x = torch.cat([p[0] for p in parts])
    y = torch.cat([p[1] for p in parts])
    xt, yt = _images_labels(folder / test_file, key, classes)
    if len(y) < 2:
        raise NasError(f"data: {folder} holds {len(y)} training image(s); the search needs two "
                       "at least (one per half)")
    mean, std = (CIFAR10_MEAN, CIFAR10_STD) if name == "cifar10" else (CIFAR100_MEAN, CIFAR100_STD)
    m, s = torch.tensor(mean).view(1, 3, 1, 1), torch.tensor(std).view(1, 3, 1, 1)
    norm = lambda u: (u.float() / 255.0 - m) / s  # noqa: E731
    half = len(y) // 2  # DARTS: indices[:split] train the weights, indices[split:] alpha
    return Splits(
        name=name, classes=classes, in_channels=3,
        train_a=(norm(x[:half]), y[:half]), train_b=(norm(x[half:]), y[half:]),
        test=(norm(xt), yt),
        meta={"class_names": [n.decode("latin-1") if isinstance(n, bytes) else str(n)
                              for n in names], "folder": str(folder), "mean": mean, "std": std},
        augment=CifarAugment(mean=mean, std=std),
    )
