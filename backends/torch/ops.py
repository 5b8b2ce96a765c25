"""PyTorch implementations of the stdlib ops: :data:`BUILDERS` maps an op name to a builder
``OpCall -> nn.Module`` whose ``forward`` takes the op's tensor inputs in order.

Each module is the reference module of its op, parameter for parameter and in its forward:

* DARTS (quark0/darts ``cnn/operations.py``, ``cnn/model.py``, ``cnn/model_search.py``):
  ``ReLUConvBN``, ``DilConv``, ``SepConv``, ``Identity``, ``Zero``, ``FactorizedReduce``, the
  3x3 pools (followed by an affine-free BN in a search network, as ``MixedOp`` does),
  ``conv_7x1_1x7``, ``AuxiliaryHeadCIFAR``. The stdlib ``sep_conv``/``dil_conv`` ops are
  ``SepConv``/``DilConv`` *without* their leading ReLU, which is an IR node of its own.
* NAS-Bench-201 (AutoDL-Projects ``cell_operations.py``): ``conv_bn`` is ``ReLUConvBN`` after
  its ReLU node.
* MobileNetV2 (torchvision ``InvertedResidual``, ``Conv2dNormActivation``): ``mbconv`` and
  ``conv_bn_act``, with torchvision's submodule layout (so their state dicts share keys).
* PC-DARTS (``model_search.py``): ``partial_merge`` with ``channel_shuffle``.

The batch norms *inside* composite ops learn a scale and shift when ``call.affine`` is true; the
``batch_norm`` op follows its own ``affine`` parameter.

Spatial sizes follow the IR's typing: an op with stride ``s`` maps ``H`` to ``ceil(H / s)``.
Where a reference module only handles even sizes, odd sizes are handled in a way that is the
same computation on even sizes: ``FactorizedReduce`` zero-pads its input by one row and column
at the bottom and right before the one-pixel shift (NAS-Bench-201's ``ConstantPad2d((0, 1, 0,
1))``; the stride-2 1x1 conv never reads that padding when the size is even), and
``partial_merge`` max-pools its bypass with ``ceil_mode=True``. No module branches on a tensor's
shape or values, so fx can trace through all of them.

Where an op's input has another width than the reference assumes: ``conv_7x1_1x7`` maps
``C_in -> C_in`` in its (1, 7) conv and ``C_in -> C`` in its (7, 1) conv (the cost model's
convention; DARTS only uses ``C_in == C``), and ``none`` returns zeros of the output's shape.

Every convolution is built by :func:`~nasc.backends.torch.conv.make_conv2d`: a strided 1x1
conv (``FactorizedReduce``, a strided ``conv_bn``/``conv2d`` with ``k=1``) is a
``SubsampledConv2d``, the stride-1 conv of the subsampled input, which keeps clear of a oneDNN
bug (``backends/torch/conv.py``); parameters and state-dict keys are ``nn.Conv2d``'s.

Squeeze-and-excitation inside ``mbconv`` (``se=True``) has no reference in MobileNetV2; it is
torchvision's ``SqueezeExcitation`` as MobileNetV3 places it (after the depthwise conv, 1x1
convs with bias, ReLU then Hardsigmoid) with ``se_channels(hidden)`` squeeze channels from the
cost model (:func:`nasc.ir.cost.se_channels`), so that the module and the cost model agree.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from nasc.backends.torch.batched import BATCHED_BUILDERS
from nasc.backends.torch.conv import make_conv2d
from nasc.backends.torch.hrnas_ops import HRNAS_BUILDERS
from nasc.backends.torch.library import OpCall
from nasc.backends.torch.nasnet_ops import NASNET_BUILDERS
from nasc.ir.cost.stdlib import se_channels
from torch import nn

__all__ = [
    "BUILDERS",
    "AuxiliaryHeadCIFAR",
    "ChannelSlice",
    "Conv2dNormActivation",
    "DilConv",
    "DropPath",
    "FactorizedReduce",
    "InvertedResidual",
    "PartialMerge",
    "ReLUConvBN",
    "SepConv",
    "SqueezeExcitation",
    "Zero",
    "channel_shuffle",
    "set_drop_path",
]


def _p(call: OpCall, name: str, default: Any = None) -> Any:
    """A parameter of the call (the IR fills in every declared default; ``default`` only serves
    hand-written calls)."""
    value = call.params.get(name, default)
    if value is None:
        raise ValueError(f"op {call.op!r}: missing parameter {name!r}")
    return value


_ACTIVATIONS: dict[str, Callable[..., nn.Module]] = {
    "relu6": nn.ReLU6,
    "relu": nn.ReLU,
    "hswish": nn.Hardswish,
}


def _activation(name: str, inplace: bool = False) -> nn.Module:
    try:
        return _ACTIVATIONS[name](inplace=inplace)
    except KeyError:
        raise ValueError(
            f"unknown activation {name!r}; expected one of {sorted(_ACTIVATIONS)}"
        ) from None


# ---- DARTS (quark0/darts cnn/operations.py) ------------------------------------------------
class ReLUConvBN(nn.Module):
    """ReLU -> conv k x k (no bias) -> BN(C_out)."""

    def __init__(
        self,
        C_in: int,
        C_out: int,
        kernel_size: int,
        stride: int,
        padding: int,
        affine: bool = True,
    ) -> None:
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            make_conv2d(C_in, C_out, kernel_size, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(C_out, affine=affine),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class DilConv(nn.Module):
    """DARTS ``DilConv`` without its leading ReLU: depthwise k x k (dilation, stride) ->
    1x1 C_in -> C_out -> BN(C_out)."""

    def __init__(
        self,
        C_in: int,
        C_out: int,
        kernel_size: int,
        stride: int,
        padding: int,
        dilation: int,
        affine: bool = True,
    ) -> None:
        super().__init__()
        self.op = nn.Sequential(
            make_conv2d(
                C_in,
                C_in,
                kernel_size,
                stride=stride,
                padding=padding,
                dilation=dilation,
                groups=C_in,
                bias=False,
            ),
            make_conv2d(C_in, C_out, kernel_size=1, padding=0, bias=False),
            nn.BatchNorm2d(C_out, affine=affine),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class SepConv(nn.Module):
    """DARTS ``SepConv`` without its leading ReLU: depthwise k x k (stride) -> 1x1 -> BN(C_in)
    -> ReLU -> depthwise k x k -> 1x1 C_in -> C_out -> BN(C_out)."""

    def __init__(
        self,
        C_in: int,
        C_out: int,
        kernel_size: int,
        stride: int,
        padding: int,
        affine: bool = True,
    ) -> None:
        super().__init__()
        self.op = nn.Sequential(
            make_conv2d(
                C_in, C_in, kernel_size, stride=stride, padding=padding, groups=C_in, bias=False
            ),
            make_conv2d(C_in, C_in, kernel_size=1, padding=0, bias=False),
            nn.BatchNorm2d(C_in, affine=affine),
            nn.ReLU(inplace=False),
            make_conv2d(
                C_in, C_in, kernel_size, stride=1, padding=padding, groups=C_in, bias=False
            ),
            make_conv2d(C_in, C_out, kernel_size=1, padding=0, bias=False),
            nn.BatchNorm2d(C_out, affine=affine),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class DropPath(nn.Module):
    """DARTS ``drop_path`` (``cnn/utils.py``): in training, each sample's path is zeroed with
    probability ``drop_prob`` and a kept path is scaled by ``1 / (1 - drop_prob)``; the identity
    in evaluation. ``drop_prob`` is an attribute so a training loop can schedule it (DARTS
    sets ``p * epoch / epochs`` each epoch; :func:`set_drop_path`)."""

    def __init__(self, drop_prob: float = 0.0) -> None:
        super().__init__()
        self.drop_prob = float(drop_prob)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.drop_prob <= 0.0:
            return x
        keep = 1.0 - self.drop_prob
        mask = torch.empty(x.size(0), 1, 1, 1, dtype=x.dtype, device=x.device).bernoulli_(keep)
        return x / keep * mask

    def extra_repr(self) -> str:
        return f"drop_prob={self.drop_prob}"


def set_drop_path(model: nn.Module, fraction: float) -> None:
    """Scale every drop path of ``model`` to ``fraction`` of the probability its space gave
    (``fraction = epoch / epochs`` is DARTS' schedule)."""
    for m in model.modules():
        if isinstance(m, DropPath):
            if not hasattr(m, "max_prob"):
                m.max_prob = m.drop_prob
            m.drop_prob = m.max_prob * fraction


class Zero(nn.Module):
    """DARTS ``Zero``: ``x.mul(0.)``, subsampled by the stride. Given ``C_out`` (an output with
    another channel count than the input), zeros of the output's shape (NAS-Bench-201's
    ``Zero`` with ``C_in != C_out``)."""

    def __init__(self, stride: int, C_out: int | None = None) -> None:
        super().__init__()
        self.stride = stride
        self.C_out = C_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride != 1:
            x = x[:, :, :: self.stride, :: self.stride]
        if self.C_out is not None:
            return x.new_zeros(x.size(0), self.C_out, x.size(2), x.size(3))
        return x.mul(0.0)

    def extra_repr(self) -> str:
        return f"stride={self.stride}" + ("" if self.C_out is None else f", C_out={self.C_out}")


class FactorizedReduce(nn.Module):
    """DARTS ``FactorizedReduce``: ReLU, two 1x1 stride-2 convs to C_out/2 (the second on the
    input shifted by one pixel), concatenated, BN(C_out). Odd sizes: see the module docstring."""

    def __init__(self, C_in: int, C_out: int, affine: bool = True) -> None:
        super().__init__()
        assert C_out % 2 == 0, "FactorizedReduce needs an even channel count"
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = make_conv2d(C_in, C_out // 2, 1, stride=2, padding=0, bias=False)
        self.conv_2 = make_conv2d(C_in, C_out // 2, 1, stride=2, padding=0, bias=False)
        self.bn = nn.BatchNorm2d(C_out, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.body(x))

    def body(self, x: torch.Tensor) -> torch.Tensor:
        """Everything but the final BN (a supernet fuses an affine-free BN tail)."""
        x = self.relu(x)
        # NAS-Bench-201's ConstantPad2d((0, 1, 0, 1)) before the shift: the stride-2 1x1 conv
        # never reads the padding on even sizes (the same as DARTS' x[:, :, 1:, 1:] there)
        # and gives ceil(H / 2) rows on odd ones
        shifted = F.pad(x, (0, 1, 0, 1))[:, :, 1:, 1:]
        return torch.cat([self.conv_1(x), self.conv_2(shifted)], dim=1)


class AuxiliaryHeadCIFAR(nn.Module):
    """DARTS ``AuxiliaryHeadCIFAR`` (``cnn/model.py``); assumes an 8x8 input. Its first ReLU is
    not in place here: the head's input is a tensor the network goes on using."""

    def __init__(self, C: int, num_classes: int, affine: bool = True) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.AvgPool2d(5, stride=3, padding=0, count_include_pad=False),  # 8x8 -> 2x2
            make_conv2d(C, 128, 1, bias=False),
            nn.BatchNorm2d(128, affine=affine),
            nn.ReLU(inplace=True),
            make_conv2d(128, 768, 2, bias=False),
            nn.BatchNorm2d(768, affine=affine),
            nn.ReLU(inplace=True),
        )
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        return self.classifier(x.view(x.size(0), -1))


def _pool_3x3(kind: str) -> Callable[[OpCall], nn.Module]:
    def build(call: OpCall) -> nn.Module:
        stride = _p(call, "stride", 1)
        if kind == "max":
            pool: nn.Module = nn.MaxPool2d(3, stride=stride, padding=1)
        else:
            pool = nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)
        if call.search:  # model_search.py MixedOp: pools are followed by an affine-free BN
            return nn.Sequential(pool, nn.BatchNorm2d(call.c_out, affine=False))
        return pool

    return build


def _skip_connect(call: OpCall) -> nn.Module:
    if _p(call, "stride", 1) == 1:
        return nn.Identity()
    return FactorizedReduce(call.c_in, _p(call, "C"), affine=call.affine)


def _conv_7x1_1x7(call: OpCall) -> nn.Module:
    s, c_in, c = _p(call, "stride", 1), call.c_in, _p(call, "C")
    return nn.Sequential(
        nn.ReLU(inplace=False),
        make_conv2d(c_in, c_in, (1, 7), stride=(1, s), padding=(0, 3), bias=False),
        make_conv2d(c_in, c, (7, 1), stride=(s, 1), padding=(3, 0), bias=False),
        nn.BatchNorm2d(c, affine=call.affine),
    )


def _sep_conv(call: OpCall) -> nn.Module:
    k = _p(call, "k")
    return SepConv(call.c_in, _p(call, "C"), k, _p(call, "stride", 1), k // 2, call.affine)


def _dil_conv(call: OpCall) -> nn.Module:
    k, d = _p(call, "k"), _p(call, "dilation", 2)
    return DilConv(
        call.c_in, _p(call, "C"), k, _p(call, "stride", 1), d * (k - 1) // 2, d, call.affine
    )


def _relu_conv_bn(call: OpCall) -> nn.Module:
    return ReLUConvBN(
        call.c_in,
        _p(call, "C"),
        _p(call, "k", 1),
        _p(call, "stride", 1),
        _p(call, "padding", 0),
        call.affine,
    )


# ---- NAS-Bench-201 (AutoDL-Projects cell_operations.py) ------------------------------------
def _conv_bn(call: OpCall) -> nn.Module:
    """``ReLUConvBN`` after its ReLU node: conv k x k (no bias) -> BN(C) (tracking stats)."""
    k = _p(call, "k", 1)
    c = _p(call, "C")
    return nn.Sequential(
        make_conv2d(
            call.c_in,
            c,
            k,
            stride=_p(call, "stride", 1),
            padding=_p(call, "padding", (k - 1) // 2),
            bias=False,
        ),
        nn.BatchNorm2d(c, affine=call.affine, track_running_stats=True),
    )


# ---- MobileNetV2 (torchvision.models.mobilenetv2 / ops.misc) -------------------------------
class Conv2dNormActivation(nn.Sequential):
    """torchvision ``Conv2dNormActivation``: conv (padding (k-1)//2, no bias) -> BN -> act."""

    def __init__(
        self,
        C_in: int,
        C_out: int,
        kernel_size: int = 3,
        stride: int = 1,
        groups: int = 1,
        act: str | None = "relu6",
        affine: bool = True,
    ) -> None:
        layers: list[nn.Module] = [
            make_conv2d(
                C_in, C_out, kernel_size, stride, (kernel_size - 1) // 2, groups=groups, bias=False
            ),
            nn.BatchNorm2d(C_out, affine=affine),
        ]
        if act is not None:
            layers.append(_activation(act, inplace=True))
        super().__init__(*layers)
        self.out_channels = C_out


class SqueezeExcitation(nn.Module):
    """torchvision ``SqueezeExcitation`` as MobileNetV3 uses it (ReLU, Hardsigmoid)."""

    def __init__(self, input_channels: int, squeeze_channels: int) -> None:
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = make_conv2d(input_channels, squeeze_channels, 1)
        self.fc2 = make_conv2d(squeeze_channels, input_channels, 1)
        self.activation = nn.ReLU()
        self.scale_activation = nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.fc2(self.activation(self.fc1(self.avgpool(x))))
        return self.scale_activation(scale) * x


class InvertedResidual(nn.Module):
    """torchvision MobileNetV2 ``InvertedResidual`` with a kernel size, an activation and an
    optional SE block: [1x1 expansion, BN, act] when ``expand_ratio != 1``; depthwise k x k
    (stride), BN, act; [SE]; 1x1 projection, BN; ``x +`` that when stride 1 and C_in == C_out."""

    def __init__(
        self,
        inp: int,
        oup: int,
        stride: int,
        expand_ratio: float,
        kernel_size: int = 3,
        se: bool = False,
        act: str = "relu6",
        affine: bool = True,
        se_divisor: int = 1,
    ) -> None:
        super().__init__()
        self.stride = stride
        hidden_dim = int(round(inp * expand_ratio))
        self.hidden_dim = hidden_dim
        self.use_res_connect = stride == 1 and inp == oup
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(Conv2dNormActivation(inp, hidden_dim, 1, act=act, affine=affine))
        layers.append(
            Conv2dNormActivation(
                hidden_dim,
                hidden_dim,
                kernel_size,
                stride,
                groups=hidden_dim,
                act=act,
                affine=affine,
            )
        )
        if se:
            layers.append(SqueezeExcitation(hidden_dim, se_channels(hidden_dim, se_divisor)))
        layers += [
            make_conv2d(hidden_dim, oup, 1, 1, 0, bias=False),
            nn.BatchNorm2d(oup, affine=affine),
        ]
        self.conv = nn.Sequential(*layers)
        self.out_channels = oup
        self._is_cn = stride > 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.use_res_connect:
            return x + self.conv(x)
        return self.conv(x)


def _mbconv(call: OpCall) -> nn.Module:
    return InvertedResidual(
        call.c_in,
        _p(call, "C"),
        _p(call, "stride", 1),
        _p(call, "e", 6),
        kernel_size=_p(call, "k", 3),
        se=bool(_p(call, "se", False)),
        act=_p(call, "act", "relu6"),
        affine=call.affine,
        se_divisor=_p(call, "se_divisor", 1),
    )


def _conv_bn_act(call: OpCall) -> nn.Module:
    return Conv2dNormActivation(
        call.c_in,
        _p(call, "C"),
        _p(call, "k", 3),
        _p(call, "stride", 1),
        act=_p(call, "act", "relu6"),
        affine=call.affine,
    )


# ---- IR-internal ops (created by passes) ---------------------------------------------------
def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """PC-DARTS ``channel_shuffle`` (``view(b, groups, c // groups, h, w).transpose(1, 2)
    .contiguous().view(b, -1, h, w)``, written without unpacking the shape so that fx can trace
    it): output channel ``j*groups+i`` is input channel ``i*(C/groups)+j``."""
    return x.unflatten(1, (groups, -1)).transpose(1, 2).flatten(1, 2)


class ChannelSlice(nn.Module):
    """``x[:, start:stop]``."""

    def __init__(self, start: int, stop: int) -> None:
        super().__init__()
        self.start, self.stop = start, stop

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, self.start : self.stop]

    def extra_repr(self) -> str:
        return f"start={self.start}, stop={self.stop}"


class PartialMerge(nn.Module):
    """PC-DARTS partial channels, the merge half: ``forward(mix, x)`` concatenates the
    mixture's output (on channels ``[0, C/k)`` of ``x``) with the channels ``[C/k, C)`` of ``x``
    that bypassed it (2x2 max-pooled when the mixture halves the resolution) and, with
    ``shuffle``, channel-shuffles in ``k`` groups. ``fixed`` (the DCNAS variant: the same
    channels every step) changes nothing here."""

    def __init__(
        self, split: int, k: int, stride: int = 1, shuffle: bool = True, fixed: bool = False
    ) -> None:
        super().__init__()
        self.split, self.k, self.shuffle, self.fixed = split, k, shuffle, fixed
        # PC-DARTS: nn.MaxPool2d(2, 2); ceil_mode only changes odd sizes (to the IR's ceil)
        self.mp = nn.MaxPool2d(stride, stride, ceil_mode=True) if stride > 1 else None

    def forward(self, mix: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        from nasc.backends.triton import dispatch  # NASC_KERNELS, read at every call

        if dispatch.use_triton(mix, x):  # one kernel: no concatenated or shuffled copy
            stride = self.mp.stride if self.mp is not None else 1
            return dispatch.partial_merge(mix, x, self.split, self.k if self.shuffle else 1,
                                          stride)
        bypass = x[:, self.split :]
        if self.mp is not None:
            bypass = self.mp(bypass)
        out = torch.cat([mix, bypass], dim=1)
        return channel_shuffle(out, self.k) if self.shuffle else out

    def extra_repr(self) -> str:
        return f"split={self.split}, k={self.k}, shuffle={self.shuffle}, fixed={self.fixed}"


def _partial_merge(call: OpCall) -> nn.Module:
    k = _p(call, "k", 4)
    x_channels = int(call.in_types[1].channels)
    return PartialMerge(
        x_channels // k,
        k,
        _p(call, "stride", 1),
        bool(_p(call, "shuffle", True)),
        bool(_p(call, "fixed", False)),
    )


# ---- the standard layers (stdlib/nn.nas) ---------------------------------------------------
def _conv2d(call: OpCall) -> nn.Module:
    k, d = _p(call, "k", 3), _p(call, "dilation", 1)
    return make_conv2d(
        call.c_in,
        _p(call, "C"),
        k,
        stride=_p(call, "stride", 1),
        padding=_p(call, "padding", (k - 1) // 2 * d),
        dilation=d,
        groups=_p(call, "groups", 1),
        bias=bool(_p(call, "bias", False)),
    )


def _max_pool(call: OpCall) -> nn.Module:
    k = _p(call, "k", 3)
    return nn.MaxPool2d(k, stride=_p(call, "stride", 1), padding=_p(call, "padding", k // 2))


def _avg_pool(call: OpCall) -> nn.Module:
    k = _p(call, "k", 3)
    return nn.AvgPool2d(
        k,
        stride=_p(call, "stride", 1),
        padding=_p(call, "padding", k // 2),
        count_include_pad=bool(_p(call, "count_include_pad", False)),
    )


def _upsample(call: OpCall) -> nn.Module:
    factor = _p(call, "factor", 2)
    return nn.Upsample(scale_factor=float(factor), mode="bilinear", align_corners=False)


BUILDERS: dict[str, Callable[[OpCall], nn.Module]] = {
    # nn.nas
    "conv2d": _conv2d,
    "batch_norm": lambda c: nn.BatchNorm2d(c.c_in, affine=bool(_p(c, "affine", True))),
    "relu": lambda c: nn.ReLU(),
    "relu6": lambda c: nn.ReLU6(),
    "hswish": lambda c: nn.Hardswish(),
    "sigmoid": lambda c: nn.Sigmoid(),
    "dropout": lambda c: nn.Dropout(float(_p(c, "p", 0.0))),
    "drop_path": lambda c: DropPath(float(_p(c, "p", 0.0))),
    "max_pool": _max_pool,
    "avg_pool": _avg_pool,
    "global_avg_pool": lambda c: nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1)),
    "linear": lambda c: nn.Linear(c.c_in, _p(c, "out"), bias=bool(_p(c, "bias", True))),
    "upsample": _upsample,
    # darts_ops.nas
    "none": lambda c: Zero(_p(c, "stride", 1), None if c.c_out == c.c_in else c.c_out),
    "skip_connect": _skip_connect,
    "max_pool_3x3": _pool_3x3("max"),
    "avg_pool_3x3": _pool_3x3("avg"),
    "conv_7x1_1x7": _conv_7x1_1x7,
    "sep_conv": _sep_conv,
    "dil_conv": _dil_conv,
    "relu_conv_bn": _relu_conv_bn,
    "factorized_reduce": lambda c: FactorizedReduce(c.c_in, _p(c, "C"), affine=c.affine),
    "auxiliary_head_cifar": lambda c: AuxiliaryHeadCIFAR(c.c_in, _p(c, "classes"), c.affine),
    # nas_bench_201.nas
    "conv_bn": _conv_bn,
    # mobile_ops.nas
    "mbconv": _mbconv,
    "conv_bn_act": _conv_bn_act,
    # IR-internal
    "channel_slice": lambda c: ChannelSlice(_p(c, "start"), _p(c, "stop")),
    "partial_merge": _partial_merge,
    # hrnas_ops.nas (HR-NAS searching block: mixconv, transformer, upsample_nearest)
    **HRNAS_BUILDERS,
    **BATCHED_BUILDERS,  # kernel-size batches (ir/passes/batch.py, backends/torch/batched.py)
    **NASNET_BUILDERS,  # nasnet_ops.nas (backends/torch/nasnet_ops.py)
}
