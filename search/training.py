"""Training pieces shared by ``nasc search`` and ``nasc train``: batch order, loss, accuracy,
random-number state, the run directory writer and the checkpoint reader.

The batch order of an epoch is a function of (seed, epoch, stream) alone, so a resumed run
finds its place from the epoch and batch number it checkpointed, with no iterator to restore.
Dense labels (N x H x W, segmentation) are handled by upsampling the logits to the labels' size
(bilinear, as DCNAS and HR-NAS do) before the per-pixel cross-entropy.

Checkpoints hold tensors and plain data only (dicts, lists, tuples, strings, numbers; the NumPy
random state as a list), and are read with ``torch.load(weights_only=True)``: a checkpoint from
elsewhere cannot run code. Each write keeps the checkpoint it replaces as ``checkpoint.prev.pt``.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from nasc.dsl.diagnostics import NasError
from nasc.dsl.files import check_regular
from nasc.search import rundir


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

        name, keys, pos, has_gauss, cached = np.random.get_state()
        state["numpy"] = (name, keys.tolist(), pos, has_gauss, cached)  # plain data
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

        name, keys, *rest = state["numpy"]
        np.random.set_state((name, np.asarray(keys, dtype=np.uint32), *rest))


class Writer:
    """Every file of a run directory, written in one place.

    Files are replaced atomically (written to ``NAME.tmp``, then renamed; a failed write removes
    its ``.tmp``); a checkpoint keeps the one it replaces as ``NAME.prev.pt``. With ``out=None``
    or ``is_main=False`` (a non-zero rank of a distributed run) nothing is written. The writer
    owns the directory until :meth:`close` (:func:`nasc.search.rundir.claim`): ``resume=False``
    refuses a directory that holds another run. ``stamp`` (:func:`nasc.search.rundir.stamp`) is
    recorded in every checkpoint as ``"digests"``.
    """

    def __init__(self, out: str | Path | None, *, is_main: bool = True, resume: bool = False,
                 command: str = "search", stamp: dict[str, str] | None = None) -> None:
        self.out = Path(out) if out is not None else None
        self.active = self.out is not None and is_main
        self.stamp = stamp
        self._metrics = None
        self._lock = rundir.claim(self.out, resume=resume, command=command) if self.active \
            else None

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
            if self.stamp is not None:
                state = {**state, "digests": self.stamp}
            buf = io.BytesIO()  # torch's own file writer turns ENOSPC and EFBIG into RuntimeError
            torch.save(state, buf)
            path = self.out / name
            self._replace(path, buf.getbuffer(), keep=previous(path))

    def text(self, name: str, text: str) -> None:
        if self.active:
            self._replace(self.out / name, text.encode("utf-8"))

    @staticmethod
    def _replace(path: Path, data: Any, keep: Path | None = None) -> None:
        tmp = path.with_name(path.name + ".tmp")
        try:
            with open(tmp, "wb") as f:
                f.write(data)
            if keep is not None and path.exists():  # the checkpoint before, kept intact
                kept = keep.with_name(keep.name + ".tmp")
                try:
                    os.link(path, kept)
                except OSError:  # no hard links here: a copy
                    import shutil

                    shutil.copyfile(path, kept)
                os.replace(kept, keep)
            os.replace(tmp, path)
        except BaseException as e:
            for leftover in (tmp, keep.with_name(keep.name + ".tmp") if keep else None):
                if leftover is not None:
                    leftover.unlink(missing_ok=True)
            if isinstance(e, OSError) and e.errno is not None:  # name the file, not its .tmp
                raise OSError(e.errno, e.strerror, str(path)) from None
            raise

    def path(self, name: str) -> Path | None:
        return self.out / name if self.active else None

    def close(self) -> None:
        if self._metrics is not None:
            self._metrics.close()
            self._metrics = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None


def previous(path: Path) -> Path:
    """Where the checkpoint before ``path`` is kept: ``checkpoint.pt`` -> ``checkpoint.prev.pt``."""
    return path.with_name(f"{path.stem}.prev{path.suffix}")


def _numpy_arrays() -> list[Any]:
    """What a NumPy array in a checkpoint written before the random state was stored as a list
    needs: the array and its numeric dtypes, nothing that can call code."""
    try:
        import numpy as np
    except ImportError:  # pragma: no cover
        return []
    core = getattr(np, "_core", None) or np.core
    dtypes = [type(np.dtype(t)) for t in (np.uint32, np.int64, np.float64)]
    return [core.multiarray._reconstruct, np.ndarray, np.dtype, *dtypes]


def load_checkpoint(path: str | Path, *, keys: tuple[str, ...] = ()) -> dict[str, Any]:
    """A run's checkpoint, read without running code (``weights_only=True``).

    A file that would need more than tensors and plain data is refused, naming the file; a
    damaged one (empty, truncated, not a checkpoint) is reported as such, with the previous
    checkpoint offered when it is intact. ``keys``: what the checkpoint must hold."""
    path = Path(path)
    ckpt = _load(path)
    missing = [k for k in keys if k not in ckpt]
    if missing:
        raise NasError(f"{path} is not a nasc run checkpoint (it has no {missing[0]!r})")
    return ckpt


def _load(path: Path) -> dict[str, Any]:
    st = check_regular(path)
    if st.st_size == 0:
        raise _damaged(path, "it is empty")
    try:
        with torch.serialization.safe_globals(_numpy_arrays()):
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "Unsupported global" in str(e) or "GLOBAL" in str(e):
            raise NasError(f"{path} holds Python objects that are not tensors or plain data; "
                           "nasc reads checkpoints without running code, so it refuses this "
                           "file (it was not written by nasc, or it was altered)") from None
        raise _damaged(path, "it cannot be read as a checkpoint") from None
    except MemoryError:
        raise
    except Exception as e:  # noqa: BLE001 - torch's reader: RuntimeError, EOFError, ...
        raise _damaged(path, _reason(e)) from None
    if not isinstance(ckpt, dict):
        raise _damaged(path, "it does not hold a checkpoint's dictionary")
    return ckpt


def _reason(e: BaseException) -> str:
    text = str(e).splitlines()[0] if str(e) else type(e).__name__
    if "PytorchStreamReader" in text or "zip" in text.lower() or isinstance(e, EOFError):
        return "it is truncated or not a checkpoint file"
    return text[:120]


def _damaged(path: Path, reason: str) -> NasError:
    prev = previous(path)
    offer = "start the run again in a new directory"
    if prev != path and prev.is_file():
        try:
            _load(prev)
            offer = (f"the previous checkpoint is intact: put it back (mv {prev} {path}) and "
                     "run the command again, or " + offer)
        except NasError:
            pass
    return NasError(f"the checkpoint {path} is damaged ({reason}); {offer}")


def epochs_of(x: torch.Tensor, y: torch.Tensor, batch: int, seed: int, epoch: int, stream: int,
              start: int = 0) -> Iterator[tuple[int, tuple[torch.Tensor, torch.Tensor]]]:
    """``(i, batch)`` for batches ``start..`` of one epoch of a stream."""
    perm = order(len(y), seed, epoch, stream)
    for i in range(start, batches_per_epoch(len(y), batch)):
        yield i, batch_at(x, y, perm, i, batch)
