"""IR passes: pure functions ``Graph -> Graph`` and the manager that composes them.

Each pass is registered with what it requires, provides and removes; :class:`PassManager` checks
a whole pipeline against the input graph before the first pass runs (``PassManager.check``), and
with ``verify_each=True`` (as in the tests) the IR verifier runs after every pass.
"""

from nasc.ir.passes.align import insert_alignment
from nasc.ir.passes.batch import batch_kernels
from nasc.ir.passes.cse import cse
from nasc.ir.passes.drop_path import elide_drop_path
from nasc.ir.passes.importance import derive_units, relax_importance, unit_deltas
from nasc.ir.passes.manager import Pass, PassError, PassManager, registered
from nasc.ir.passes.prune import prune_collapsed
from nasc.ir.passes.relax import pick_sources, relax
from nasc.ir.passes.sample import draw, partial_channels, rebalance, sample
from nasc.ir.passes.shrink import shrink

__all__ = [
    "Pass",
    "PassError",
    "PassManager",
    "batch_kernels",
    "cse",
    "derive_units",
    "draw",
    "elide_drop_path",
    "insert_alignment",
    "partial_channels",
    "pick_sources",
    "prune_collapsed",
    "rebalance",
    "registered",
    "relax",
    "relax_importance",
    "sample",
    "shrink",
    "unit_deltas",
]
