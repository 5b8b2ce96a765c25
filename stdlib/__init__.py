"""The standard library of spaces and op declarations, as ``.nas`` files beside this module."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def path_of(name: str) -> Path | None:
    """The ``.nas`` file of stdlib module ``name``, or ``None``."""
    p = resources.files(__name__) / f"{name}.nas"
    return Path(str(p)) if p.is_file() else None


def names() -> list[str]:
    """Every stdlib module name."""
    return sorted(
        Path(str(p)).stem for p in resources.files(__name__).iterdir() if p.name.endswith(".nas")
    )
