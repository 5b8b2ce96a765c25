"""The papers' data augmentation, in torch ops with explicit seeded generators.

- CIFAR (DARTS, ``utils._data_transforms_cifar10``): random crop 32 with padding 4, horizontal
  flip with p = 1/2, normalisation by the data set's mean and std; cutout of a 16 x 16 square
  (DeVries & Taylor 2017) when retraining. Applied per batch to the normalised in-memory
  tensors: padding uses each channel's normalised black, ``-mean/std``, which is what padding
  the raw image with zeros and normalising gives; cutout zeroes after normalising, as DARTS'
  ``Cutout`` does.
- ImageNet (ProxylessNAS / OFA ``imagenet_data_provider``): random resized crop (scale
  0.08-1, ratio 3/4-4/3, torchvision's algorithm), horizontal flip, colour jitter with
  brightness 32/255 and saturation 1/2 in random order (their ``distort_color="normal"``/"tf"),
  normalisation by ImageNet's mean and std; evaluation resizes the shorter side to
  ``size / 0.875`` (256 for 224) and centre-crops ``size``.
- Cityscapes (DCNAS §4.1, HR-NAS): random scale 0.5-2, random crop (padded with the ignore
  label), horizontal flip; the labels resized by nearest neighbour.

Every random draw comes from the ``torch.Generator`` passed in; nothing reads the global RNG.
"""

from __future__ import annotations

import math
from typing import Any

import attrs
import torch

CIFAR10_MEAN = (0.49139968, 0.48215827, 0.44653124)  # DARTS utils.py
CIFAR10_STD = (0.24703233, 0.24348505, 0.26158768)
CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)  # PC-DARTS / GDAS' CIFAR-100 statistics
CIFAR100_STD = (0.2673, 0.2564, 0.2762)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def uniform(gen: torch.Generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=gen))


def randint(gen: torch.Generator, lo: int, hi: int) -> int:
    """An integer in ``lo .. hi`` (both included)."""
    return int(torch.randint(lo, hi + 1, (), generator=gen))


# ---- per batch: in-memory tensors (CIFAR) -----------------------------------------------------
def random_crop(x: torch.Tensor, size: int, padding: int, fill: torch.Tensor,
                gen: torch.Generator) -> torch.Tensor:
    """A ``size`` x ``size`` crop of each image padded by ``padding`` with ``fill`` (per
    channel), at a uniformly drawn offset."""
    n, c, h, w = x.shape
    padded = fill.view(1, c, 1, 1).to(x).expand(n, c, h + 2 * padding, w + 2 * padding).clone()
    padded[:, :, padding : padding + h, padding : padding + w] = x
    top = torch.randint(0, h + 2 * padding - size + 1, (n,), generator=gen).to(x.device)
    left = torch.randint(0, w + 2 * padding - size + 1, (n,), generator=gen).to(x.device)
    span = torch.arange(size, device=x.device)
    rows = (top[:, None] + span)[:, None, :, None]
    cols = (left[:, None] + span)[:, None, None, :]
    return padded[torch.arange(n, device=x.device)[:, None, None, None],
                  torch.arange(c, device=x.device)[None, :, None, None], rows, cols]


def hflip(x: torch.Tensor, gen: torch.Generator, p: float = 0.5,
          y: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Each image (and its per-pixel labels ``y``) mirrored with probability ``p``."""
    flip = (torch.rand(len(x), generator=gen) < p).to(x.device)
    x = torch.where(flip.view(-1, *[1] * (x.dim() - 1)), x.flip(-1), x)
    if y is not None and y.dim() > 1:
        y = torch.where(flip.view(-1, *[1] * (y.dim() - 1)), y.flip(-1), y)
    return x, y


def cutout(x: torch.Tensor, length: int, gen: torch.Generator) -> torch.Tensor:
    """DARTS' ``Cutout``: a ``length`` x ``length`` square (clipped at the border) around a
    uniformly drawn centre of each image set to zero."""
    n, _, h, w = x.shape
    cy = torch.randint(0, h, (n,), generator=gen).to(x.device)
    cx = torch.randint(0, w, (n,), generator=gen).to(x.device)
    rows = torch.arange(h, device=x.device)[None, :]
    cols = torch.arange(w, device=x.device)[None, :]
    inside_r = (rows >= (cy[:, None] - length // 2)) & (rows < (cy[:, None] + length - length // 2))
    inside_c = (cols >= (cx[:, None] - length // 2)) & (cols < (cx[:, None] + length - length // 2))
    hole = inside_r[:, :, None] & inside_c[:, None, :]
    return x.masked_fill(hole[:, None], 0.0)


@attrs.frozen(kw_only=True)
class CifarAugment:
    """DARTS' CIFAR training pipeline on normalised batches (cutout only when retraining).

    >>> aug = CifarAugment(mean=CIFAR10_MEAN, std=CIFAR10_STD)
    >>> x, y = torch.randn(8, 3, 32, 32), torch.arange(8)
    >>> xa, ya = aug(x, y, torch.Generator().manual_seed(0), retrain=True)
    >>> xa.shape, bool((ya == y).all())
    (torch.Size([8, 3, 32, 32]), True)
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]
    crop: int = 32
    padding: int = 4
    flip: float = 0.5
    cutout: int = 16

    def __call__(self, x: torch.Tensor, y: torch.Tensor, gen: torch.Generator, *,
                 retrain: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        black = -torch.tensor(self.mean) / torch.tensor(self.std)
        x = random_crop(x, self.crop, self.padding, black, gen)
        x, _ = hflip(x, gen, self.flip)
        if retrain and self.cutout:
            x = cutout(x, self.cutout, gen)
        return x, y


# ---- per sample: image files (ImageNet, Cityscapes), in DataLoader workers -----------------------
def normalize(x: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    return (x - torch.tensor(mean).view(-1, 1, 1)) / torch.tensor(std).view(-1, 1, 1)


def to_tensor(img: Any) -> torch.Tensor:
    """A PIL RGB image as float C x H x W in [0, 1]."""
    import numpy as np

    a = torch.from_numpy(np.asarray(img, dtype=np.uint8).copy())
    return a.permute(2, 0, 1).float() / 255.0


def resized_crop_box(w: int, h: int, gen: torch.Generator, scale=(0.08, 1.0),
                     ratio=(3 / 4, 4 / 3)) -> tuple[int, int, int, int]:
    """torchvision's ``RandomResizedCrop.get_params``: ``(left, top, width, height)``."""
    area = w * h
    lr = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * uniform(gen, *scale)
        aspect = math.exp(uniform(gen, *lr))
        cw, ch = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
        if 0 < cw <= w and 0 < ch <= h:
            return randint(gen, 0, w - cw), randint(gen, 0, h - ch), cw, ch
    if w / h < ratio[0]:
        cw, ch = w, round(w / ratio[0])
    elif w / h > ratio[1]:
        cw, ch = round(h * ratio[1]), h
    else:
        cw, ch = w, h
    return (w - cw) // 2, (h - ch) // 2, cw, ch


def color_jitter(x: torch.Tensor, gen: torch.Generator, brightness: float = 32 / 255,
                 saturation: float = 0.5) -> torch.Tensor:
    """torchvision's ``ColorJitter(brightness, saturation)`` on an image in [0, 1]: factors
    drawn from ``[1 - b, 1 + b]``, applied in a random order."""
    fb = uniform(gen, max(0.0, 1 - brightness), 1 + brightness)
    fs = uniform(gen, max(0.0, 1 - saturation), 1 + saturation)
    for k in torch.randperm(2, generator=gen).tolist():
        if k == 0:
            x = (x * fb).clamp(0, 1)
        else:
            gray = (0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2]).unsqueeze(0)
            x = (gray + fs * (x - gray)).clamp(0, 1)
    return x


def imagenet_train(img: Any, size: int, gen: torch.Generator) -> torch.Tensor:
    """ProxylessNAS / OFA training view of a PIL image: ``3 x size x size``, normalised."""
    from PIL import Image

    left, top, cw, ch = resized_crop_box(img.width, img.height, gen)
    img = img.resize((size, size), Image.BILINEAR, box=(left, top, left + cw, top + ch))
    x = to_tensor(img)
    if float(torch.rand((), generator=gen)) < 0.5:
        x = x.flip(-1)
    return normalize(color_jitter(x, gen), IMAGENET_MEAN, IMAGENET_STD)


def imagenet_eval(img: Any, size: int) -> torch.Tensor:
    """Resize the shorter side to ``round(size / 0.875)`` (256 for 224), centre crop ``size``."""
    from PIL import Image

    short = round(size / 0.875)
    scale = short / min(img.width, img.height)
    w, h = max(size, round(img.width * scale)), max(size, round(img.height * scale))
    img = img.resize((w, h), Image.BILINEAR)
    left, top = (w - size) // 2, (h - size) // 2
    img = img.crop((left, top, left + size, top + size))
    return normalize(to_tensor(img), IMAGENET_MEAN, IMAGENET_STD)


def segmentation_train(x: torch.Tensor, y: torch.Tensor, crop: tuple[int, int],
                       gen: torch.Generator, *, ignore: int, scale=(0.5, 2.0),
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """DCNAS / HR-NAS: scale by a factor drawn from ``scale`` (bilinear image, nearest
    labels), pad to at least ``crop`` (image with 0, the normalised mean; labels with
    ``ignore``), crop ``crop`` at a random offset, mirror with p = 1/2."""
    import torch.nn.functional as F

    s = uniform(gen, *scale)
    h, w = max(1, round(x.shape[1] * s)), max(1, round(x.shape[2] * s))
    x = F.interpolate(x[None], size=(h, w), mode="bilinear", align_corners=False)[0]
    y = F.interpolate(y[None, None].float(), size=(h, w), mode="nearest")[0, 0].long()
    ph, pw = max(crop[0] - h, 0), max(crop[1] - w, 0)
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), value=0.0)
        y = F.pad(y, (0, pw, 0, ph), value=ignore)
    top, left = randint(gen, 0, y.shape[0] - crop[0]), randint(gen, 0, y.shape[1] - crop[1])
    x = x[:, top : top + crop[0], left : left + crop[1]]
    y = y[top : top + crop[0], left : left + crop[1]]
    if float(torch.rand((), generator=gen)) < 0.5:
        x, y = x.flip(-1), y.flip(-1)
    return x.contiguous(), y.contiguous()
