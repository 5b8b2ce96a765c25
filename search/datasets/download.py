"""Where data sets live, and fetching an archive with its checksum verified.

The data directory is ``--data-dir``, else ``$NASC_DATA``, else ``~/.cache/nasc``. An archive
that is absent is downloaded (``*.PID.part`` while it comes, its MD5 compared with the published
one before it is kept) and extracted there (into a temporary folder renamed into place, so that
the processes of a ``torchrun`` can fetch at once); without a network the error says which path
was looked for and where the archive is to be had.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

import attrs
from nasc.dsl.diagnostics import NasError


def data_dir(given: str | Path | None = None) -> Path:
    """``given``, else ``$NASC_DATA``, else ``~/.cache/nasc``."""
    if given is not None and str(given) != "":
        return Path(given).expanduser()
    env = os.environ.get("NASC_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "nasc"


@attrs.frozen(kw_only=True)
class Archive:
    """A published archive: its URL, MD5 and the folder it extracts to."""

    title: str
    url: str
    md5: str
    folder: str

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]


def md5sum(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _extract(tar: Path, dest: Path) -> None:
    """Extract ``tar`` into ``dest``, refusing members that leave it (links, absolute paths)."""
    with tarfile.open(tar) as t:
        if hasattr(tarfile, "data_filter"):
            t.extractall(dest, filter="data")
            return
        root = dest.resolve()
        for m in t.getmembers():  # pragma: no cover - Pythons without extraction filters
            target = (dest / m.name).resolve()
            if not (m.isfile() or m.isdir()) or root not in (target, *target.parents):
                raise NasError(f"data: {tar} holds {m.name!r}, which would land outside {dest}")
        t.extractall(dest)  # noqa: S202 - members checked above


def ensure(archive: Archive, root: Path, *, timeout: float = 30.0) -> Path:
    """``root/archive.folder``, downloaded, verified and extracted first when absent."""
    folder = root / archive.folder
    if folder.is_dir():
        return folder
    tar = root / archive.filename
    if not tar.is_file():
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise NasError(f"data: {archive.title} is not in {folder}, and {root} cannot be "
                           f"created to download it into ({e.strerror})") from None
        part = tar.with_name(f"{tar.name}.{os.getpid()}.part")  # one per process (torchrun)
        print(f"downloading {archive.title} from {archive.url} to {tar}", file=sys.stderr)
        try:
            with urllib.request.urlopen(archive.url, timeout=timeout) as r, open(part, "wb") as f:
                shutil.copyfileobj(r, f, 1 << 20)
        except (urllib.error.URLError, OSError, ValueError) as e:
            part.unlink(missing_ok=True)
            reason = getattr(e, "reason", None) or e
            raise NasError(f"data: {archive.title} is not in {folder} and could not be "
                           f"downloaded from {archive.url} ({reason}); put the extracted "
                           f"{archive.filename} there or give --data-dir") from None
        got = md5sum(part)
        if got != archive.md5:
            part.unlink(missing_ok=True)
            raise NasError(f"data: the download of {archive.url} has MD5 {got}, not the published "
                           f"{archive.md5}; it was deleted, try again")
        os.replace(part, tar)
    else:
        got = md5sum(tar)
        if got != archive.md5:
            raise NasError(f"data: {tar} has MD5 {got}, not the published {archive.md5} of "
                           f"{archive.url}; delete it to download it again")
    # extracted beside, then renamed into place: a reader never sees half a folder
    tmp = root / f".{archive.folder}.{os.getpid()}.extract"
    try:
        _extract(tar, tmp)
        if not (tmp / archive.folder).is_dir():
            raise NasError(f"data: {tar} did not hold the folder {archive.folder}/")
        if not folder.is_dir():
            os.replace(tmp / archive.folder, folder)
    except tarfile.TarError as e:
        raise NasError(f"data: cannot extract {tar}: {e}") from None
    except OSError:
        if not folder.is_dir():  # another process put it there first: use theirs
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder
