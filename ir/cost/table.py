"""The cost table: what a cost function sees (:class:`OpCall`), the reference layers it counts
(:class:`Conv`, :class:`BN`, :class:`Linear`), and the op name → :class:`OpCost` mapping.

A table is an explicit, immutable object: :data:`nasc.ir.cost.DEFAULT` covers the stdlib ops,
and ``DEFAULT.with_op(name, params=..., macs=...)`` gives a new table with a user's op added.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

import attrs

#: The costs every table entry answers; a table may add others (a latency look-up table).
KINDS = ("params", "macs", "memory")


class CostError(ValueError):
    """A cost cannot be computed: an op without a cost model, a choice left in the graph, ..."""


# ---- what a cost function sees -------------------------------------------------------------
@attrs.frozen(kw_only=True)
class OpCall:
    """One op call with concrete parameters and shapes, as a cost function sees it.

    ``in_hw``/``out_hw`` are spatial sizes (``(1, 1)`` for vectors). ``bn_affine`` says whether
    the BN layers inside composite ops (sep_conv, relu_conv_bn, mbconv, ...) have affine
    parameters.

    >>> call = OpCall(op="conv2d", params=(("C", 8), ("k", 3)), in_channels=(4,),
    ...               in_hw=((32, 32),), out_channels=8, out_hw=(32, 32))
    >>> call.p("k"), call.c_in, call.out_elements
    (3, 4, 8192)
    """

    op: str
    params: tuple[tuple[str, Any], ...] = ()
    in_channels: tuple[int, ...] = ()
    in_hw: tuple[tuple[int, int], ...] = ()
    out_channels: int = 0
    out_hw: tuple[int, int] = (1, 1)
    bn_affine: bool = True

    def p(self, name: str, default: Any = None) -> Any:
        """The parameter ``name`` (``default`` when the call does not set it)."""
        return next((v for k, v in self.params if k == name), default)

    @property
    def c_in(self) -> int:
        """Channels of the first input (0 for an op without inputs)."""
        return self.in_channels[0] if self.in_channels else 0

    @property
    def hw_in(self) -> tuple[int, int]:
        return self.in_hw[0] if self.in_hw else self.out_hw

    @property
    def out_elements(self) -> int:
        return self.out_channels * self.out_hw[0] * self.out_hw[1]


CostFn = Callable[[OpCall], int]


def output_elements(call: OpCall) -> int:
    """The default memory cost of an op: the elements of its output tensor."""
    return call.out_elements


# ---- layers: the reference modules, counted -----------------------------------------------
def _pair(k: int | tuple[int, int]) -> tuple[int, int]:
    return (k, k) if isinstance(k, int) else (int(k[0]), int(k[1]))


@attrs.frozen
class Conv:
    """``nn.Conv2d(c_in, c_out, k, groups=groups, bias=bias)`` producing ``hw`` pixels."""

    c_in: int
    c_out: int
    k: int | tuple[int, int]
    hw: tuple[int, int]
    groups: int = 1
    bias: bool = False

    @property
    def params(self) -> int:
        kh, kw = _pair(self.k)
        return self.c_out * (self.c_in // self.groups) * kh * kw + (self.c_out if self.bias else 0)

    @property
    def macs(self) -> int:
        kh, kw = _pair(self.k)
        return self.hw[0] * self.hw[1] * self.c_out * (self.c_in // self.groups) * kh * kw


@attrs.frozen
class BN:
    """``nn.BatchNorm2d(c, affine=affine)``: weight and bias when affine; no MACs counted."""

    c: int
    affine: bool = True

    @property
    def params(self) -> int:
        return 2 * self.c if self.affine else 0

    macs = 0


@attrs.frozen
class Linear:
    """``nn.Linear(c_in, c_out, bias=bias)``."""

    c_in: int
    c_out: int
    bias: bool = True

    @property
    def params(self) -> int:
        return self.c_in * self.c_out + (self.c_out if self.bias else 0)

    @property
    def macs(self) -> int:
        return self.c_in * self.c_out


Layer = Conv | BN | Linear


# ---- table ---------------------------------------------------------------------------------
@attrs.frozen(kw_only=True)
class OpCost:
    """The cost functions of one op; ``other`` holds further kinds, e.g. ``("latency", lut)``.

    >>> c = OpCost.from_layers(lambda call: [Conv(call.c_in, call.p("C"), 1, call.out_hw)])
    >>> c.params(OpCall(op="pw", params=(("C", 4),), in_channels=(2,)))
    8
    """

    params: CostFn
    macs: CostFn
    memory: CostFn = output_elements
    other: tuple[tuple[str, CostFn], ...] = ()

    def fn(self, kind: str) -> CostFn | None:
        if kind in KINDS:
            return getattr(self, kind)
        return dict(self.other).get(kind)

    @staticmethod
    def from_layers(layers: Callable[[OpCall], Sequence[Layer]]) -> OpCost:
        """Params and MACs summed over the reference layers ``layers(call)`` builds."""
        return OpCost(
            params=lambda call: sum(layer.params for layer in layers(call)),
            macs=lambda call: sum(layer.macs for layer in layers(call)),
        )


@attrs.frozen(eq=False)
class CostTable:
    """Op name → :class:`OpCost`. Immutable: extending gives a new table.

    >>> from nasc.ir.cost import DEFAULT
    >>> mine = DEFAULT.with_op("my_op", params=lambda c: 4 * c.c_in, macs=lambda c: 0)
    >>> "my_op" in mine, "my_op" in DEFAULT
    (True, False)
    """

    ops: Mapping[str, OpCost] = attrs.field(converter=lambda m: MappingProxyType(dict(m)))

    def __getitem__(self, name: str) -> OpCost:
        try:
            return self.ops[name]
        except KeyError:
            close = difflib.get_close_matches(name, sorted(self.ops), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise CostError(
                f"no cost model for op {name!r}{hint}; register one with "
                f"table.with_op({name!r}, params=..., macs=...) and pass table="
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self.ops

    def names(self) -> list[str]:
        return sorted(self.ops)

    def with_op(
        self,
        name: str,
        cost: OpCost | None = None,
        *,
        params: CostFn | None = None,
        macs: CostFn | None = None,
        memory: CostFn = output_elements,
        **other: CostFn,
    ) -> CostTable:
        """This table plus ``name``: an :class:`OpCost`, or its functions by keyword."""
        if cost is None:
            if params is None or macs is None:
                raise CostError(f"op {name!r}: give an OpCost, or both params= and macs=")
            cost = OpCost(params=params, macs=macs, memory=memory, other=tuple(other.items()))
        return self.extended({name: cost})

    def extended(self, more: Mapping[str, OpCost] | CostTable) -> CostTable:
        """This table with the entries of ``more`` added (replacing same-named ones)."""
        extra = more.ops if isinstance(more, CostTable) else more
        return CostTable({**self.ops, **extra})
