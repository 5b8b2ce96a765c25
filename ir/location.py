"""Where something came from in a ``.nas`` file."""

from __future__ import annotations

import attrs


@attrs.frozen(kw_only=True, order=True, cache_hash=True)
class SourceLoc:
    """A span in a source file; lines and columns count from 1."""

    file: str
    line: int
    col: int
    end_line: int | None = None
    end_col: int | None = None

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"
