"""Tensor types: layout, channels and spatial stride relative to the network input.

>>> t = TensorType.image(32, 4)
>>> str(t)
'image[C=32, s=4]'
>>> t.with_channels(64).channels
64
"""

from __future__ import annotations

import enum
from typing import Any

import attrs
from nasc.ir.sym import Sym


class Layout(enum.Enum):
    """How a tensor is laid out: NCHW images, NC vectors, or N×T×C token sequences."""

    IMAGE = "image"
    VECTOR = "vector"
    TOKENS = "tokens"


def _check_dim(inst: Any, attribute: attrs.Attribute, value: Any) -> None:
    if isinstance(value, Sym):
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{attribute.name} must be a positive integer, got {value!r}")


@attrs.frozen(kw_only=True, cache_hash=True)
class TensorType:
    """The type of a tensor flowing along an IR edge.

    ``channels`` and ``stride`` may be symbolic (:class:`~nasc.ir.sym.Sym`) when a value choice
    decides them. ``stride`` is the spatial down-sampling factor relative to the network input
    (1, 2, 4, ... 32); it is 1 for vectors.
    """

    layout: Layout
    channels: int | Sym = attrs.field(validator=_check_dim)
    stride: int | Sym = attrs.field(default=1, validator=_check_dim)

    @staticmethod
    def image(channels: int | Sym, stride: int | Sym = 1) -> TensorType:
        return TensorType(layout=Layout.IMAGE, channels=channels, stride=stride)

    @staticmethod
    def vector(channels: int | Sym) -> TensorType:
        return TensorType(layout=Layout.VECTOR, channels=channels)

    @staticmethod
    def tokens(channels: int | Sym, stride: int | Sym = 1) -> TensorType:
        return TensorType(layout=Layout.TOKENS, channels=channels, stride=stride)

    def with_channels(self, channels: int | Sym) -> TensorType:
        return attrs.evolve(self, channels=channels)

    def __str__(self) -> str:
        if self.layout is Layout.VECTOR:
            return f"vector[C={self.channels}]"
        return f"{self.layout.value}[C={self.channels}, s={self.stride}]"
