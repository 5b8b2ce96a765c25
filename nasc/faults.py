"""Whose fault an error is, for the command line: the user's input, the environment, the user's
own code, or nasc (:mod:`nasc.dsl.diagnostics` has the error classes).

* the user's input: :class:`~nasc.dsl.diagnostics.NasError` (located where a location is known);
* the environment: ``OSError`` (disk full, permissions, the file size limit, a missing
  directory: one line naming the path), ``MemoryError`` and torch's allocation failures;
* the user's own code: :class:`~nasc.dsl.diagnostics.UserCodeError`, or any exception raised in a
  Python file that is neither nasc's nor Python's nor an installed package's (their data
  function, their op implementations): their traceback from their first frame on, as theirs;
* nasc: everything else, "internal error ... (this is a bug in nasc)", exit status 2.

>>> from nasc.dsl.diagnostics import NasError
>>> classify(NasError("no such space"))
(1, 'error: no such space')
>>> classify(FileNotFoundError(2, "No such file or directory", "out/x.py"))
(1, 'error: out/x.py: No such file or directory')
>>> classify(KeyError("boom"))[0]
2
"""

from __future__ import annotations

import errno
import os
import sys
import traceback
from pathlib import Path

from nasc.dsl.diagnostics import NascError, UserCodeError


def classify(e: BaseException) -> tuple[int, str]:
    """The exit status and the message for ``e``: 1 for the user's input, the environment and
    the user's code, 2 for a bug in nasc."""
    if isinstance(e, UserCodeError):
        return 1, f"error: {e}\n{their_traceback(e.error)}"
    if isinstance(e, NascError):
        return 1, str(e)
    if isinstance(e, OSError):
        return 1, f"error: {os_error(e)}"
    if isinstance(e, RecursionError):
        return 1, "error: input too complex to process (RecursionError)"
    if isinstance(e, MemoryError):
        return 1, "error: out of memory (the space or the data is too large for this machine)"
    if out_of_memory(e):
        return 1, f"error: out of memory: {str(e).strip().splitlines()[0][:200]}"
    if isinstance(e, SyntaxError) and theirs(e.filename):
        return 1, (f"error: {e.filename}:{e.lineno}:{e.offset or 1}: your code does not parse: "
                   f"{e.msg}")
    if user_frames(e.__traceback__):
        return 1, f"error: your code raised {type(e).__name__}: {e}\n{their_traceback(e)}"
    return 2, (f"internal error: {type(e).__name__}: {e}\n(this is a bug in nasc; rerun with "
               "NASC_DEBUG=1 for a traceback)")


_HINTS = {errno.ENOSPC: "the device is full", errno.EFBIG: "over the file size limit, ulimit -f",
          errno.EDQUOT: "the disk quota", errno.EROFS: "a read-only file system"}


def os_error(e: OSError) -> str:
    """One line: the path(s), what the system said, and what it means where that helps."""
    what = e.strerror or str(e) or type(e).__name__
    hint = _HINTS.get(e.errno)
    what += f" ({hint})" if hint and hint not in what else ""
    paths = [str(p) for p in (e.filename, e.filename2) if p is not None]
    return f"{' -> '.join(paths)}: {what}" if paths else what


def out_of_memory(e: BaseException) -> bool:
    """torch's failure to allocate (a CPU allocation's RuntimeError, CUDA's OutOfMemoryError)."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(e, getattr(torch, "OutOfMemoryError", ())):
        return True
    return isinstance(e, RuntimeError) and "can't allocate memory" in str(e)


def _library_dirs() -> tuple[str, ...]:
    """Where nasc and Python's own modules live: a frame elsewhere is the user's code."""
    import sysconfig

    import nasc
    import nasc.backends
    import nasc.dsl
    import nasc.ir
    import nasc.lowering
    import nasc.search

    dirs = {str(Path(m.__file__).resolve().parent) for m in
            (nasc, nasc.backends, nasc.dsl, nasc.ir, nasc.lowering, nasc.search)}
    paths = sysconfig.get_paths()
    dirs |= {str(Path(paths[k]).resolve()) for k in ("stdlib", "platstdlib", "purelib",
                                                       "platlib") if k in paths}
    dirs |= {str(Path(p).resolve()) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    return tuple(d + os.sep for d in dirs)


def theirs(filename: str | None, ours: tuple[str, ...] | None = None) -> bool:
    """Whether ``filename`` is a file of the user's own Python (not nasc's, not Python's)."""
    if not filename or filename.startswith("<"):
        return False
    return not str(Path(filename).resolve()).startswith(ours or _library_dirs())


def user_frames(tb) -> list[traceback.FrameSummary]:
    """The frames of ``tb`` in the user's own files (their data function, their ops)."""
    ours = _library_dirs()
    return [f for f in traceback.extract_tb(tb) if theirs(f.filename, ours)]


def their_traceback(error: BaseException) -> str:
    """``error``'s traceback from the first frame in the user's code: their code, as theirs."""
    frames = traceback.extract_tb(error.__traceback__)
    user = user_frames(error.__traceback__)
    if user:
        frames = frames[frames.index(user[0]):]
    lines = ["Traceback (most recent call last, in your code):\n"]
    lines += traceback.format_list(frames)
    lines += traceback.format_exception_only(type(error), error)
    return "".join(lines)
