"""nasc: a compiler for neural-architecture-search spaces.

Write a space once in a ``.nas`` file; nasc parses it into a typed graph IR with choice nodes,
counts and samples its architectures, and (in the backend) lowers it to PyTorch supernets and
discrete networks.

>>> import nasc
>>> nasc.load("darts").count()
1076746950455072400
"""

import importlib
import importlib.abc
import importlib.util
import sys

from nasc.architecture import Architecture
from nasc.dsl.diagnostics import InternalError, NascError, NasError
from nasc.dsl.elaborate import Limits
from nasc.space import Choice, OpSpec, Space, declare_op, load, parse


def canonical_hash(space: Space, arch=None) -> str:
    """A hex digest equal for two architectures of ``space`` exactly when they select the same
    network (docs/unique.md); ``arch`` may be left out for a resolved space.

    >>> import nasc
    >>> s = nasc.load("nas_bench_201", N=1)
    >>> a = nasc.Architecture.from_nas_bench_201(
    ...     "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|none~0|none~1|skip_connect~2|")
    >>> b = nasc.Architecture.from_nas_bench_201(
    ...     "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|skip_connect~1|none~2|")
    >>> nasc.canonical_hash(s, a) == nasc.canonical_hash(s, b) == s.resolve(a).canonical_hash()
    True
    """
    return space.canonical_hash(arch)


# the search engine's modules live in nasc.search; their old names stay importable
# (``import nasc.recipes``, ``nasc.hrnas.derive``) as the same module objects, imported lazily
_MOVED = ("data", "distributed", "hrnas", "multitrial", "pictures", "profile", "recipes",
          "strategies", "training")


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """``nasc.<name>`` for a module moved to ``nasc.search.<name>``: the same module object."""

    def find_spec(self, fullname, path, target=None):
        prefix, _, name = fullname.rpartition(".")
        if prefix == "nasc" and name in _MOVED:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        return importlib.import_module(f"nasc.search.{spec.name.rpartition('.')[2]}")

    def exec_module(self, module) -> None:
        pass


if not any(isinstance(f, _MovedModules) for f in sys.meta_path):
    sys.meta_path.append(_MovedModules())


def __getattr__(name: str):
    # the PyTorch-facing API imports torch only when first used
    if name in ("instantiate", "compile", "METHODS"):
        from nasc import build

        return getattr(build, name)
    if name in _MOVED or name == "search":
        return importlib.import_module(f"nasc.search.{name}" if name != "search"
                                       else "nasc.search")
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
    "canonical_hash",
    "compile",
    "declare_op",
    "instantiate",
    "load",
    "parse",
]

__version__ = "0.1.0"
