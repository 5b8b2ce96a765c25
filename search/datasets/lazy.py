"""Image files as a split: a map-style ``Dataset`` of files and tensor-like views of it.

A :class:`Files` data set reads sample ``i`` from its files: the evaluation view
(:meth:`Files.image`, :meth:`Files.label`: resize and centre crop, normalised) or an augmented
training pair (:meth:`Files.train_pair`, drawn from a generator seeded per sample, so a
DataLoader worker draws the same augmentation as the main process would). ``files[(i, seed)]``
is the pair for DataLoader workers (``seed`` ``None``: the evaluation view).

:class:`Lazy` shows one side of a :class:`Files` (its images or its per-pixel labels) as far as
a tensor of the whole split is needed: ``len``, ``shape``, ``dim()``, ``numel()`` and indexing
by an integer, a slice or a tensor of indices (which reads those files). So the run loop can
index a split of image files like an in-memory tensor; :func:`nasc.search.datasets.batches`
streams it through DataLoader workers instead.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
from torch.utils.data import Dataset


class Files(Dataset):
    """Samples read from files. Subclasses set ``items`` (one entry per sample) and implement
    :meth:`image`, :meth:`label` and :meth:`train_pair`; ``image_shape`` is ``(C, H, W)`` of
    :meth:`image`, ``label_shape`` ``()`` or ``(H, W)`` of :meth:`label`."""

    items: list[Any]
    image_shape: tuple[int, int, int]
    label_shape: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.items)

    def image(self, i: int) -> torch.Tensor:
        raise NotImplementedError

    def label(self, i: int) -> torch.Tensor:
        raise NotImplementedError

    def train_pair(self, i: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def __getitem__(self, key: tuple[int, int | None]) -> tuple[torch.Tensor, torch.Tensor]:
        i, seed = key
        if seed is None:
            return self.image(i), self.label(i)
        return self.train_pair(i, torch.Generator().manual_seed(seed))

    def joined(self, other: Files) -> Files:
        if type(other) is not type(self):
            raise TypeError(f"cannot join {type(self).__name__} and {type(other).__name__}")
        new = copy.copy(self)
        new.items = self.items + other.items
        new.__dict__.pop("_loaders", None)
        return new

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_loaders", None)  # DataLoaders stay with the process that made them
        return state


class Lazy:
    """The images (``side="image"``) or labels (``side="label"``) of a :class:`Files`, indexed
    like a tensor whose rows are read on demand."""

    def __init__(self, files: Files, side: str) -> None:
        if side not in ("image", "label"):
            raise ValueError(f"side is 'image' or 'label', not {side!r}")
        self.files, self.side = files, side

    @property
    def shape(self) -> torch.Size:
        each = self.files.image_shape if self.side == "image" else self.files.label_shape
        return torch.Size((len(self.files), *each))

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    @property
    def dtype(self) -> torch.dtype:
        """What a row reads as: float images, integer class (or pixel) labels."""
        return torch.float32 if self.side == "image" else torch.long

    def __len__(self) -> int:
        return len(self.files)

    def dim(self) -> int:
        return len(self.shape)

    def numel(self) -> int:
        return self.shape.numel()

    def _read(self, i: int) -> torch.Tensor:
        return self.files.image(i) if self.side == "image" else self.files.label(i)

    def __getitem__(self, key: Any) -> torch.Tensor:
        if isinstance(key, int):
            return self._read(range(len(self))[key])
        if isinstance(key, slice):
            idx = range(len(self))[key]
        elif isinstance(key, torch.Tensor) and key.dim() == 1 and not key.is_floating_point():
            idx = key.tolist()
        elif isinstance(key, list | tuple | range):
            idx = list(key)
        else:
            raise TypeError(f"a lazy split is indexed by an int, a slice or indices, not {key!r}")
        return torch.stack([self._read(int(i)) for i in idx]) if len(idx) else torch.empty(
            (0, *self.shape[1:]), dtype=torch.float32 if self.side == "image" else torch.long)

    def __repr__(self) -> str:
        return f"Lazy({type(self.files).__name__}, {self.side}, shape={tuple(self.shape)})"


def cat(parts: Sequence[Any]) -> Any:
    """``torch.cat`` of tensors, or the join of lazy views of the same kind of files."""
    if all(isinstance(p, torch.Tensor) for p in parts):
        return torch.cat(list(parts))
    if all(isinstance(p, Lazy) for p in parts) and len({p.side for p in parts}) == 1:
        files = parts[0].files
        for p in parts[1:]:
            files = files.joined(p.files)
        return Lazy(files, parts[0].side)
    if all(isinstance(p, torch.Tensor | Lazy) for p in parts):
        # labels of image folders are tensors while their images are lazy: both cat per kind
        raise TypeError("cannot concatenate in-memory and lazy splits")
    raise TypeError(f"cannot concatenate {[type(p).__name__ for p in parts]}")
