"""Cost models of the stdlib ops (stdlib/nn.nas, darts_ops.nas, nas_bench_201.nas,
mobile_ops.nas), each written as the list of layers of its PyTorch reference module.

References: DARTS ops as in quark0/darts ``cnn/operations.py`` and ``cnn/model.py``
(``AuxiliaryHeadCIFAR``); NAS-Bench-201 ``ReLUConvBN`` (D-X-Y/AutoDL-Projects); MobileNetV2
``InvertedResidual`` (Sandler et al., 2018). Composite ops' BN layers are affine when the call's
``bn_affine`` is (the DARTS *search* network builds them with ``affine=False``); the
``batch_norm`` op follows its own ``affine`` parameter. Pools, activations, ``none`` and
identity have no parameters and no MACs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from nasc.ir.cost.batch import batched
from nasc.ir.cost.hrnas import HRNAS_COSTS
from nasc.ir.cost.nasnet import NASNET_COSTS
from nasc.ir.cost.table import BN, Conv, CostTable, Layer, Linear, OpCall, OpCost


# ---- the stdlib ops (stdlib/nn.nas, darts_ops.nas, nas_bench_201.nas, mobile_ops.nas) -------
def _factorized_reduce(c: OpCall) -> list[Layer]:
    """DARTS FactorizedReduce: ReLU, two 1x1 stride-2 convs to C/2 each, concat, BN(C)."""
    half = c.p("C") // 2
    return [
        Conv(c.c_in, half, 1, c.out_hw),
        Conv(c.c_in, half, 1, c.out_hw),
        BN(c.p("C"), c.bn_affine),
    ]


def _skip_connect(c: OpCall) -> list[Layer]:
    """DARTS: Identity at stride 1, FactorizedReduce at stride 2."""
    return [] if c.p("stride", 1) == 1 else _factorized_reduce(c)


def _sep_conv(k: int | None = None) -> Callable[[OpCall], list[Layer]]:
    """DARTS SepConv: [ReLU, dw kxk stride, 1x1 C_in->C_in, BN(C_in)] then the same at stride 1
    ending in 1x1 C_in->C, BN(C). ``k=None`` reads the call's ``k`` (the ``sep_conv`` op, whose
    leading ReLU is a node of its own)."""

    def layers(c: OpCall) -> list[Layer]:
        ci, co, hw, k_ = c.c_in, c.p("C"), c.out_hw, c.p("k") if k is None else k
        return [
            Conv(ci, ci, k_, hw, groups=ci), Conv(ci, ci, 1, hw), BN(ci, c.bn_affine),
            Conv(ci, ci, k_, hw, groups=ci), Conv(ci, co, 1, hw), BN(co, c.bn_affine),
        ]  # fmt: skip

    return layers


def _dil_conv(k: int | None = None) -> Callable[[OpCall], list[Layer]]:
    """DARTS DilConv: ReLU, dw kxk dilation 2 with the stride, 1x1 C_in->C, BN(C) (the
    dilation changes no count). ``k=None`` reads the call's ``k`` (the ``dil_conv`` op)."""

    def layers(c: OpCall) -> list[Layer]:
        ci, co, hw, k_ = c.c_in, c.p("C"), c.out_hw, c.p("k") if k is None else k
        return [Conv(ci, ci, k_, hw, groups=ci), Conv(ci, co, 1, hw), BN(co, c.bn_affine)]

    return layers


def _conv_7x1_1x7(c: OpCall) -> list[Layer]:
    """DARTS conv_7x1_1x7: ReLU, conv (1,7) stride (1,s) C_in->C_in, conv (7,1) stride (s,1)
    C_in->C, BN(C)."""
    ci, co, (ho, wo) = c.c_in, c.p("C"), c.out_hw
    mid = (c.hw_in[0], wo)
    return [Conv(ci, ci, (1, 7), mid), Conv(ci, co, (7, 1), (ho, wo)), BN(co, c.bn_affine)]


def _conv_bn(k: int | None = None) -> Callable[[OpCall], list[Layer]]:
    """conv k x k C_in->C without bias, then BN(C): relu_conv_bn, conv_bn (NAS-Bench-201
    ReLUConvBN after its ReLU node), nor_conv_kxk, conv_bn_act (activations count nothing)."""

    def layers(c: OpCall) -> list[Layer]:
        kk = c.p("k", 1) if k is None else k
        return [Conv(c.c_in, c.p("C"), kk, c.out_hw), BN(c.p("C"), c.bn_affine)]

    return layers


def _auxiliary_head_cifar(c: OpCall) -> list[Layer]:
    """DARTS AuxiliaryHeadCIFAR: ReLU, AvgPool(5, stride 3), conv 1x1 C->128, BN(128), ReLU,
    conv 2x2 128->768, BN(768), ReLU, Linear(768, classes) (8x8 input -> 2x2 -> 1x1)."""
    (h, w), aff = c.hw_in, c.bn_affine
    pooled = (max(0, (h - 5) // 3 + 1), max(0, (w - 5) // 3 + 1))
    out = (max(0, pooled[0] - 1), max(0, pooled[1] - 1))
    return [
        Conv(c.c_in, 128, 1, pooled), BN(128, aff),
        Conv(128, 768, 2, out), BN(768, aff), Linear(768, c.p("classes")),
    ]  # fmt: skip


def make_divisible(v: float, divisor: int) -> int:
    """The MobileNet rounding (tensorflow/models slim ``_make_divisible``, also OFA's
    ``ofa.utils.make_divisible``): the nearest multiple of ``divisor``, at least ``divisor``,
    never more than 10 % below ``v``.

    >>> make_divisible(18, 8), make_divisible(30, 8), make_divisible(84, 8), make_divisible(18, 1)
    (24, 32, 88, 18)
    """
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


def se_channels(hidden: int, divisor: int = 1) -> int:
    """Squeeze width of the mbconv SE block: ``hidden // 4`` rounded by :func:`make_divisible` to
    ``divisor`` (SE with reduction 4 on the expanded width, both 1x1 convs with bias). Divisor 1
    (the default) is ``max(1, hidden // 4)`` as in MnasNet/ProxylessNAS; MobileNetV3 and OFA use 8
    (``se_divisor=8`` on ``mbconv``)."""
    return make_divisible(hidden // 4, divisor)


def _mbconv(c: OpCall) -> list[Layer]:
    """MobileNetV2 inverted residual (Sandler et al.): [1x1 C_in->e*C_in, BN, act] when e != 1;
    dw kxk with the stride, BN, act; optional SE; 1x1 e*C_in->C, BN. The residual adds nothing."""
    ci, co, k, e, aff = c.c_in, c.p("C"), c.p("k", 3), c.p("e", 6), c.bn_affine
    hidden = e * ci
    out: list[Layer] = []
    if e != 1:
        out += [Conv(ci, hidden, 1, c.hw_in), BN(hidden, aff)]
    out += [Conv(hidden, hidden, k, c.out_hw, groups=hidden), BN(hidden, aff)]
    if c.p("se", False):
        r = se_channels(hidden, c.p("se_divisor", 1))
        out += [Conv(hidden, r, 1, (1, 1), bias=True), Conv(r, hidden, 1, (1, 1), bias=True)]
    return out + [Conv(hidden, co, 1, c.out_hw), BN(co, aff)]


def _conv2d(c: OpCall) -> list[Layer]:
    return [Conv(c.c_in, c.p("C"), c.p("k", 3), c.out_hw, c.p("groups", 1), c.p("bias", False))]


def _batch_norm(c: OpCall) -> list[Layer]:
    """The ``batch_norm`` op follows its own ``affine`` parameter, not ``bn_affine``."""
    return [BN(c.c_in, bool(c.p("affine", True)))]


def _linear(c: OpCall) -> list[Layer]:
    return [Linear(c.c_in, c.p("out"), bool(c.p("bias", True)))]


_ZERO = ("relu", "relu6", "hswish", "sigmoid", "dropout", "drop_path", "max_pool", "avg_pool",
         "global_avg_pool", "upsample", "none", "max_pool_3x3", "avg_pool_3x3")  # fmt: skip
_LAYERS: dict[str, Callable[[OpCall], Sequence[Layer]]] = {
    **{name: (lambda c: []) for name in _ZERO},
    "conv2d": _conv2d,
    "batch_norm": _batch_norm,
    "linear": _linear,
    "skip_connect": _skip_connect,
    "factorized_reduce": _factorized_reduce,
    "relu_conv_bn": _conv_bn(),
    "conv_bn": _conv_bn(),
    "sep_conv": _sep_conv(),
    "dil_conv": _dil_conv(),
    **{f"sep_conv_{k}x{k}": _sep_conv(k) for k in (3, 5, 7)},
    **{f"dil_conv_{k}x{k}": _dil_conv(k) for k in (3, 5)},
    "conv_7x1_1x7": _conv_7x1_1x7,
    "auxiliary_head_cifar": _auxiliary_head_cifar,
    "nor_conv_1x1": _conv_bn(1),
    "nor_conv_3x3": _conv_bn(3),
    "mbconv": _mbconv,
    "conv_bn_act": _conv_bn(),
}
# kernel-size batches (ir/passes/batch.py): exactly the layers of the candidates they replace
_LAYERS.update({f"{op}_batch": batched(_LAYERS[op]) for op in ("sep_conv", "dil_conv", "mbconv")})

#: The cost models of every stdlib op; extend it with :meth:`CostTable.with_op`.
DEFAULT = CostTable({name: OpCost.from_layers(f) for name, f in _LAYERS.items()}).extended(
    HRNAS_COSTS
)  # stdlib/hrnas_ops.nas (ir/cost/hrnas.py)
DEFAULT = DEFAULT.extended(NASNET_COSTS)  # stdlib/nasnet_ops.nas (ir/cost/nasnet.py)
