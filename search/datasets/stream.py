"""Batches of a split for the run loop: in memory or streamed, augmented or not.

:func:`batches` yields exactly the batches of :func:`nasc.search.training.epochs_of` (the same
order, a function of seed, epoch and stream, so a resumed run finds its place) and
:func:`cycled` those of :class:`nasc.search.training.Cycler`, with the data set's training
augmentation applied. Each batch's (in memory) or each sample's (streamed) augmentation draws
from a generator seeded by ``(seed, epoch, stream, position)``: the same on every resume and in
every DataLoader worker, and nothing reads the global random state.

Splits of image files (:class:`~nasc.search.datasets.lazy.Lazy`) stream through one DataLoader
per split: ``workers`` processes decode (persistent across epochs), pinned memory when the
device is a GPU, batches moved with ``non_blocking``. Its batch sampler is a plan set before
each epoch and iterated in the main process, so the persistent workers serve every epoch.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import torch
from nasc.search.datasets.lazy import Lazy
from nasc.search.training import batches_per_epoch, order
from torch.utils.data import DataLoader, Sampler

Batch = tuple[torch.Tensor, torch.Tensor]


def sample_seed(seed: int, epoch: int, stream: int, position: int) -> int:
    """The seed of one batch's (or sample's) augmentation."""
    return (((seed * 1_000_003 + epoch) * 7_919 + stream) * 100_003 + position) % (1 << 63)


def default_workers() -> int:
    """DataLoader worker processes for streamed splits: the cores, at most 8."""
    return max(1, min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                      else (os.cpu_count() or 1)))


class _Plan(Sampler):
    """A batch sampler whose batches are set before each pass."""

    def __init__(self) -> None:
        self.batches: list[list[tuple[int, int | None]]] = []

    def __iter__(self):
        return iter(list(self.batches))

    def __len__(self) -> int:
        return len(self.batches)


def _loader(files: Any, workers: int, pin: bool) -> tuple[DataLoader, _Plan]:
    cache = files.__dict__.setdefault("_loaders", {})
    key = (workers, pin)
    if key not in cache:
        plan = _Plan()
        cache[key] = (DataLoader(files, batch_sampler=plan, num_workers=workers,
                                 pin_memory=pin, persistent_workers=workers > 0), plan)
    return cache[key]


def _stream(x: Lazy, plan_batches: list[list[tuple[int, int | None]]], device, workers):
    device = torch.device(device or "cpu")
    workers = default_workers() if workers is None else workers
    loader, plan = _loader(x.files, workers, device.type == "cuda")
    plan.batches = plan_batches
    for xb, yb in loader:
        yield xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)


def _rows(perm: torch.Tensor, i: int, batch: int) -> list[int]:
    return perm[i * batch : (i + 1) * batch].tolist()


def _run(split: tuple[Any, Any], positions: list[tuple[int, torch.Tensor, int]], batch: int, *,
         seed: int, epoch: int, stream: int, augment: Any, retrain: bool, device,
         workers) -> Iterator[Batch]:
    """The batches ``(i, perm, j)``: batch ``j`` of permutation ``perm``, numbered ``i``."""
    x, y = split
    if isinstance(x, Lazy):
        plan = [[(r, sample_seed(seed, epoch, stream, i * batch + k) if augment else None)
                 for k, r in enumerate(_rows(perm, j, batch))] for i, perm, j in positions]
        yield from _stream(x, plan, device, workers)
        return
    for i, perm, j in positions:
        idx = perm[j * batch : (j + 1) * batch]
        xb, yb = x[idx], y[idx]
        if augment is not None and augment is not False:
            gen = torch.Generator().manual_seed(sample_seed(seed, epoch, stream, i))
            xb, yb = augment(xb, yb, gen, retrain=retrain)
        yield (xb, yb) if device is None else (xb.to(device), yb.to(device))


def _timed(it: Iterator[Batch], timings: dict[str, float] | None) -> Iterator[Batch]:
    """``it``, adding the seconds spent waiting for each batch to ``timings["data_s"]``."""
    while True:
        t0 = time.perf_counter()
        try:
            item = next(it)
        except StopIteration:
            return
        if timings is not None:
            timings["data_s"] = timings.get("data_s", 0.0) + time.perf_counter() - t0
        yield item


def _augment(splits: Any, which: str, augment: bool) -> Any:
    if not augment:
        return None
    return True if isinstance(getattr(splits, which)[0], Lazy) else splits.augment


def batches(splits: Any, which: str, batch: int, *, seed: int, epoch: int, stream: int,
            start: int = 0, augment: bool = True, retrain: bool = False,
            device: torch.device | str | None = None, workers: int | None = None,
            timings: dict[str, float] | None = None) -> Iterator[tuple[int, Batch]]:
    """``(i, (x, y))`` for batches ``start..`` of one epoch of split ``which`` (``"train_a"``,
    ``"train_b"``, ``"test"`` or ``"train"``) of :class:`~nasc.search.data.Splits`: the batches of
    :func:`~nasc.search.training.epochs_of`, augmented unless ``augment=False`` (``retrain``:
    with the retraining extras, cutout for CIFAR). ``timings["data_s"]`` (when given)
    accumulates the seconds the loop waited for data."""
    split = getattr(splits, which)
    per = batches_per_epoch(len(split[1]), batch)
    perm = order(len(split[1]), seed, epoch, stream)
    positions = [(i, perm, i) for i in range(start, per)]
    out = _run(split, positions, batch, seed=seed, epoch=epoch, stream=stream,
               augment=_augment(splits, which, augment), retrain=retrain, device=device,
               workers=workers)
    yield from zip(range(start, per), _timed(out, timings))


def cycled(splits: Any, which: str, batch: int, *, seed: int, epoch: int, stream: int,
           start: int, stop: int, augment: bool = True, device: torch.device | str | None = None,
           workers: int | None = None, timings: dict[str, float] | None = None
           ) -> Iterator[Batch]:
    """Batches ``start..stop-1`` of split ``which`` cycled (re-shuffled each pass) as
    :class:`~nasc.search.training.Cycler` indexes them: trainB batches for the architecture
    steps of one trainA epoch."""
    split = getattr(splits, which)
    n = len(split[1])
    per = batches_per_epoch(n, batch)
    perms: dict[int, torch.Tensor] = {}
    positions = []
    for i in range(start, stop):
        cycle, j = divmod(i, per)
        if cycle not in perms:
            perms[cycle] = order(n, seed, epoch, stream + 1_000 * cycle)
        positions.append((i, perms[cycle], j))
    yield from _timed(_run(split, positions, batch, seed=seed, epoch=epoch, stream=stream,
                           augment=_augment(splits, which, augment), retrain=False,
                           device=device, workers=workers), timings)


def evaluation(splits: Any, which: str, batch: int = 256, *,
               device: torch.device | str | None = None,
               workers: int | None = None) -> Iterator[Batch]:
    """Split ``which`` in its order, unaugmented, in batches (for accuracy and confusion)."""
    split = getattr(splits, which)
    n = len(split[1])
    perm = torch.arange(n)
    positions = [(i, perm, i) for i in range(batches_per_epoch(n, batch))]
    yield from _run(split, positions, batch, seed=0, epoch=0, stream=0, augment=None,
                    retrain=False, device=device, workers=workers)


def accuracy(model: torch.nn.Module, splits: Any, which: str, batch: int = 256, *,
             device: torch.device | str | None = None, workers: int | None = None) -> float:
    """Fraction of correct predictions (per pixel for dense labels; pixels labelled
    :data:`~nasc.search.data.IGNORE` are not counted), in eval mode."""
    from nasc.search.data import IGNORE
    from nasc.search.training import match

    was = model.training
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for xb, yb in evaluation(splits, which, batch, device=device, workers=workers):
            keep = yb != IGNORE
            correct += ((match(model(xb), yb).argmax(1) == yb) & keep).sum().item()
            total += keep.sum().item()
    model.train(was)
    return correct / max(total, 1)
