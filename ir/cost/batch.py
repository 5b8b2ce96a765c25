"""Cost models of the kernel-size batches made by :mod:`nasc.ir.passes.batch`.

A batch ``sep_conv_batch(x, C, ks=[3, 5], ...)`` holds the weights of the candidates it
replaced and nothing else, so its parameters are exactly the sum of theirs; its ``"macs"`` are
the candidates' too, so that costing a graph before or after the pass gives one answer (its
output is the candidates' outputs side by side, so ``"memory"`` agrees as well). What the
backend *executes* is more: every depthwise kernel runs zero-padded to the largest kernel size
(``backends/torch/batched.py``); :func:`padded_macs` counts that.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import attrs
from nasc.ir.cost.table import Conv, CostError, Layer, OpCall

Layers = Callable[[OpCall], Sequence[Layer]]


def candidate_calls(c: OpCall) -> list[OpCall]:
    """The single-op calls a batch ``c`` stands for: ``ks`` replaced by each ``k``, the output
    split evenly."""
    ks = c.p("ks")
    per = c.out_channels // len(ks)
    return [
        attrs.evolve(c, params=tuple(("k", k) if n == "ks" else (n, v) for n, v in c.params),
                     out_channels=per)
        for k in ks
    ]


def batched(layers: Layers) -> Layers:
    """The layers of a batch: the candidates' layers, one after the other."""

    def of(c: OpCall) -> list[Layer]:
        return [layer for call in candidate_calls(c) for layer in layers(call)]

    return of


def padded_macs(c: OpCall) -> int:
    """Multiply-adds the batched module of call ``c`` (``sep_conv_batch``, ...) runs: every
    depthwise conv at the largest kernel size."""
    from nasc.ir.cost.stdlib import _LAYERS  # (stdlib registers the batches' costs from here)

    if not c.op.endswith("_batch") or c.op[: -len("_batch")] not in _LAYERS:
        raise CostError(f"padded_macs: {c.op!r} is not a kernel-size batch")
    k_max = max(c.p("ks"))
    total = 0
    for layer in batched(_LAYERS[c.op[: -len("_batch")]])(c):
        if isinstance(layer, Conv) and layer.groups > 1 and layer.groups == layer.c_in:
            layer = attrs.evolve(layer, k=k_max)
        total += layer.macs
    return total


__all__ = ["batched", "candidate_calls", "padded_macs"]
