"""Bulk construction without the cyclic garbage collector's pauses.

Building a large IR graph or supernet allocates hundreds of thousands of small, long-lived
containers (node records, adjacency dicts, module hook tables). Each allocation burst triggers
the cyclic collector, which walks every live container; on the DCNAS space at L = 14 that was
a third of module construction. Nothing built here is cyclic garbage, so the collector is
paused for the duration and resumes (and catches up) afterwards.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic collector inside the block (nesting-safe; reference counting, which
    frees almost everything, is unaffected)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
