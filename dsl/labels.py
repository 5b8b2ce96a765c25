"""The label table: every decision of a space, by label, and the values of its value choices.

One label is one decision: a label used in several places must name the same kind of choice
over the same options each time (DARTS cells share their edge decisions this way).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
from nasc.dsl.diagnostics import NasError, Sources
from nasc.dsl.values import show
from nasc.ir.location import SourceLoc


@attrs.define(kw_only=True)
class LabelInfo:
    kind: str  # "op", "value", "input" or "repeat"
    options: tuple[Any, ...]
    loc: SourceLoc
    extra: tuple[Any, ...] = ()


class LabelTable:
    """The decisions met so far. ``domains`` maps each value choice's label to its values (what
    symbolic values are checked over)."""

    def __init__(self, sources: Sources, error: Callable[..., NasError]) -> None:
        self.sources = sources
        self.error = error
        self.info: dict[str, LabelInfo] = {}
        self.domains: dict[str, tuple[Any, ...]] = {}

    def register(
        self, label: str, kind: str, options: tuple, loc: SourceLoc, extra: tuple = ()
    ) -> None:
        """Record a use of ``label``; a second use must be the same decision."""
        info = self.info.get(label)
        if info is None:
            self.info[label] = LabelInfo(kind=kind, options=options, loc=loc, extra=extra)
            if kind == "value":
                self.domains[label] = options
            return
        if info.kind != kind or info.options != options or info.extra != extra:
            raise self.error(
                f"label {label!r} names two different decisions: a {kind} choice of "
                f"{_opts(options)} here, a {info.kind} choice of {_opts(info.options)} before",
                loc,
                [self.sources.note(info.loc, "first used here")],
            )


def _opts(options: tuple) -> str:
    shown = ", ".join(show(o) for o in options[:6])
    return "{" + shown + (", ..." if len(options) > 6 else "") + "}"


__all__ = ["LabelInfo", "LabelTable"]
