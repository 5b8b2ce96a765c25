"""Cost models of the HR-NAS searching-block ops (stdlib/hrnas_ops.nas; Ding et al., §3.1–3.3),
counted layer by layer as the torch modules of ``backends/torch/hrnas_ops.py`` build them.

``mixconv``: per branch ``k`` with ``c_k > 0`` hidden channels: 1x1 ``C_in -> c_k`` (at the input
size), BN, ``k x k`` depthwise (at the output size), BN, 1x1 ``c_k -> C``; one BN(C) after the sum
when some branch is left; the residual 1x1 conv with ``gcd(C_in, C)`` groups unless the stride is
1 and the width kept. One hidden channel of branch ``k`` costs ``C_in*H*W + k*k*h*w + C*h*w``
MACs: the ``op.n_macs / hidden_channel`` penalty of the authors' ``utils/prune.py`` (the paper's
eq. 6 keeps only the ``k*k*h*w`` term).

``transformer`` (``n`` tokens of ``D = s*s`` dimensions, ``h`` heads of ``d``, FFN width ``ffn*D``):
projector 1x1 ``(C_in + 2) -> n`` at ``s x s`` + BN(n); encoder and decoder each with the
attention ``W^Q, W^K, W^V, W^O`` (``4*D*h*d`` weights; ``4*n*D*h*d + 2*n*n*h*d`` MACs: §3.1's
``O(4nds^2 + 2n^2 d)``), the FFN ``D -> ffn*D -> D`` with biases (``2*n*ffn*D*D`` MACs: ``O(8ns^4)``
for ``ffn = 4``) and two LayerNorms; ``n*D`` learnt queries; inverse projector 1x1 ``n -> C`` at
``s x s`` + BN(C). ``n = 0`` costs nothing (the path is removed, §3.3).
"""

from __future__ import annotations

import math

from nasc.ir.cost.table import BN, Conv, Layer, OpCall, OpCost

#: Kernel size of each MixConv branch and the op parameter holding its hidden width.
KERNELS = ((3, "c3"), (5, "c5"), (7, "c7"))


def mixconv_layers(c: OpCall) -> list[Layer]:
    """The layers of ``mixconv`` (see the module docstring)."""
    ci, co, stride = c.c_in, c.p("C"), c.p("stride", 1)
    out: list[Layer] = []
    for k, name in KERNELS:
        w = c.p(name)
        if w:
            out += [Conv(ci, w, 1, c.hw_in), BN(w), Conv(w, w, k, c.out_hw, groups=w), BN(w),
                    Conv(w, co, 1, c.out_hw)]  # fmt: skip
    if out:
        out.append(BN(co))
    if not (stride == 1 and ci == co):
        out.append(Conv(ci, co, 1, c.out_hw, groups=math.gcd(ci, co)))
    return out


def _transformer_dims(c: OpCall) -> tuple[int, int, int, int, int]:
    s = c.p("s", 8)
    return c.p("n"), s * s, c.p("d", 64) * c.p("h", 1), c.p("ffn", 4) * s * s, s


def transformer_params(c: OpCall) -> int:
    n, D, hd, F, _ = _transformer_dims(c)
    if n == 0:
        return 0
    layer = 4 * D * hd + (D * F + F) + (F * D + D) + 2 * 2 * D  # attention, FFN, 2 LayerNorms
    return (c.c_in + 2) * n + 2 * n + 2 * layer + n * D + n * c.p("C") + 2 * c.p("C")


def transformer_macs(c: OpCall) -> int:
    n, D, hd, F, s = _transformer_dims(c)
    if n == 0:
        return 0
    layer = 4 * n * D * hd + 2 * n * n * hd + 2 * n * D * F  # §3.1: O(4nds^2 + 2n^2 d) + O(8ns^4)
    return (c.c_in + 2) * n * s * s + 2 * layer + n * c.p("C") * s * s


#: The table entries of stdlib/hrnas_ops.nas (merged into ``DEFAULT``).
HRNAS_COSTS: dict[str, OpCost] = {
    "mixconv": OpCost.from_layers(mixconv_layers),
    "transformer": OpCost(params=transformer_params, macs=transformer_macs),
    "upsample_nearest": OpCost.from_layers(lambda c: []),
}
