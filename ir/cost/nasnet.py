"""Cost models of the NASNet ops that darts_ops lacks (stdlib/nasnet_ops.nas; Zoph et al.,
CVPR 2018, §3), counted layer by layer as ``backends/torch/nasnet_ops.py`` builds them.

``conv_1xk_kx1``: conv ``(1, k)`` ``C_in -> C_in`` at (input height, output width), conv
``(k, 1)`` ``C_in -> C`` at the output size, BN(C). ``dilated_conv``: conv ``k x k`` ``C_in -> C``
at the output size (the dilation changes no count), BN(C).
"""

from __future__ import annotations

from nasc.ir.cost.table import BN, Conv, Layer, OpCall, OpCost


def conv_1xk_kx1_layers(c: OpCall) -> list[Layer]:
    """The layers of ``conv_1xk_kx1`` (see the module docstring)."""
    ci, co, k, (ho, wo) = c.c_in, c.p("C"), c.p("k"), c.out_hw
    mid = (c.hw_in[0], wo)
    return [Conv(ci, ci, (1, k), mid), Conv(ci, co, (k, 1), (ho, wo)), BN(co, c.bn_affine)]


def dilated_conv_layers(c: OpCall) -> list[Layer]:
    """The layers of ``dilated_conv`` (see the module docstring)."""
    return [Conv(c.c_in, c.p("C"), c.p("k", 3), c.out_hw), BN(c.p("C"), c.bn_affine)]


#: The table entries of stdlib/nasnet_ops.nas (merged into ``DEFAULT``).
NASNET_COSTS: dict[str, OpCost] = {
    "conv_1xk_kx1": OpCost.from_layers(conv_1xk_kx1_layers),
    "dilated_conv": OpCost.from_layers(dilated_conv_layers),
}
