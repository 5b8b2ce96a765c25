"""PyTorch modules of the NASNet candidate ops that darts_ops lacks (stdlib/nasnet_ops.nas;
Zoph et al., CVPR 2018, §3).

* ``conv_1xk_kx1`` — the "1x3 then 3x1" and "1x7 then 7x1" convolutions: conv ``(1, k)`` with
  stride ``(1, s)`` ``C_in -> C_in``, conv ``(k, 1)`` with stride ``(s, 1)`` ``C_in -> C``, both
  without bias, then BN(C), as quark0/darts ``cnn/operations.py`` writes ``conv_7x1_1x7``
  (whose leading ReLU is a node of its own here).
* ``dilated_conv`` — the "3x3 dilated convolution": one full ``k x k`` conv with the dilation
  (padding ``dilation * (k - 1) / 2``, no bias) ``C_in -> C``, then BN(C).

The BNs are affine unless the call's ``affine`` is off (the DARTS-family search networks).
"""

from __future__ import annotations

from nasc.backends.torch.conv import make_conv2d
from nasc.backends.torch.library import OpCall
from torch import nn

__all__ = ["NASNET_BUILDERS", "conv_1xk_kx1", "dilated_conv"]


def conv_1xk_kx1(call: OpCall) -> nn.Module:
    """conv (1,k) C_in->C_in, conv (k,1) C_in->C, BN(C), with the stride split between them."""
    k, s, c_in, c = call.params["k"], call.params.get("stride", 1), call.c_in, call.params["C"]
    return nn.Sequential(
        make_conv2d(c_in, c_in, (1, k), stride=(1, s), padding=(0, k // 2), bias=False),
        make_conv2d(c_in, c, (k, 1), stride=(s, 1), padding=(k // 2, 0), bias=False),
        nn.BatchNorm2d(c, affine=call.affine),
    )


def dilated_conv(call: OpCall) -> nn.Module:
    """A full k x k conv with dilation (no bias), then BN(C)."""
    k, d = call.params.get("k", 3), call.params.get("dilation", 2)
    c = call.params["C"]
    return nn.Sequential(
        make_conv2d(call.c_in, c, k, stride=call.params.get("stride", 1),
                    padding=d * (k - 1) // 2, dilation=d, bias=False),  # fmt: skip
        nn.BatchNorm2d(c, affine=call.affine),
    )


#: The builders of stdlib/nasnet_ops.nas (merged into ``BUILDERS``).
NASNET_BUILDERS = {"conv_1xk_kx1": conv_1xk_kx1, "dilated_conv": dilated_conv}
