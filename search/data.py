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
from nasc.dsl.diagnostics import NascError, NasError, UserCodeError, did_you_mean


@attrs.frozen(kw_only=True)
class Splits:
    """One data set's three splits, each a pair (inputs, labels): images N x C x H x W (float)
    and labels N or N x H x W (long). In memory they are tensors; the image folders
    (:mod:`nasc.search.datasets`) give :class:`~nasc.search.datasets.lazy.Lazy` views that read
    their files on indexing, and :func:`nasc.search.datasets.batches` streams them through
    DataLoader workers."""

    name: str
    classes: int
    in_channels: int
    train_a: tuple[Any, Any]
    train_b: tuple[Any, Any]
    test: tuple[Any, Any]
    #: extra facts about how the splits were made (e.g. ``sources`` of composed scenes)
    meta: Mapping[str, Any] = attrs.field(factory=dict)
    #: the data set's training augmentation (:class:`nasc.search.datasets.augment.Augment`),
    #: applied per batch by :func:`nasc.search.datasets.batches`; ``None``: none
    augment: Any = None

    @property
    def dense(self) -> bool:
        """Per-pixel labels (segmentation) rather than one label per image."""
        return self.test[1].dim() > 1

    @property
    def train(self) -> tuple[Any, Any]:
        """trainA and trainB together (retraining a derived network uses both)."""
        from nasc.search.datasets.lazy import cat

        return (cat([self.train_a[0], self.train_b[0]]), cat([self.train_a[1], self.train_b[1]]))


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

#: The label of pixels that count for nothing (Cityscapes' void, 255 in its files): the
#: ``ignore_index`` of :func:`torch.nn.functional.cross_entropy`.
IGNORE = -100

SPLITS = ("train_a", "train_b", "test")


def _tensors(obj: Any, what: str) -> tuple[Any, Any]:
    """A pair (x, y) from a pair, a ``Dataset`` or a ``DataLoader`` (unchecked, as given)."""
    from nasc.search.datasets.lazy import Lazy
    from torch.utils.data import DataLoader, Dataset

    if isinstance(obj, tuple | list) and len(obj) == 2 and all(
        isinstance(t, torch.Tensor | Lazy) for t in obj
    ):
        return obj[0], obj[1]
    if isinstance(obj, DataLoader):
        batches = _theirs(f"your {what} DataLoader", lambda: list(obj))
        if not batches:
            raise NasError(f"data: the {what} loader yields no batches")
        return _joined(batches, torch.cat, what, "batches")
    if isinstance(obj, Dataset) or (hasattr(obj, "__getitem__") and hasattr(obj, "__len__")):
        if len(obj) == 0:
            raise NasError(f"data: the {what} split is empty")
        items = _theirs(f"your {what} data set", lambda: [obj[i] for i in range(len(obj))])
        return _joined(items, torch.stack, what, "items")
    raise NasError(
        f"data: the {what} split is a {type(obj).__name__}; give a torch Dataset, a "
        "DataLoader or a pair (x, y) of tensors"
    )


def _joined(parts: list[Any], join, what: str, kind: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and labels of a data set's items (or a loader's batches), joined."""
    try:
        if any(not isinstance(p, tuple | list) or len(p) != 2 for p in parts):
            raise TypeError("each must be a pair (input, label)")
        return (join([torch.as_tensor(p[0]) for p in parts]),
                join([torch.as_tensor(p[1]) for p in parts]))
    except (TypeError, ValueError, RuntimeError) as e:
        raise NasError(f"data: the {what} {kind} do not make tensors: "
                       f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None


def _theirs(what: str, call):
    """Run the user's code; its exceptions are theirs (:class:`UserCodeError`)."""
    try:
        return call()
    except NascError:
        raise
    except Exception as e:
        raise UserCodeError(what, e) from e


def _halves(x: torch.Tensor, y: torch.Tensor, frac: float, seed: int):
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    cut = int(round(len(y) * frac))
    return (x[perm[cut:]], y[perm[cut:]]), (x[perm[:cut]], y[perm[:cut]])


def _pair(x: Any, y: Any, what: str) -> tuple[Any, Any]:
    """One split's inputs as float N x C x H x W and labels as long, or a clear error.

    Rules: as many inputs as labels; inputs N x C x H x W (N x H x W: one channel) with finite
    values; labels class indices per image (N) or per pixel (N x H x W), integers (floats only
    when every value is whole); the split not empty."""
    from nasc.search.datasets.lazy import Lazy

    if not isinstance(x, torch.Tensor | Lazy) or not isinstance(y, torch.Tensor | Lazy):
        raise NasError(f"data: the {what} split must be a pair (inputs, labels) of tensors, "
                       f"not ({type(x).__name__}, {type(y).__name__})")
    if len(x) != len(y):
        raise NasError(f"data: the {what} split has {len(x)} inputs but {len(y)} labels")
    if len(y) == 0:
        raise NasError(f"data: the {what} split is empty")
    if isinstance(x, torch.Tensor):
        if x.dim() == 3:
            x = x.unsqueeze(1)  # N x H x W: one channel
        if x.dim() != 4:
            raise NasError(f"data: the {what} inputs have shape {_shape(x)}; expected images "
                           "N x C x H x W (or N x H x W for one channel)")
        if x.dtype == torch.bool or x.is_complex():
            raise NasError(f"data: the {what} inputs are {x.dtype}; give real numbers")
        x = x.float()
        bad = ~torch.isfinite(x.flatten(1)).all(1)
        if bad.any():
            i = int(bad.nonzero()[0])
            raise NasError(f"data: the {what} inputs hold NaN or infinite values (first in "
                           f"example {i}); clean or drop them")
    if isinstance(y, torch.Tensor):
        if y.dim() not in (1, 3):
            raise NasError(f"data: the {what} labels have shape {_shape(y)}; expected one class "
                           "index per image (N) or per pixel (N x H x W)")
        if y.is_floating_point():
            whole = torch.isfinite(y) & (y == y.round())
            if not whole.all():
                v = y[~whole].flatten()[0].item()
                raise NasError(f"data: the {what} labels are floats such as {v!r}; labels are "
                               "class indices (integers 0, 1, ...), not values to truncate")
        elif y.dtype == torch.bool or y.is_complex():
            raise NasError(f"data: the {what} labels are {y.dtype}; give class indices")
        y = y.long()
    if y.dim() == 3 and tuple(y.shape[1:]) != tuple(x.shape[2:]) and isinstance(y, torch.Tensor):
        raise NasError(f"data: the {what} labels are {_size(y.shape[1:])} per image but the "
                       f"images {_size(x.shape[2:])}")
    return x, y


def _shape(t: Any) -> str:
    return "x".join(map(str, tuple(t.shape))) if t.dim() else "a scalar"


def _size(hw: Any) -> str:
    return "x".join(map(str, tuple(hw)))


def validate(splits: Splits) -> Splits:
    """``splits`` as they are, or a :class:`NasError` naming what is wrong with them.

    Each split passes :func:`_pair`'s rules; every split's images have the same channels and
    size (a network is searched, trained and costed at one input size); labels are all per image
    or all per pixel; labels lie in ``0 .. classes-1`` (per pixel also :data:`IGNORE`); the
    training splits hold at least two classes; every class of the test split occurs in
    training; ``in_channels`` is the images' channel count.

    >>> x, y = torch.zeros(4, 1, 8, 8), torch.tensor([0, 1, 0, 2])
    >>> as_splits({"train": (x, y), "test": (x[:2], y[:2])}).classes
    3
    >>> as_splits({"train": (x, y), "test": (x[:1], torch.tensor([3]))})
    Traceback (most recent call last):
    ...
    nasc.dsl.diagnostics.NasError: error: data: the test labels hold class(es) [3] that never ...
    """
    pairs = {w: _pair(*getattr(splits, w), w) for w in SPLITS}
    shapes = {w: tuple(p[0].shape[1:]) for w, p in pairs.items()}
    for w in SPLITS[1:]:
        if shapes[w] != shapes["train_a"]:
            c, h, wd = shapes[w]
            ca, ha, wa = shapes["train_a"]
            raise NasError(f"data: the {w} images are {c} x {h} x {wd} (channels x height x "
                           f"width) but the train_a images {ca} x {ha} x {wa}; every split must "
                           "have one size")
    ranks = {w: p[1].dim() for w, p in pairs.items()}
    if len(set(ranks.values())) > 1:
        kinds = ", ".join(f"{w}: per {'pixel' if r == 3 else 'image'}" for w, r in ranks.items())
        raise NasError(f"data: some splits have one label per image, others one per pixel "
                       f"({kinds})")
    if splits.in_channels != shapes["train_a"][0]:
        raise NasError(f"data: in_channels is {splits.in_channels} but the images have "
                       f"{shapes['train_a'][0]} channel(s)")
    if splits.classes < 2:
        raise NasError(f"data: one class only (classes={splits.classes}); there is nothing to "
                       "tell apart: give two classes at least")
    seen: dict[str, set[int]] = {}
    for w, (_, y) in pairs.items():
        values = _classes_of(y)
        if values is None:
            continue
        bad = sorted(v for v in values if not (0 <= v < splits.classes or
                                               (v == IGNORE and ranks[w] == 3)))
        if bad:
            raise NasError(f"data: the {w} labels hold {bad[0]}, outside the classes "
                           f"0..{splits.classes - 1}")
        seen[w] = values - {IGNORE}
    if "train_a" in seen and "train_b" in seen:
        train = seen["train_a"] | seen["train_b"]
        if len(train) < 2:
            raise NasError(f"data: the training labels hold one class only "
                           f"({', '.join(map(str, sorted(train))) or 'none'}); there is nothing "
                           "to tell apart")
        unseen = sorted(seen.get("test", set()) - train)
        if unseen:
            raise NasError(f"data: the test labels hold class(es) {unseen[:5]} that never occur "
                           "in training (train_a and train_b)")
    same = all(a is b for w in SPLITS for a, b in zip(pairs[w], getattr(splits, w)))
    return splits if same else attrs.evolve(splits, **{w: pairs[w] for w in SPLITS})


def _classes_of(y: Any) -> set[int] | None:
    """The label values of a split (``None`` for streamed labels: they are checked as read)."""
    if not isinstance(y, torch.Tensor):
        known = getattr(y, "classes_present", None)
        return None if known is None else set(known)
    return set(torch.unique(y).tolist())


def as_splits(obj: Any, seed: int = 0, name: str = "user") -> Splits:
    """Any user data as checked :class:`Splits` (materialised in memory, as NAS-on-CPU data is
    small; the built-in image folders stream instead).

    Accepted: a ``Splits``; a mapping with ``train_a``, ``train_b`` and ``test`` (or ``train``
    and ``test``; ``train`` is then halved into trainA/trainB) and optional ``classes``,
    ``in_channels`` and ``name``; a tuple ``(train, test)`` or ``(train_a, train_b, test)``; or
    one data set, split 20 % test and the rest halved. Each split is a torch ``Dataset`` (items
    ``(x, y)``), a ``DataLoader`` (batches ``(x, y)``) or a pair of tensors. Labels are class
    indices per image (``N``) or per pixel (``N x H x W``); ``classes`` defaults to the
    largest label + 1. Random splits are fixed by ``seed``. Every rule of :func:`validate`
    holds, or a :class:`NasError` says which does not.
    """
    if isinstance(obj, Splits):
        return validate(obj)
    extra: dict[str, Any] = {}
    if isinstance(obj, Mapping):
        extra = {k: obj[k] for k in ("classes", "in_channels", "name") if k in obj}
        if "test" not in obj or not ({"train_a", "train_b"} <= set(obj) or "train" in obj):
            raise NasError("data: a mapping needs 'test' and 'train' (or 'train_a' and "
                           f"'train_b'); got keys {sorted(map(str, obj))}")
        test = _pair(*_tensors(obj["test"], "test"), "test")
        if "train_a" in obj:
            ta = _pair(*_tensors(obj["train_a"], "train_a"), "train_a")
            tb = _pair(*_tensors(obj["train_b"], "train_b"), "train_b")
        else:
            ta, tb = _halves(*_pair(*_tensors(obj["train"], "train"), "train"), 0.5, seed)
    elif isinstance(obj, tuple) and len(obj) == 3:
        ta, tb, test = (_pair(*_tensors(o, w), w) for o, w in zip(obj, SPLITS))
    elif isinstance(obj, tuple) and len(obj) == 2 and not all(
        isinstance(t, torch.Tensor) for t in obj
    ):
        test = _pair(*_tensors(obj[1], "test"), "test")
        ta, tb = _halves(*_pair(*_tensors(obj[0], "train"), "train"), 0.5, seed)
    else:
        rest, test = _halves(*_pair(*_tensors(obj, "whole"), "whole"), 0.2, seed)
        ta, tb = _halves(*rest, 0.5, seed + 1)
    for part, what in ((ta, "train_a"), (tb, "train_b"), (test, "test")):
        if len(part[1]) == 0:
            raise NasError(f"data: the {what} split is empty")
    classes = extra.get("classes", 1 + max(int(t[1].max()) for t in (ta, tb, test)))
    channels = extra.get("in_channels", ta[0].shape[1])
    for key, v in (("classes", classes), ("in_channels", channels)):
        if isinstance(v, bool) or not isinstance(v, int | torch.Tensor) or int(v) < 1:
            raise NasError(f"data: {key} must be a positive integer, not {v!r}")
    return validate(Splits(
        name=str(extra.get("name", name)),
        classes=int(classes),
        in_channels=int(channels),
        train_a=ta,
        train_b=tb,
        test=test,
    ))


def _user_function(spec: str):
    """``module:function`` or ``path/to/file.py:function``."""
    mod_name, _, fn_name = spec.rpartition(":")
    if not mod_name or not fn_name.isidentifier():
        raise NasError(f"data: {spec!r} is not module:function")
    what = f"your data module {mod_name!r}"
    if mod_name.endswith(".py") or "/" in mod_name:
        path = Path(mod_name)
        if not path.is_file():
            raise NasError(f"data: no file {mod_name!r}")
        mspec = importlib.util.spec_from_file_location(f"_nasc_data_{path.stem}", path)
        module = importlib.util.module_from_spec(mspec)
        _theirs(what, lambda: mspec.loader.exec_module(module))
    else:
        if "" not in sys.path and str(Path.cwd()) not in sys.path:
            sys.path.insert(0, str(Path.cwd()))
        if importlib.util.find_spec(mod_name.partition(".")[0]) is None:
            raise NasError(f"data: cannot import {mod_name!r}: no such module")
        try:
            module = importlib.import_module(mod_name)
        except ModuleNotFoundError as e:
            if e.name and mod_name.startswith(e.name):
                raise NasError(f"data: cannot import {mod_name!r}: {e}") from None
            raise UserCodeError(what, e) from e
        except Exception as e:
            raise UserCodeError(what, e) from e
    fn = getattr(module, fn_name, None)
    if not callable(fn):
        raise NasError(f"data: {mod_name!r} has no function {fn_name!r}")
    return fn


def load_data(name: str, seed: int = 0, *, data_dir: str | Path | None = None,
              **options: Any) -> Splits:
    """A built-in data set by name, or ``module:function`` (also ``file.py:function``), checked
    by :func:`validate`.

    The user's function is called as ``function(seed=seed)`` when it takes a ``seed`` argument
    (else with no arguments) and returns anything :func:`as_splits` accepts; an exception it
    raises is reported as theirs (:class:`~nasc.dsl.diagnostics.UserCodeError`). The data sets
    read from files (:mod:`nasc.search.datasets`: ``cifar10``, ``cifar100``, ``imagenet``,
    ``cityscapes``) look in ``data_dir`` (default ``$NASC_DATA``, else ``~/.cache/nasc``) and
    take their ``options`` (e.g. ``classes=`` and ``fraction=`` for an ImageNet proxy), also
    written into the name as on the command line: ``imagenet,classes=100,fraction=0.1,size=64``
    (``size=256x512`` for a height and width, ``classes=n01440764+n01443537`` for named wnids).
    """
    from nasc.search import datasets

    if ":" in name:
        fn = _user_function(name)
        try:
            takes_seed = "seed" in inspect.signature(fn).parameters
        except (TypeError, ValueError):
            takes_seed = False
        spec = name
        result = _theirs(f"your data function {spec!r}",
                         lambda: fn(seed=seed) if takes_seed else fn())
        return as_splits(result, seed, name=name)
    name, options = datasets.parse_name(name, options)
    if name in datasets.FILES:
        return validate(datasets.FILES[name](datasets.data_dir(data_dir), seed, **options))
    if name not in DATASETS:
        known = sorted([*DATASETS, *datasets.FILES])
        raise NasError(f"no data set {name!r}{did_you_mean(name, known)}; built in: "
                       f"{', '.join(known)}, or module:function for your own")
    if options:
        raise NasError(f"data set {name!r} takes no options ({', '.join(sorted(options))})")
    return validate(DATASETS[name](seed))
