"""Reading a file a user named, safely: only a regular file, at most a limit of bytes.

A path may name a FIFO (opening it for reading waits for a writer forever), a device
(``/dev/zero`` never ends), a directory or a symlink loop. :func:`read_regular` refuses all of
them before reading: the file is opened without blocking (``O_NONBLOCK``: a FIFO swapped in
after the check opens at once instead of waiting), checked on the open descriptor, and read up
to ``limit + 1`` bytes, so that an oversized file is refused without reading it whole. Problems
of the file are :class:`NasError` s naming the path; the file's content is never quoted.

>>> read_regular("/dev/null", 10)
Traceback (most recent call last):
...
nasc.dsl.diagnostics.NasError: error: cannot read /dev/null: not a regular file (a character device)
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from nasc.dsl.diagnostics import NasError

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"))


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a file")


def check_regular(path: str | Path) -> os.stat_result:
    """``os.stat(path)`` of a regular file, else a :class:`NasError` saying what it is."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise NasError(f"cannot read {path}: {e.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise NasError(f"cannot read {path}: not a regular file ({_kind(st.st_mode)})")
    return st


def read_regular(path: str | Path, limit: int | None) -> bytes:
    """The bytes of the regular file ``path``, refused when over ``limit`` bytes (``None``: no
    limit). The limit is checked while reading: a file that grows or lies about its size is
    read no further than ``limit + 1`` bytes."""
    check_regular(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError as e:
        raise NasError(f"cannot read {path}: {e.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):  # replaced between the check and the open
            raise NasError(f"cannot read {path}: not a regular file ({_kind(st.st_mode)})")
        if limit is not None and st.st_size > limit:
            raise NasError(f"cannot read {path}: it is {st.st_size:,} bytes; the limit is "
                           f"{limit:,}")
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read() if limit is None else f.read(limit + 1)
    except OSError as e:
        raise NasError(f"cannot read {path}: {e.strerror}") from None
    finally:
        os.close(fd)
    if limit is not None and len(data) > limit:
        raise NasError(f"cannot read {path}: it is over the limit of {limit:,} bytes")
    return data
