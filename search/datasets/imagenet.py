"""ImageNet in its standard folder layout: ``train/<wnid>/*.JPEG`` and ``val/<wnid>/*.JPEG``
(the layout of ``torchvision.datasets.ImageFolder``; the validation images sorted into their
classes' folders), under ``DATA/imagenet/`` or ``DATA/`` itself.

Classes are the training folders in sorted order. The papers' proxies: ``classes=N`` searches on
N classes drawn with the seed (or ``classes=[wnid, ...]`` on those), ``fraction=f`` on that
fraction of each class's training images. The training images are halved per class, with the
seed, into ``train_a`` (weights) and ``train_b`` (architecture); ``val`` is the test split.
Images are decoded with Pillow in DataLoader workers (:func:`nasc.search.datasets.batches`) and
augmented as ProxylessNAS and OFA do (:func:`~nasc.search.datasets.augment.imagenet_train`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from nasc.dsl.diagnostics import NasError
from nasc.search.data import Splits
from nasc.search.datasets.augment import imagenet_eval, imagenet_train
from nasc.search.datasets.lazy import Files, Lazy

EXTENSIONS = (".jpeg", ".jpg", ".png")


def open_rgb(path: Path):
    """A file as a PIL RGB image, or a clear error naming it."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            return img.convert("RGB")
    except (OSError, UnidentifiedImageError) as e:
        raise NasError(f"data: cannot read the image {path}: {e}") from None


class ImageFiles(Files):
    """``items``: ``(path, class index)``; images ``3 x size x size``."""

    def __init__(self, items: Sequence[tuple[Path, int]], size: int) -> None:
        self.items = list(items)
        self.size = size
        self.image_shape = (3, size, size)
        self.label_shape = ()

    def image(self, i: int) -> torch.Tensor:
        return imagenet_eval(open_rgb(self.items[i][0]), self.size)

    def label(self, i: int) -> torch.Tensor:
        return torch.tensor(self.items[i][1])

    def train_pair(self, i: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        return imagenet_train(open_rgb(self.items[i][0]), self.size, gen), self.label(i)

    def labels(self) -> torch.Tensor:
        return torch.tensor([c for _, c in self.items], dtype=torch.long)


def root_of(data: Path, name: str, marker: str) -> Path:
    for root in (data / name, data):
        if (root / marker).is_dir():
            return root
    raise NasError(f"data: no {name} in {data / name} (nor {data}): expected its {marker}/ "
                   "folder; give --data-dir")


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in EXTENSIONS and p.is_file())


def imagenet(root: Path, seed: int = 0, *, classes: int | Sequence[str] | None = None,
             fraction: float = 1.0, size: int = 224) -> Splits:
    """ImageNet (or a proxy of it) from ``root`` as streamed splits."""
    root = root_of(root, "imagenet", "train")
    train, val = root / "train", root / "val"
    if not val.is_dir():
        raise NasError(f"data: {root} has train/ but no val/ (val/<wnid>/*.JPEG)")
    wnids = sorted(p.name for p in train.iterdir() if p.is_dir())
    if isinstance(size, bool) or not isinstance(size, int) or size < 8:
        raise NasError(f"data: imagenet size must be an integer of 8 at least, not {size!r}")
    if not 0 < fraction <= 1:
        raise NasError(f"data: imagenet fraction must be in (0, 1], not {fraction!r}")
    gen = torch.Generator().manual_seed(seed)
    if isinstance(classes, int) and not isinstance(classes, bool):
        if not 2 <= classes <= len(wnids):
            raise NasError(f"data: classes={classes}, but {train} has {len(wnids)} class "
                           "folders (two at least are needed)")
        wnids = sorted(wnids[i] for i in torch.randperm(len(wnids), generator=gen)[:classes])
    elif classes is not None:
        classes = [classes] if isinstance(classes, str) else list(classes)
        unknown = sorted(set(classes) - set(wnids))
        if unknown:
            raise NasError(f"data: no class folder {unknown[0]!r} in {train}")
        wnids = sorted(set(classes))
    if len(wnids) < 2:
        raise NasError(f"data: {train} has {len(wnids)} class folder(s); two at least are needed")
    half_a, half_b, test = [], [], []
    for c, wnid in enumerate(wnids):
        files = _images(train / wnid)
        keep = max(2, round(len(files) * fraction)) if files else 0
        if len(files) < 2:
            raise NasError(f"data: {train / wnid} has {len(files)} image(s); each class needs two "
                           "at least (one for each search split)")
        perm = torch.randperm(len(files), generator=gen)[:keep].tolist()
        half = len(perm) // 2
        half_a += [(files[i], c) for i in perm[:half]]
        half_b += [(files[i], c) for i in perm[half:]]
        if (val / wnid).is_dir():
            test += [(p, c) for p in _images(val / wnid)]
    extra = sorted({p.name for p in val.iterdir() if p.is_dir()} - set(
        p.name for p in train.iterdir() if p.is_dir()))
    if extra:
        raise NasError(f"data: {val / extra[0]} is a class that {train} does not have")
    if not test:
        raise NasError(f"data: {val} holds no images of the chosen classes")
    parts = [ImageFiles(items, size) for items in (half_a, half_b, test)]
    return Splits(
        name="imagenet", classes=len(wnids), in_channels=3,
        train_a=(Lazy(parts[0], "image"), parts[0].labels()),
        train_b=(Lazy(parts[1], "image"), parts[1].labels()),
        test=(Lazy(parts[2], "image"), parts[2].labels()),
        meta={"wnids": wnids, "root": str(root), "size": size, "fraction": fraction},
    )
