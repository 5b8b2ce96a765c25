"""nasc: a compiler for neural-architecture-search spaces.

Write a space once in a ``.nas`` file; nasc parses it into a typed graph IR with choice nodes,
counts and samples its architectures, and (in the backend) lowers it to PyTorch supernets and
discrete networks.

>>> import nasc
>>> nasc.load("darts").count()
1076746950455072400
"""

from nasc.architecture import Architecture
from nasc.dsl.diagnostics import InternalError, NascError, NasError
from nasc.dsl.elaborate import Limits
from nasc.space import Choice, OpSpec, Space, declare_op, load, parse


def __getattr__(name: str):
    # the PyTorch-facing API imports torch only when first used
    if name in ("instantiate", "compile", "METHODS"):
        from nasc import build

        return getattr(build, name)
    raise AttributeError(f"module 'nasc' has no attribute {name!r}")

__all__ = [
    "Architecture",
    "Choice",
    "InternalError",
    "Limits",
    "NasError",
    "NascError",
    "OpSpec",
    "Space",
    "compile",
    "declare_op",
    "instantiate",
    "load",
    "parse",
]

__version__ = "0.1.0"
