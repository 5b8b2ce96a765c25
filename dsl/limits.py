"""What elaboration may ask for: the bounds (:class:`Limits`) and the running counts against
them (:class:`Budget`). A program that exceeds a bound gets a located error, not a hang or a
memory blow-up.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import attrs
from nasc.dsl.diagnostics import NasError
from nasc.ir.location import SourceLoc

#: How many decisions of the value choices reaching a check are tried: past this many
#: combinations, a fixed-seed sample of them (always with the first and last value of every
#: choice; :func:`nasc.ir.sym.sampled_assignments`). ``require`` clauses, channel counts and
#: strides, divisors and enumerated parameters are checked this way.
CHECKED_ASSIGNMENTS = 4096


@attrs.frozen(kw_only=True)
class Limits:
    """Bounds on elaboration. Every one is checked where it could be exceeded."""

    max_nodes: int = 200_000
    max_steps: int = 1_000_000  # loop iterations, comprehension items and calls together
    max_alloc: int = 20_000_000  # list items and string characters created, in all
    max_call_depth: int = 64
    max_int: int = (1 << 63) - 1
    max_list: int = 100_000
    max_str: int = 10_000
    max_options: int = 10_000


Error = Callable[..., NasError]  # (message, loc=None) -> NasError, located by the elaborator


class Budget:
    """The counts of one elaboration against its :class:`Limits`; each check raises the
    located error that ``error`` makes (``loc=None``: where the elaborator is)."""

    def __init__(self, limits: Limits, error: Error) -> None:
        self.limits = limits
        self.error = error
        self.steps = 0
        self.alloc = 0
        self.depth = 0

    def step(self, loc: SourceLoc | None = None) -> None:
        """One loop iteration, comprehension item or call."""
        self.steps += 1
        if self.steps > self.limits.max_steps:
            raise self.error(
                f"elaboration takes over {self.limits.max_steps} steps (loop iterations and "
                "calls); the space is too large to build",
                loc,
            )

    def node(self, count: int) -> None:
        """Before adding a node to a graph of ``count`` nodes."""
        if count >= self.limits.max_nodes:
            raise self.error(
                f"the space has over {self.limits.max_nodes} nodes; the limit keeps elaboration "
                "bounded"
            )

    def int_(self, v: Any, loc: SourceLoc) -> Any:
        """``v``, checked against the integer bound when it is an integer."""
        if isinstance(v, int) and not isinstance(v, bool) and abs(v) > self.limits.max_int:
            raise self.error(f"integer {v} exceeds the limit of {self.limits.max_int}", loc)
        return v

    def string(self, n: int, loc: SourceLoc | None) -> None:
        """A string of ``n`` characters is about to be made."""
        if n > self.limits.max_str:
            raise self.error(f"string longer than {self.limits.max_str} characters", loc)

    def range_(self, n: int, loc: SourceLoc) -> None:
        """A range of ``n`` items is about to be listed."""
        if n > self.limits.max_list:
            raise self.error(f"a range of {n} items exceeds {self.limits.max_list}", loc)

    def options(self, options: Any, loc: SourceLoc) -> None:
        if len(options) > self.limits.max_options:
            raise self.error(f"a choice with over {self.limits.max_options} options", loc)

    def created(self, v: list | str, loc: SourceLoc | None = None) -> None:
        """A list or string ``v`` was made: its length counts against the allocation bound."""
        if isinstance(v, list) and len(v) > self.limits.max_list:
            raise self.error(f"a list longer than {self.limits.max_list} items", loc)
        self.alloc += len(v)
        if self.alloc > self.limits.max_alloc:
            raise self.error(
                f"elaboration built over {self.limits.max_alloc} list items and string "
                "characters; the space is too large to build",
                loc,
            )

    @contextmanager
    def call(self, loc: SourceLoc) -> Iterator[None]:
        """Inside one more nested block call."""
        if self.depth >= self.limits.max_call_depth:
            raise self.error(f"calls nested deeper than {self.limits.max_call_depth}", loc)
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1


__all__ = ["CHECKED_ASSIGNMENTS", "Budget", "Limits"]
