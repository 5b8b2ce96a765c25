"""Convolutions that keep clear of a oneDNN bug: a strided 1x1 conv runs as a stride-1 conv of
the subsampled input.

oneDNN's AVX2 1x1 convolution (``jit_1x1:avx2``) computes the weight gradient of a strided 1x1
convolution of an NHWC input by first copying the strided pixels into a workspace ("reduce to
unit stride"); with fewer input channels than its channel block (8) it writes past that
workspace (oneDNN issue 6035). Depending on the heap the process segfaults, aborts, hangs with
two threads, or gets a silently wrong weight gradient. Every x86 CPU without AVX-512 takes that
kernel for channels_last tensors, and nasc builds channels_last supernets and networks by
default, with 1x1 stride-2 convs at few channels everywhere (DARTS ``FactorizedReduce`` on
PC-DARTS' partial channels, small-C configurations).

A 1x1 convolution with stride ``s`` and padding ``p`` is the stride-1, unpadded convolution of
``pad(x, p)[:, :, ::s, ::s]``: every output pixel reads one input pixel, the one the subsampling
keeps, so the two agree exactly (and the subsampled form reads and multiplies ``s**2`` times
fewer pixels). :func:`make_conv2d` builds a :class:`SubsampledConv2d` (an ``nn.Conv2d`` with
that forward, the same parameters and state-dict keys) for such a conv and a plain
``nn.Conv2d`` for every other one; :func:`conv2d` is the same rule for functional calls. Every
conv of nasc's op library is built by :func:`make_conv2d` (``bench/onednn_sweep.py`` checks
the other oneDNN channels_last paths nasc uses; ``bench/RESULTS.md`` has what it found).

>>> conv = make_conv2d(4, 8, 1, stride=2, bias=False)
>>> type(conv).__name__, sorted(conv.state_dict())
('SubsampledConv2d', ['weight'])
>>> x = torch.randn(2, 4, 9, 9)
>>> torch.allclose(conv(x), F.conv2d(x, conv.weight, stride=2))
True
>>> type(make_conv2d(4, 8, 3, stride=2)).__name__
'Conv2d'
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["SubsampledConv2d", "conv2d", "make_conv2d", "subsampled"]


def _pair(v: int | tuple[int, ...]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def subsampled(kernel_size: Any, stride: Any) -> bool:
    """Whether a conv of this kernel size and stride runs subsampled: a 1x1 kernel and a
    stride above 1 along either axis."""
    return _pair(kernel_size) == (1, 1) and _pair(stride) != (1, 1)


class SubsampledConv2d(nn.Conv2d):
    """``nn.Conv2d`` with a 1x1 kernel and a stride > 1, computed as the stride-1 conv of the
    (padded, then) subsampled input: ``conv(pad(x)[:, :, ::sh, ::sw])``. The same parameters,
    state-dict keys and outputs as ``nn.Conv2d``; its backward never reaches oneDNN's strided
    1x1 kernel, whose AVX2 weight gradient of an NHWC input with few channels corrupts memory
    (oneDNN issue 6035)."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:  # noqa: A002 - nn.Conv2d's name
        if self.kernel_size != (1, 1):  # (a kernel size changed after construction)
            return super().forward(input)
        pad = self._reversed_padding_repeated_twice
        if any(pad):
            mode = "constant" if self.padding_mode == "zeros" else self.padding_mode
            input = F.pad(input, pad, mode=mode)
        sh, sw = self.stride
        return F.conv2d(input[:, :, ::sh, ::sw], self.weight, self.bias, 1, 0, 1, self.groups)


def make_conv2d(
    in_channels: int,
    out_channels: int,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] | str = 0,
    dilation: int | tuple[int, int] = 1,
    groups: int = 1,
    bias: bool = True,
    padding_mode: str = "zeros",
) -> nn.Conv2d:
    """``nn.Conv2d(...)`` with ``nn.Conv2d``'s arguments, or a :class:`SubsampledConv2d` when
    the kernel is 1x1 and the stride above 1 (every conv nasc builds comes from here)."""
    cls = SubsampledConv2d if subsampled(kernel_size, stride) else nn.Conv2d
    return cls(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
               dilation=dilation, groups=groups, bias=bias, padding_mode=padding_mode)


def conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
    groups: int = 1,
    *,
    kernel_size: int | tuple[int, int] | None = None,
) -> torch.Tensor:
    """``F.conv2d`` by :class:`SubsampledConv2d`'s rule (zero padding). ``kernel_size`` (the
    weight's, when not given) lets fx trace a call whose weight is computed (fx cannot branch
    on a traced shape)."""
    k = _pair(kernel_size) if kernel_size is not None else tuple(weight.shape[-2:])
    if not subsampled(k, stride):
        return F.conv2d(x, weight, bias, stride, padding, dilation, groups)
    ph, pw = _pair(padding)
    if ph or pw:
        x = F.pad(x, (pw, pw, ph, ph))
    sh, sw = _pair(stride)
    return F.conv2d(x[:, :, ::sh, ::sw], weight, bias, 1, 0, 1, groups)
