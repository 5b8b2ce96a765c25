"""From spaces to PyTorch modules: ``nasc.instantiate``.

>>> import nasc
>>> space = nasc.load("nas_bench_201", N=1)
>>> net = nasc.instantiate(space, space.sample(0))
>>> "import nasc" in net.code
False
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import fx

from nasc.architecture import Architecture
from nasc.backends.torch.library import OpLibrary
from nasc.dsl.diagnostics import NasError
from nasc.ir.passes.align import insert_alignment
from nasc.lowering.fx import lower
from nasc.space import Space


def instantiate(
    space: Space,
    arch: Mapping[str, Any] | Architecture | None = None,
    *,
    library: OpLibrary | None = None,
    alignment: str = "dcnas",
) -> fx.GraphModule:
    """The discrete network of ``arch`` (or of a choice-free ``space``) as an fx GraphModule.

    Align nodes are lowered with their policy (``alignment`` when they name none).
    """
    if arch is None:
        if space.specs:
            raise NasError(f"space {space.name!r} has choices; give an architecture")
        resolved = space
    else:
        resolved = space.resolve(arch)
    g = insert_alignment(resolved.graph, policy=alignment)
    return lower(g, library=library, name=space.name)
