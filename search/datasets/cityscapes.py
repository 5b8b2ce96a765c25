"""Cityscapes in its official layout (Cordts et al. 2016), under ``DATA/cityscapes/`` or
``DATA/``: ``leftImg8bit/{train,val}/<city>/<city>_<seq>_<frame>_leftImg8bit.png`` and
``gtFine/{train,val}/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png``.

The label ids are mapped to the 19 training classes of the benchmark (``cityscapesscripts``'
``labels.py``); every other id (void, and the classes not evaluated) becomes
:data:`nasc.search.data.IGNORE`, which the loss skips. ``train`` is halved with the seed into
``train_a`` (weights) and ``train_b`` (architecture), ``val`` is the test split (the test labels
are not public). ``size=(H, W)`` is the working resolution (the files are 1024 x 2048; the
papers search at reduced sizes), ``crop=(h, w)`` the training crop after DCNAS' and HR-NAS'
random scaling (:func:`~nasc.search.datasets.augment.segmentation_train`); evaluation reads whole
images at ``size``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from nasc.dsl.diagnostics import NasError
from nasc.search.data import IGNORE, Splits
from nasc.search.datasets.augment import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    normalize,
    segmentation_train,
    to_tensor,
)
from nasc.search.datasets.imagenet import open_rgb, root_of
from nasc.search.datasets.lazy import Files, Lazy

#: label id -> train id of the 19 evaluated classes (road, sidewalk, building, wall, fence,
#: pole, traffic light, traffic sign, vegetation, terrain, sky, person, rider, car, truck, bus,
#: train, motorcycle, bicycle)
TRAIN_IDS = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11,
             25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18}
CLASSES = 19
IMAGE_SUFFIX = "_leftImg8bit.png"
LABEL_SUFFIX = "_gtFine_labelIds.png"


def _table() -> torch.Tensor:
    t = torch.full((256,), IGNORE, dtype=torch.long)
    for k, v in TRAIN_IDS.items():
        t[k] = v
    return t


class SceneFiles(Files):
    """``items``: ``(image path, labelIds path)``; images ``3 x H x W`` at ``size``, labels
    ``H x W`` train ids."""

    def __init__(self, items: Sequence[tuple[Path, Path]], size: tuple[int, int],
                 crop: tuple[int, int]) -> None:
        self.items = list(items)
        self.size, self.crop = size, crop
        self.image_shape = (3, *size)
        self.label_shape = size
        self.table = _table()

    def _image(self, i: int) -> torch.Tensor:
        x = to_tensor(open_rgb(self.items[i][0]))
        if tuple(x.shape[1:]) != self.size:
            x = F.interpolate(x[None], size=self.size, mode="bilinear", align_corners=False)[0]
        return normalize(x, IMAGENET_MEAN, IMAGENET_STD)

    def image(self, i: int) -> torch.Tensor:
        return self._image(i)

    def label(self, i: int) -> torch.Tensor:
        import numpy as np
        from PIL import Image, UnidentifiedImageError

        path = self.items[i][1]
        try:
            with Image.open(path) as img:
                ids = torch.from_numpy(np.asarray(img, dtype=np.uint8).copy())
        except (OSError, UnidentifiedImageError) as e:
            raise NasError(f"data: cannot read the label image {path}: {e}") from None
        if ids.dim() != 2:
            raise NasError(f"data: {path} is not a one-channel labelIds image")
        y = self.table[ids.long()]
        if tuple(y.shape) != self.size:
            y = F.interpolate(y[None, None].float(), size=self.size, mode="nearest")[0, 0].long()
        return y

    def train_pair(self, i: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        return segmentation_train(self._image(i), self.label(i), self.crop, gen, ignore=IGNORE)


def _pairs(root: Path, split: str) -> list[tuple[Path, Path]]:
    images = sorted((root / "leftImg8bit" / split).glob(f"*/*{IMAGE_SUFFIX}"))
    if not images:
        raise NasError(f"data: no images in {root / 'leftImg8bit' / split}/<city>/*{IMAGE_SUFFIX}")
    pairs = []
    for img in images:
        gt = root / "gtFine" / split / img.parent.name / img.name.replace(IMAGE_SUFFIX,
                                                                          LABEL_SUFFIX)
        if not gt.is_file():
            raise NasError(f"data: {img} has no labels: expected {gt}")
        pairs.append((img, gt))
    return pairs


def _hw(v, what: str) -> tuple[int, int]:
    if isinstance(v, int) and not isinstance(v, bool):
        v = (v, 2 * v)
    try:
        h, w = (int(t) for t in v)
    except (TypeError, ValueError):
        raise NasError(f"data: cityscapes {what} is (height, width), not {v!r}") from None
    if h < 8 or w < 8:
        raise NasError(f"data: cityscapes {what} {h}x{w} is below 8x8")
    return h, w


def cityscapes(root: Path, seed: int = 0, *, size=(1024, 2048), crop=None) -> Splits:
    """Cityscapes' fine annotations as streamed segmentation splits."""
    root = root_of(root, "cityscapes", "leftImg8bit")
    size = _hw(size, "size")
    crop = size if crop is None else _hw(crop, "crop")
    train, test = _pairs(root, "train"), _pairs(root, "val")
    if len(train) < 2:
        raise NasError(f"data: {root / 'leftImg8bit' / 'train'} has {len(train)} image(s); the "
                       "search needs two at least (one per half)")
    perm = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed)).tolist()
    half = len(perm) // 2
    parts = [SceneFiles(items, size, crop) for items in
             ([train[i] for i in perm[:half]], [train[i] for i in perm[half:]], test)]
    return Splits(
        name="cityscapes", classes=CLASSES, in_channels=3,
        train_a=(Lazy(parts[0], "image"), Lazy(parts[0], "label")),
        train_b=(Lazy(parts[1], "image"), Lazy(parts[1], "label")),
        test=(Lazy(parts[2], "image"), Lazy(parts[2], "label")),
        meta={"root": str(root), "size": size, "crop": crop, "ignore_index": IGNORE},
    )
