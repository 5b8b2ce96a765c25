"""Run directories: one owner at a time, never overwritten silently, resumed only against the
same space and data, and read without running code.

* Ownership. A run holds ``run.lock`` in its directory for as long as it writes there: an
  exclusive ``flock`` on the file, which holds the owner's pid and host. A second ``nasc search``
  (or ``train``, ``derive``) into the same directory stops at once with an error naming the
  owner. The kernel drops the lock when the owner dies, so the lock of a killed run (a *stale*
  lock) is taken over by the next run; where the file system has no ``flock``, a lock whose pid
  is dead on this host is taken over.
* Reruns. A directory that holds a run's files (:data:`RUN_FILES`) is only written by a run that
  continues it (``--resume``, ``nasc derive``); any other run into it is refused, with what to do
  instead, before anything is changed.
* Resume checks. Each checkpoint records the digests of the elaborated search space (its
  printed IR, without source locations) and of the data (:func:`stamp`); ``--resume`` and
  ``nasc derive`` refuse a run whose space file or data changed since it started.

>>> stamp_space("space s(C: int = 4) { input x: image(3) output x }")[:7]
'sha256:'
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from nasc.dsl.diagnostics import NasError

#: The files whose presence makes a directory a run's.
RUN_FILES = ("checkpoint.pt", "report.json", "metrics.jsonl", "architecture.json")
LOCK = "run.lock"


class Lock:
    """The lock of one run directory, held from :func:`claim` until :meth:`release`."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path, self._fd = path, fd

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.unlink(self.path)  # while still held: no other run sees a file it could take
        except OSError:
            pass
        os.close(self._fd)
        self._fd = None

    def __del__(self) -> None:  # a run that failed before its writer closed
        if getattr(self, "_fd", None) is not None:
            os.close(self._fd)


def claim(out: Path, *, resume: bool, command: str) -> Lock:
    """Make ``out`` this run's: create it, lock it, and refuse to overwrite another run's files
    unless the run continues them (``resume``)."""
    if out.exists() and not out.is_dir():
        raise NasError(f"--out {out} is a file, not a directory")
    out.mkdir(parents=True, exist_ok=True)
    lock = _acquire(out / LOCK)
    if not resume:
        found = [name for name in RUN_FILES if (out / name).exists()]
        if found:
            lock.release()
            finished = (out / "report.json").exists()
            raise NasError(
                f"{out} already holds a {'finished' if finished else 'started'} run "
                f"({', '.join(found)}); nothing was changed. Choose another --out"
                + ("" if command != "search" or finished else
                   ", or continue that run with --resume")
                + (", or remove the directory to replace it" if finished else ""))
    return lock


def _owner() -> dict[str, Any]:
    return {"pid": os.getpid(), "host": socket.gethostname()}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _acquire(path: Path) -> Lock:
    import fcntl

    for _ in range(8):  # the file may be removed by its owner between our open and our lock
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                holder = _read_owner(fd)
                os.close(fd)
                raise _busy(path.parent, holder) from None
            holder = _read_owner(fd)  # no flock here: judge the owner by its pid
            if holder and holder != _owner() and (holder.get("host") != socket.gethostname()
                                                  or _alive(int(holder.get("pid", 0)))):
                os.close(fd)
                raise _busy(path.parent, holder) from None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if not same:
            os.close(fd)
            continue
        os.ftruncate(fd, 0)
        os.write(fd, (json.dumps(_owner()) + "\n").encode())
        return Lock(path, fd)
    raise NasError(f"cannot lock {path}: it keeps being replaced")


def _read_owner(fd: int) -> dict[str, Any] | None:
    try:
        data = os.pread(fd, 4096, 0)
        owner = json.loads(data.decode("utf-8"))
        return owner if isinstance(owner, dict) else None
    except (OSError, ValueError):
        return None


def _busy(out: Path, holder: dict[str, Any] | None) -> NasError:
    who = (f"process {holder.get('pid')} on {holder.get('host')}" if holder else
           "another process")
    return NasError(f"{out} is in use by another nasc run ({who}); wait for it to finish, or "
                    "choose another --out")


# ---- digests -----------------------------------------------------------------------------------
def stamp_space(space: Any) -> str:
    """The digest of a space's printed IR without source locations: any change of the space
    file that changes what is searched (op order, labels, widths) changes it; a comment or a
    moved line does not."""
    from nasc.ir.printer import print_graph

    printed = space if isinstance(space, str) else print_graph(space.graph, locations=False)
    return "sha256:" + hashlib.sha256(printed.encode("utf-8")).hexdigest()


def stamp_data(splits: Any) -> str:
    """The digest of a run's data: every split's tensors, bytes, shapes and types; for a split
    read lazily from image files (:mod:`nasc.search.datasets`), which files in which order (their
    contents are not read: an ImageNet is too large to hash at every start)."""
    h = hashlib.sha256()
    h.update(f"{splits.classes} {splits.in_channels}".encode())
    for part in (splits.train_a, splits.train_b, splits.test):
        for t in part:
            if not isinstance(t, torch.Tensor):
                h.update(f"{type(t).__name__} {getattr(t, 'side', '')} {tuple(t.shape)};"
                         .encode())
                h.update(repr(getattr(getattr(t, "files", None), "items", None)).encode())
                continue
            t = t.detach().cpu().contiguous()
            h.update(f"{tuple(t.shape)} {t.dtype};".encode())
            h.update(memoryview(t.view(-1).view(torch.uint8).numpy()))
    return "sha256:" + h.hexdigest()


def stamp(space: Any, splits: Any) -> dict[str, str]:
    """What a run's checkpoints record of its inputs (see :func:`check`)."""
    return {"space": stamp_space(space), "data": stamp_data(splits)}


def check(recorded: Mapping[str, str] | None, now: Mapping[str, str], out: Path | str) -> None:
    """Refuse to continue the run in ``out`` when its space or data changed since it started
    (a checkpoint without digests, written before they were recorded, is not checked)."""
    for key, what in (("space", "the search space (its .nas file or a file it imports)"),
                      ("data", "the data")):
        if recorded and key in recorded and key in now and recorded[key] != now[key]:
            raise NasError(f"{out}: {what} changed since the run started; its saved state "
                           "belongs to the old one. Restore it, or start a new run in another "
                           "--out")


# ---- a checkpoint's configuration --------------------------------------------------------------
_CONFIG = {"space": str, "method": str, "seed": int, "common": dict, "search_sizes": dict,
           "retrain_sizes": dict, "space_params": dict, "settings": dict}


def checked_config(ckpt: Mapping[str, Any], path: Path) -> dict[str, Any]:
    """A checkpoint's run configuration, its fields of the types a run writes, and its space
    read as a run's space may be (:func:`nasc.space.recorded_space`): a stdlib name or a
    ``.nas`` file, never any other file the configuration might name."""
    from nasc.space import recorded_space

    cfg = ckpt.get("config")
    if not isinstance(cfg, dict) or not isinstance(ckpt.get("state"), dict):
        raise NasError(f"{path} is not a nasc run checkpoint (no configuration)")
    for key, kind in _CONFIG.items():
        if not isinstance(cfg.get(key), kind):
            raise NasError(f"{path}: the run configuration's {key!r} is missing or not a "
                           f"{kind.__name__}; the file was not written by nasc search")
    return {**cfg, "space": recorded_space(cfg["space"], what=str(path))}
