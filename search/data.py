"""Data sets for search: built in (offline and real) and the user's own.

``digits``: scikit-learn's bundled handwritten digits (1,797 real 8x8 scans of the UCI
optical-recognition set; no download). Splits are stratified and fixed by a seed: 20 % test,
and the rest halved into ``train_a`` (weights) and ``train_b`` (architecture), the bilevel
split of DARTS and DCNAS (§3.4: trainA/trainB).

``digit-scenes``: a segmentation set composed from the same scans for the dense-prediction
spaces (DCNAS, HR-NAS): several digits (upscaled 2x to 16x16) placed on a 64x64 canvas, each
pixel labelled with the class of the digit drawn there (ink >= 1/4) or the background class 10.
The source digits are split first (as for ``digits``), so no scan appears in two splits.

Users' data (``--data module:function`` or ``nasc.search.search(data=...)``): see
:func:`as_splits` for what may be given and :func:`load_data` for the function contract.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import torch


@attrs.frozen(kw_only=True)
class Splits:
    """Tensors of one data set: images N x C x H x W (float) and labels N (long)."""

    name: str
    classes: int
    in_channels: int
    train_a: tuple[torch.Tensor, torch.Tensor]
    train_b: tuple[torch.Tensor, torch.Tensor]
    test: tuple[torch.Tensor, torch.Tensor]
    #: extra facts about how the splits were made (e.g. ``sources`` of composed scenes)
    meta: Mapping[str, Any] = attrs.field(factory=dict)

    @property
    def dense(self) -> bool:
        """Per-pixel labels (segmentation) rather than one label per image."""
        return self.test[1].dim() > 1

    @property
    def train(self) -> tuple[torch.Tensor, torch.Tensor]:
        """trainA and trainB together (retraining a derived network uses both)."""
        return (
            torch.cat([self.train_a[0], self.train_b[0]]),
            torch.cat([self.train_a[1], self.train_b[1]]),
        )


def _digit_split(seed: int) -> tuple[Any, list[int], list[int], list[int]]:
    """The scans and their stratified index split: (data, train_a, train_b, test)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    idx = list(range(len(d.target)))
    rest, test = train_test_split(idx, test_size=0.2, random_state=seed, stratify=d.target)
    a, b = train_test_split(
        rest, test_size=0.5, random_state=seed, stratify=[int(d.target[i]) for i in rest]
    )
    return d, a, b, test


def digits(seed: int = 0) -> Splits:
    """scikit-learn's digits, scaled to [0, 1], mean-centred per pixel on the training data."""
    d, a, b, test = _digit_split(seed)
    x = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(d.target, dtype=torch.long)
    rest = a + b
    mean = x[rest].mean(dim=0, keepdim=True)
    x = x - mean
    pick = lambda ids: (x[ids], y[ids])  # noqa: E731
    return Splits(
        name="digits", classes=10, in_channels=1, train_a=pick(a), train_b=pick(b), test=pick(test)
    )


#: The background class of ``digit-scenes`` (digits keep their classes 0..9).
BACKGROUND = 10


def digit_scenes(
    seed: int = 0,
    *,
    canvas: int = 64,
    per_scene: int = 3,
    scale: int = 2,
    sizes: tuple[int, int, int] = (480, 480, 240),
) -> Splits:
    """Segmentation scenes: ``per_scene`` digits on a ``canvas`` x ``canvas`` image.

    Each digit (an 8x8 scan upscaled ``scale`` times) lands in its own cell of a 3x3 grid with a
    random offset inside the cell, so digits never overlap. Images are the scans' ink in [0, 1];
    a pixel's label is its digit's class where the ink is >= 1/4, else ``BACKGROUND``. The
    scenes of each split use only that split's source scans (``meta["sources"]`` lists the
    scan indices of every scene); everything is fixed by ``seed``.
    """
    d, a, b, test = _digit_split(seed)
    ink = torch.tensor(d.images, dtype=torch.float32) / 16.0
    ink = ink.repeat_interleave(scale, 0 if ink.dim() == 2 else 1).repeat_interleave(scale, -1)
    target = torch.tensor(d.target, dtype=torch.long)
    side = 8 * scale
    cell = canvas // 3
    if cell < side or per_scene > 9:
        raise ValueError(f"digit-scenes: a {canvas}x{canvas} canvas holds at most 9 digits of "
                         f"{side}x{side} in a 3x3 grid (cells of {side} pixels at least)")

    def compose(pool: Sequence[int], n: int, split: int) -> tuple[torch.Tensor, torch.Tensor,
                                                                     torch.Tensor]:
        gen = torch.Generator().manual_seed(seed * 1_000_003 + split)
        pool_t = torch.tensor(pool)
        x = torch.zeros(n, 1, canvas, canvas)
        y = torch.full((n, canvas, canvas), BACKGROUND, dtype=torch.long)
        src = pool_t[torch.randint(len(pool), (n, per_scene), generator=gen)]
        for i in range(n):
            cells = torch.randperm(9, generator=gen)[:per_scene]
            for j, c in enumerate(cells.tolist()):
                r0 = (c // 3) * cell + int(torch.randint(cell - side + 1, (1,), generator=gen))
                c0 = (c % 3) * cell + int(torch.randint(cell - side + 1, (1,), generator=gen))
                k = int(src[i, j])
                x[i, 0, r0 : r0 + side, c0 : c0 + side] = ink[k]
                region = y[i, r0 : r0 + side, c0 : c0 + side]
                region[ink[k] >= 0.25] = target[k]
        return x, y, src

    parts = [compose(pool, n, s) for s, (pool, n) in enumerate(zip((a, b, test), sizes))]
    return Splits(
        name="digit-scenes",
        classes=11,
        in_channels=1,
        train_a=parts[0][:2],
        train_b=parts[1][:2],
        test=parts[2][:2],
        meta={"sources": {k: p[2] for k, p in zip(("train_a", "train_b", "test"), parts)},
              "background": BACKGROUND},
    )


DATASETS = {"digits": digits, "digit-scenes": digit_scenes}


def _tensors(obj: Any, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    """A pair (x, y) of tensors from a pair, a ``Dataset`` or a ``DataLoader``."""
    from torch.utils.data import DataLoader, Dataset

    if isinstance(obj, tuple | list) and len(obj) == 2 and all(
        isinstance(t, torch.Tensor) for t in obj
    ):
        x, y = obj
    elif isinstance(obj, DataLoader):
        xs, ys = [], []
        for batch in obj:
            xs.append(torch.as_tensor(batch[0]))
            ys.append(torch.as_tensor(batch[1]))
        if not xs:
            raise ValueError(f"data: the {what} loader yields no batches")
        x, y = torch.cat(xs), torch.cat(ys)
    elif isinstance(obj, Dataset) or (hasattr(obj, "__getitem__") and hasattr(obj, "__len__")):
        if len(obj) == 0:
            raise ValueError(f"data: the {what} data set is empty")
        items = [obj[i] for i in range(len(obj))]
        x = torch.stack([torch.as_tensor(it[0]) for it in items])
        y = torch.stack([torch.as_tensor(it[1]) for it in items])
    else:
        raise ValueError(
            f"data: the {what} split is a {type(obj).__name__}; give a torch Dataset, a "
            "DataLoader or a pair (x, y) of tensors"
        )
    if len(x) != len(y):
        raise ValueError(f"data: the {what} split has {len(x)} inputs but {len(y)} labels")
    if x.dim() == 3:
        x = x.unsqueeze(1)  # N x H x W: one channel
    return x.float(), y.long()


def _halves(x: torch.Tensor, y: torch.Tensor, frac: float, seed: int):
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    cut = int(round(len(y) * frac))
    return (x[perm[cut:]], y[perm[cut:]]), (x[perm[:cut]], y[perm[:cut]])


def as_splits(obj: Any, seed: int = 0, name: str = "user") -> Splits:
    """Any user data as :class:`Splits` (materialised in memory, as NAS-on-CPU data is small).

    Accepted: a ``Splits``; a mapping with ``train_a``, ``train_b`` and ``test`` (or ``train``
    and ``test``; ``train`` is then halved into trainA/trainB) and optional ``classes``,
    ``in_channels`` and ``name``; a tuple ``(train, test)`` or ``(train_a, train_b, test)``; or
    one data set, split 20 % test and the rest halved. Each split is a torch ``Dataset`` (items
    ``(x, y)``), a ``DataLoader`` (batches ``(x, y)``) or a pair of tensors. Labels are class
    indices per image (``N``) or per pixel (``N x H x W``); ``classes`` defaults to the
    largest label + 1. Random splits are fixed by ``seed``.
    """
    if isinstance(obj, Splits):
        return obj
    extra: dict[str, Any] = {}
    if isinstance(obj, Mapping):
        extra = {k: obj[k] for k in ("classes", "in_channels", "name") if k in obj}
        if "test" not in obj or not ({"train_a", "train_b"} <= set(obj) or "train" in obj):
            raise ValueError("data: a mapping needs 'test' and 'train' (or 'train_a' and "
                             f"'train_b'); got keys {sorted(map(str, obj))}")
        test = _tensors(obj["test"], "test")
        if "train_a" in obj:
            ta, tb = _tensors(obj["train_a"], "train_a"), _tensors(obj["train_b"], "train_b")
        else:
            ta, tb = _halves(*_tensors(obj["train"], "train"), 0.5, seed)
    elif isinstance(obj, tuple) and len(obj) == 3:
        ta, tb, test = (_tensors(o, w) for o, w in zip(obj, ("train_a", "train_b", "test")))
    elif isinstance(obj, tuple) and len(obj) == 2 and not all(
        isinstance(t, torch.Tensor) for t in obj
    ):
        test = _tensors(obj[1], "test")
        ta, tb = _halves(*_tensors(obj[0], "train"), 0.5, seed)
    else:
        rest, test = _halves(*_tensors(obj, "whole"), 0.2, seed)
        ta, tb = _halves(*rest, 0.5, seed + 1)
    for part, what in ((ta, "train_a"), (tb, "train_b"), (test, "test")):
        if len(part[1]) == 0:
            raise ValueError(f"data: the {what} split is empty")
    classes = int(extra.get("classes", 1 + max(int(t[1].max()) for t in (ta, tb, test))))
    return Splits(
        name=str(extra.get("name", name)),
        classes=classes,
        in_channels=int(extra.get("in_channels", ta[0].shape[1])),
        train_a=ta,
        train_b=tb,
        test=test,
    )


def _user_function(spec: str):
    """``module:function`` or ``path/to/file.py:function``."""
    mod_name, _, fn_name = spec.rpartition(":")
    if not mod_name or not fn_name.isidentifier():
        raise ValueError(f"data: {spec!r} is not module:function")
    try:
        if mod_name.endswith(".py") or "/" in mod_name:
            path = Path(mod_name)
            if not path.is_file():
                raise ValueError(f"data: no file {mod_name!r}")
            mspec = importlib.util.spec_from_file_location(f"_nasc_data_{path.stem}", path)
            module = importlib.util.module_from_spec(mspec)
            mspec.loader.exec_module(module)
        else:
            if "" not in sys.path and str(Path.cwd()) not in sys.path:
                sys.path.insert(0, str(Path.cwd()))
            module = importlib.import_module(mod_name)
    except ImportError as e:
        raise ValueError(f"data: cannot import {mod_name!r}: {e}") from None
    fn = getattr(module, fn_name, None)
    if not callable(fn):
        raise ValueError(f"data: {mod_name!r} has no function {fn_name!r}")
    return fn


def load_data(name: str, seed: int = 0) -> Splits:
    """A built-in data set by name, or ``module:function`` (also ``file.py:function``).

    The user's function is called as ``function(seed=seed)`` when it takes a ``seed`` argument
    (else with no arguments) and returns anything :func:`as_splits` accepts.
    """
    if ":" in name:
        fn = _user_function(name)
        try:
            takes_seed = "seed" in inspect.signature(fn).parameters
        except (TypeError, ValueError):
            takes_seed = False
        result = fn(seed=seed) if takes_seed else fn()
        return as_splits(result, seed, name=name)
    if name not in DATASETS:
        raise ValueError(f"no data set {name!r}; built in: {', '.join(sorted(DATASETS))}, or "
                         "module:function for your own")
    return DATASETS[name](seed)
