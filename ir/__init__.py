"""The typed graph IR of nasc: tensor types, choice nodes, the verifier and the printer.

Nothing in this package imports torch: the IR describes a search space, the backends run it.
"""

from nasc.ir.graph import Graph
from nasc.ir.guards import Atom, Guard
from nasc.ir.nodes import (
    Align,
    Input,
    InputChoice,
    Merge,
    Node,
    Op,
    OpChoice,
    Output,
    RepeatChoice,
    ValueChoice,
)
from nasc.ir.sym import Sym
from nasc.ir.types import Layout, TensorType
from nasc.ir.verify import verify

__all__ = [
    "Align",
    "Atom",
    "Graph",
    "Guard",
    "Input",
    "InputChoice",
    "Layout",
    "Merge",
    "Node",
    "Op",
    "OpChoice",
    "Output",
    "RepeatChoice",
    "Sym",
    "TensorType",
    "ValueChoice",
    "verify",
]
