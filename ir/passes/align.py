"""Shape alignment: lower every ``Align`` node to the ops of an alignment policy.

An ``Align`` node (written ``align(x, channels=C, stride=s, policy=...)`` in a space) says "bring
``x`` to this type"; this pass decides how, by the node's policy or the pass's default:

* ``"darts"`` — DARTS cell preprocessing: ``factorized_reduce`` per halving of the resolution,
  ``relu_conv_bn`` (1×1) for a change of width alone (Liu et al., DARTS, §2.1; quark0/darts).
* ``"dcnas"`` — the DCNAS shape-alignment layer ``H`` (eq. 4): one strided 3×3 conv per halving
  down (the paper is silent on the widths in between; they follow HRNet's fuse layers, which
  DCNAS builds on: the input's width until the last conv, which maps to the target's), bilinear
  upsampling followed by a 1×1 conv up, a 1×1 conv for the width alone, nothing when the
  shapes already agree.
* ``"hrnas"`` — HR-NAS/HRNet fusion: strided 3×3 convs down, a 1×1 conv then upsampling up.

DenseNAS head layers are searchable (a mixture of MBConv candidates per incoming branch), so they
are part of the space, written with ``choose`` in ``densenas.nas``, not produced by this pass.
The pass is idempotent: its output has no ``Align`` node left.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs
from nasc.ir.graph import Graph
from nasc.ir.nodes import Align, Op
from nasc.ir.passes.manager import Pass, PassError, register
from nasc.ir.types import Layout, TensorType

Step = tuple[str, tuple[tuple[str, object], ...], TensorType]


def _halvings(src: int, dst: int) -> int | None:
    """``m`` with ``src * 2**m == dst`` (``-m`` for upsampling), or ``None``."""
    m, s = 0, src
    if dst >= src:
        while s < dst:
            s, m = s * 2, m + 1
        return m if s == dst else None
    while s > dst:
        if s % 2:
            return None
        s, m = s // 2, m - 1
    return m if s == dst else None


def _darts(a: TensorType, b: TensorType) -> list[Step] | None:
    m = _halvings(a.stride, b.stride)
    if m is None or m < 0:
        return None
    steps: list[Step] = []
    t = a
    for _ in range(m):
        t = TensorType.image(b.channels, t.stride * 2)
        steps.append(("factorized_reduce", (("C", b.channels),), t))
    if t.channels != b.channels:
        steps.append(
            ("relu_conv_bn", (("C", b.channels), ("k", 1), ("stride", 1), ("padding", 0)), b)
        )
    return steps


def _conv(C, k: int, stride: int, t: TensorType) -> Step:
    return ("conv_bn_act", (("C", C), ("k", k), ("stride", stride), ("act", "relu")), t)


def _up(factor: int, t: TensorType) -> Step:
    return ("upsample", (("factor", factor),), t)


def _dcnas(a: TensorType, b: TensorType) -> list[Step] | None:
    m = _halvings(a.stride, b.stride)
    if m is None:
        return None
    steps: list[Step] = []
    t = a
    if m > 0:  # HRNet's fuse-layer chain: the input width until the last halving
        for i in range(m):
            c = b.channels if i == m - 1 else a.channels
            t = TensorType.image(c, t.stride * 2)
            steps.append(_conv(c, 3, 2, t))
        return steps
    if m < 0:
        t = TensorType.image(a.channels, b.stride)
        steps.append(_up(2**-m, t))
    if t.channels != b.channels:
        steps.append(_conv(b.channels, 1, 1, b))
    return steps


def _hrnas(a: TensorType, b: TensorType) -> list[Step] | None:
    m = _halvings(a.stride, b.stride)
    if m is None:
        return None
    if m >= 0:
        return _dcnas(a, b)
    return [_conv(b.channels, 1, 1, TensorType.image(b.channels, a.stride)), _up(2**-m, b)]


POLICIES: dict[str, Callable[[TensorType, TensorType], list[Step] | None]] = {
    "darts": _darts,
    "dcnas": _dcnas,
    "hrnas": _hrnas,
}


def insert_alignment(g: Graph, *, policy: str = "dcnas") -> Graph:
    """Replace every ``Align`` node by its policy's ops (``policy`` is the default)."""
    out = g.copy()
    for rec in g.nodes_of(Align):
        name = rec.policy or policy
        where = f"{rec.loc}: " if rec.loc is not None else ""
        if name not in POLICIES:
            hint = "; DenseNAS head layers are written in the space" if name == "densenas" else ""
            raise PassError(
                f"{where}no alignment policy {name!r} (known: {', '.join(sorted(POLICIES))}){hint}"
            )
        (src,) = out.inputs(rec.id)  # an earlier Align input is already lowered in ``out``
        a, b = out[src].type, rec.type
        steps = None
        if a.layout is Layout.IMAGE and b.layout is Layout.IMAGE:
            steps = POLICIES[name](a, b)
        if steps is None:
            raise PassError(f"{where}policy {name!r} cannot align {a} to {b}")
        prev = src
        for op, params, ty in steps:
            prev = out.add(Op, [prev], type=ty, op=op, params=params, guard=rec.guard, loc=rec.loc)
        out.redirect(rec.id, prev)
        out.remove(rec.id)
    return out.renumbered()


register(Pass(name="insert_alignment", fn=insert_alignment, provides=frozenset({"aligned"})))

__all__ = ["POLICIES", "insert_alignment", "attrs"]
