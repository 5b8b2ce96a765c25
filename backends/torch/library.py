"""The op library: how each IR op becomes an ``nn.Module``.

A builder receives an :class:`OpCall` (the op's name, its parameters, the types of its tensor
inputs and of its output) and returns a module whose ``forward`` takes the tensor inputs in
order. Users add their own ops to a library of their own::

    lib = default_library().extended({"my_op": lambda call: MyModule(call.params["C"])})
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs
from nasc.ir.types import TensorType
from torch import nn


@attrs.frozen(kw_only=True)
class OpCall:
    """One op node as a builder sees it.

    ``affine``: whether the batch norms *inside* composite ops learn a scale and shift (the
    DARTS search network builds its cells with ``affine=False``; ``batch_norm`` nodes carry
    their own ``affine`` parameter and ignore this). ``search``: building a supernet candidate
    (DARTS follows pools with an affine-free BN there).
    """

    op: str
    params: Mapping[str, Any]
    in_types: tuple[TensorType, ...]
    out_type: TensorType
    affine: bool = True
    search: bool = False

    @property
    def c_in(self) -> int:
        return int(self.in_types[0].channels)

    @property
    def c_out(self) -> int:
        return int(self.out_type.channels)


Builder = Callable[[OpCall], nn.Module]


class OpLibrary:
    """A mapping op name -> builder. Immutable: :meth:`extended` returns a new library."""

    def __init__(self, builders: Mapping[str, Builder]) -> None:
        self._builders = dict(builders)

    def extended(self, builders: Mapping[str, Builder]) -> OpLibrary:
        return OpLibrary({**self._builders, **builders})

    def __contains__(self, op: str) -> bool:
        return op in self._builders

    def names(self) -> list[str]:
        return sorted(self._builders)

    def build(self, call: OpCall) -> nn.Module:
        builder = self._builders.get(call.op)
        if builder is None:
            raise KeyError(
                f"no PyTorch implementation of op {call.op!r}; add one with "
                "OpLibrary.extended({name: builder})"
            )
        return builder(call)


def default_library() -> OpLibrary:
    """Every stdlib op (see :mod:`nasc.backends.torch.ops`)."""
    from nasc.backends.torch.ops import BUILDERS

    return OpLibrary(BUILDERS)
