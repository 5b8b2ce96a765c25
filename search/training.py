"""Training pieces shared by ``nasc search`` and ``nasc train``: batch order, loss, accuracy,
random-number state, and the run directory writer.

The batch order of an epoch is a function of (seed, epoch, stream) alone, so a resumed run
finds its place from the epoch and batch number it checkpointed, with no iterator to restore.
Dense labels (N x H x W, segmentation) are handled by upsampling the logits to the labels' size
(bilinear, as DCNAS and HR-NAS do) before the per-pixel cross-entropy.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F


def order(n: int, seed: int, epoch: int, stream: int = 0) -> torch.Tensor:
    """The permutation of ``n`` examples for one epoch of one data stream."""
    gen = torch.Generator().manual_seed((seed * 1_000_003 + epoch) * 7_919 + stream)
    return torch.randperm(n, generator=gen, device="cpu")  # (indexes data on any device)


def batches_per_epoch(n: int, batch: int) -> int:
    return -(-n // batch)


def batch_at(x: torch.Tensor, y: torch.Tensor, perm: torch.Tensor, i: int, batch: int):
    idx = perm[i * batch : (i + 1) * batch]
    return x[idx], y[idx]


class Cycler:
    """Batch ``i`` of a stream that is cycled (re-shuffled each pass) to match another's length:
    trainB batches for the architecture steps of one trainA epoch."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch: int, seed: int, epoch: int,
                 stream: int) -> None:
        self.x, self.y, self.batch = x, y, batch
        self.seed, self.epoch, self.stream = seed, epoch, stream
        self.per = batches_per_epoch(len(y), batch)
        self._perms: dict[int, torch.Tensor] = {}

    def __getitem__(self, i: int):
        cycle, j = divmod(i, self.per)
        if cycle not in self._perms:
            self._perms = {cycle: order(len(self.y), self.seed, self.epoch,
                                        self.stream + 1_000 * cycle)}
        return batch_at(self.x, self.y, self._perms[cycle], j, self.batch)


def match(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Logits resized to dense labels' size (identity for image labels)."""
    if y.dim() == 3 and out.dim() == 4 and out.shape[-2:] != y.shape[-2:]:
        return F.interpolate(out, size=tuple(y.shape[-2:]), mode="bilinear", align_corners=False)
    return out


def loss_fn(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy per image, or per pixel for dense labels."""
    return F.cross_entropy(match(out, y), y)


def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 256) -> float:
    """Fraction of correct predictions (per pixel for dense labels), in eval mode."""
    was = model.training
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(y), batch):
            yb = y[i : i + batch]
            correct += (match(model(x[i : i + batch]), yb).argmax(1) == yb).sum().item()
    model.train(was)
    return correct / y.numel()


def rng_state(device: torch.device | str | None = None) -> dict[str, Any]:
    """Every global random state a training step may draw from (Gumbel noise, dropout), the
    generator of CUDA ``device`` included."""
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "random": random.getstate()}
    device = torch.device(device or "cpu")
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    try:
        import numpy as np

        state["numpy"] = np.random.get_state()
    except ImportError:  # pragma: no cover - numpy comes with torch and scikit-learn
        pass
    return state


def set_rng_state(state: dict[str, Any], device: torch.device | str | None = None) -> None:
    """Restore :func:`rng_state`; a CUDA generator's state only onto a CUDA ``device`` (a run
    resumed on another kind of device continues its CPU streams)."""
    torch.set_rng_state(state["torch"])
    random.setstate(state["random"])
    device = torch.device(device or "cpu")
    if "cuda" in state and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"], device)
    if "numpy" in state:
        import numpy as np

        np.random.set_state(state["numpy"])


class Writer:
    """Every file of a run directory, written in one place.

    Files are replaced atomically (written to ``NAME.tmp``, then renamed). With ``out=None`` or
    ``is_main=False`` (a non-zero rank of a distributed run) nothing is written.
    """

    def __init__(self, out: str | Path | None, *, is_main: bool = True) -> None:
        self.out = Path(out) if out is not None else None
        self.active = self.out is not None and is_main
        self._metrics = None
        if self.active:
            self.out.mkdir(parents=True, exist_ok=True)

    def start_metrics(self, rows: list[dict[str, Any]]) -> None:
        """(Re)start the JSON-lines metrics log with the rows so far (a resumed run's)."""
        if self.active:
            self._metrics = (self.out / "metrics.jsonl").open("w")
            for row in rows:
                self._metrics.write(json.dumps(row) + "\n")
            self._metrics.flush()

    def row(self, row: dict[str, Any]) -> None:
        if self._metrics is not None:
            self._metrics.write(json.dumps(row) + "\n")
            self._metrics.flush()

    def checkpoint(self, state: dict[str, Any], name: str = "checkpoint.pt") -> None:
        if self.active:
            path = self.out / name
            tmp = path.with_suffix(path.suffix + ".tmp")
            torch.save(state, tmp)
            os.replace(tmp, path)

    def text(self, name: str, text: str) -> None:
        if self.active:
            path = self.out / name
            tmp = path.with_suffix(path.suffix + ".tmp")
            tmp.write_text(text)
            os.replace(tmp, path)

    def path(self, name: str) -> Path | None:
        return self.out / name if self.active else None

    def close(self) -> None:
        if self._metrics is not None:
            self._metrics.close()
            self._metrics = None


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """A run's checkpoint (our own file: random states need more than tensors)."""
    return torch.load(path, map_location="cpu", weights_only=False)


def epochs_of(x: torch.Tensor, y: torch.Tensor, batch: int, seed: int, epoch: int, stream: int,
              start: int = 0) -> Iterator[tuple[int, tuple[torch.Tensor, torch.Tensor]]]:
    """``(i, batch)`` for batches ``start..`` of one epoch of a stream."""
    perm = order(len(y), seed, epoch, stream)
    for i in range(start, batches_per_epoch(len(y), batch)):
        yield i, batch_at(x, y, perm, i, batch)
