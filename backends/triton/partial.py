"""The partial-channel merge of PC-DARTS (Xu et al., 2020; DCNAS eq. 7) as one Triton kernel.

``partial_merge(mix, x)``: the mixture ran on channels ``[0, split)`` of ``x`` and gave ``mix``;
channels ``[split, C)`` of ``x`` bypass it, max-pooled ``s x s`` (stride ``s``, ``ceil_mode``)
when the mixture reduces the resolution. The concatenation ``[mix, bypass]`` of ``Ct``
channels is channel-shuffled in ``groups`` groups (``groups = 1``: no shuffle): output channel
``j * groups + i`` is concatenated channel ``i * (Ct / groups) + j``. The kernel computes, for
each output element, its source channel and reads it from ``mix`` or (pooling on the fly) from
``x``: no concatenated or shuffled intermediate exists. Backward routes the gradient the
opposite way in one pass; a pooled element's gradient goes to the first maximum of its window
(as torch's max-pool). The DCNAS fixed mask (the same channels every step) is the same merge.

Every tensor is addressed through its own strides: NCHW, channels_last or any other layout
runs without a copy.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from nasc.backends.triton.layout import KernelError, check_dtype, check_image, memory_format
from nasc.backends.triton.mixture import INTERPRETED
from nasc.backends.triton.tiles import BLOCK_C, BLOCK_R, grid, nchw_tile

__all__ = ["INTERPRETED", "PartialMerge", "partial_merge"]



@triton.jit
def _source(o, groups, cpg):
    """The concatenated channel that output channel ``o`` reads (the shuffle)."""
    return (o % groups) * cpg + o // groups


@triton.jit
def _partial_fwd(out_ptr, mix_ptr, x_ptr, R, HWo, Wo, Cm, Cout, H, W, split, groups, cpg,
                 so_n, so_c, so_h, so_w, sm_n, sm_c, sm_h, sm_w, sx_n, sx_c, sx_h, sx_w,
                 POOL: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr):
    n, o, ho, wo, m = nchw_tile(R, HWo, Wo, Cout, BLOCK_R, BLOCK_C)
    src = _source(o, groups, cpg)
    in_mix = src < Cm
    v = tl.load(mix_ptr + n * sm_n + src * sm_c + ho * sm_h + wo * sm_w, mask=m & in_mix,
                other=0.0)
    mb = m & (src >= Cm)
    xc = x_ptr + n * sx_n + (split + src - Cm) * sx_c
    if POOL == 1:
        b = tl.load(xc + ho * sx_h + wo * sx_w, mask=mb, other=0.0)
    else:
        # compared in fp32 (exact for bf16 and fp16, which the interpreter cannot compare)
        b = tl.full([BLOCK_R, BLOCK_C], float("-inf"), tl.float32)
        for dh in tl.static_range(POOL):
            for dw in tl.static_range(POOL):
                h, w = ho * POOL + dh, wo * POOL + dw
                e = tl.load(xc + h * sx_h + w * sx_w, mask=mb & (h < H) & (w < W),
                            other=float("-inf")).to(tl.float32)
                b = tl.where((e > b) | (e != e), e, b)
    tl.store(out_ptr + n * so_n + o * so_c + ho * so_h + wo * so_w,
             tl.where(in_mix, v, b.to(v.dtype)), mask=m)


@triton.jit
def _partial_bwd(g_ptr, dmix_ptr, dx_ptr, x_ptr, R, HWo, Wo, Cm, Cout, H, W, split, groups,
                 cpg, sg_n, sg_c, sg_h, sg_w, sm_n, sm_c, sm_h, sm_w, sx_n, sx_c, sx_h, sx_w,
                 POOL: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr):
    n, o, ho, wo, m = nchw_tile(R, HWo, Wo, Cout, BLOCK_R, BLOCK_C)
    src = _source(o, groups, cpg)
    in_mix = src < Cm
    g = tl.load(g_ptr + n * sg_n + o * sg_c + ho * sg_h + wo * sg_w, mask=m, other=0.0)
    tl.store(dmix_ptr + n * sm_n + src * sm_c + ho * sm_h + wo * sm_w, g, mask=m & in_mix)
    mb = m & (src >= Cm)
    xc = (split + src - Cm) * sx_c + n * sx_n
    if POOL == 1:
        tl.store(dx_ptr + xc + ho * sx_h + wo * sx_w, g.to(dx_ptr.dtype.element_ty), mask=mb)
    else:
        # the first maximum of the window (torch's rule), then one write per window element
        best = tl.full([BLOCK_R, BLOCK_C], float("-inf"), tl.float32)
        arg = tl.full([BLOCK_R, BLOCK_C], -1, tl.int32)
        for dh in tl.static_range(POOL):
            for dw in tl.static_range(POOL):
                h, w = ho * POOL + dh, wo * POOL + dw
                ok = mb & (h < H) & (w < W)
                e = tl.load(x_ptr + xc + h * sx_h + w * sx_w, mask=ok,
                            other=float("-inf")).to(tl.float32)
                take = ok & ((arg < 0) | (e > best) | ((e != e) & (best == best)))
                best = tl.where(take, e, best)
                arg = tl.where(take, dh * POOL + dw, arg)
        zero = tl.zeros([BLOCK_R, BLOCK_C], dx_ptr.dtype.element_ty)
        gd = g.to(dx_ptr.dtype.element_ty)
        for dh in tl.static_range(POOL):
            for dw in tl.static_range(POOL):
                h, w = ho * POOL + dh, wo * POOL + dw
                ok = mb & (h < H) & (w < W)
                tl.store(dx_ptr + xc + h * sx_h + w * sx_w,
                         tl.where(arg == dh * POOL + dw, gd, zero), mask=ok)


def _strides(t: torch.Tensor) -> tuple[int, ...]:
    return tuple(t.stride())


def _check(mix: torch.Tensor, x: torch.Tensor, split: int, groups: int, stride: int) -> int:
    name = "partial_merge"
    check_image(name, mix, "mixture output")
    check_image(name, x, "mixture input")
    check_dtype(name, mix)
    if x.dtype != mix.dtype or x.device != mix.device:
        raise KernelError(f"{name}: the mixture output is {mix.dtype} on {mix.device}, its "
                          f"input {x.dtype} on {x.device}")
    if stride < 1 or groups < 1:
        raise KernelError(f"{name}: stride ({stride}) and groups ({groups}) must be positive")
    if not 0 <= split <= x.shape[1]:
        raise KernelError(f"{name}: split {split} outside the input's {x.shape[1]} channels")
    h, w = -(-x.shape[2] // stride), -(-x.shape[3] // stride)
    if mix.shape[0] != x.shape[0] or tuple(mix.shape[2:]) != (h, w):
        raise KernelError(
            f"{name}: the mixture output {tuple(mix.shape)} does not fit its input "
            f"{tuple(x.shape)} at stride {stride} (expected ({x.shape[0]}, C, {h}, {w}))")
    cout = mix.shape[1] + x.shape[1] - split
    if cout % groups:
        raise KernelError(f"{name}: {cout} output channels do not split into {groups} groups")
    return cout


class PartialMerge(torch.autograd.Function):
    """``apply(mix, x, split, groups, stride)``; see the module docstring."""

    @staticmethod
    def forward(ctx, mix, x, split: int, groups: int, stride: int):  # noqa: D102
        cout = _check(mix, x, split, groups, stride)
        nb, cm, ho, wo = mix.shape
        out = torch.empty((nb, cout, ho, wo), dtype=mix.dtype, device=mix.device,
                          memory_format=memory_format(mix))
        rows = nb * ho * wo
        if out.numel():
            _partial_fwd[grid(rows, cout)](
                out, mix, x, rows, ho * wo, wo, cm, cout, x.shape[2], x.shape[3], split, groups,
                cout // groups, *_strides(out), *_strides(mix), *_strides(x), POOL=stride,
                BLOCK_R=BLOCK_R, BLOCK_C=BLOCK_C)
        ctx.args = (split, groups, stride, cout, tuple(mix.shape))
        ctx.mix_format = memory_format(mix)
        ctx.save_for_backward(x if stride > 1 else None)
        ctx.x_meta = (tuple(x.shape), x.dtype, memory_format(x))
        return out

    @staticmethod
    def backward(ctx, g):  # noqa: D102
        split, groups, stride, cout, mix_shape = ctx.args
        (x,) = ctx.saved_tensors
        x_shape, dtype, x_format = ctx.x_meta
        nb, cm, ho, wo = mix_shape
        dmix = torch.empty(mix_shape, dtype=dtype, device=g.device, memory_format=ctx.mix_format)
        dx = torch.empty(x_shape, dtype=dtype, device=g.device, memory_format=x_format)
        if x is not None and not x.is_contiguous(memory_format=x_format):
            x = x.contiguous(memory_format=x_format)  # read x through dx's strides
        x_read = dx if x is None else x
        dx[:, :split].zero_()  # the channels the mixture read get their gradient there
        rows = nb * ho * wo
        if g.numel():
            _partial_bwd[grid(rows, cout)](
                g, dmix, dx, x_read, rows, ho * wo, wo, cm, cout, x_shape[2],
                x_shape[3], split, groups, cout // groups, *_strides(g), *_strides(dmix),
                *_strides(dx), POOL=stride, BLOCK_R=BLOCK_R,
                BLOCK_C=BLOCK_C)
        return dmix, dx, None, None, None


def partial_merge(mix: torch.Tensor, x: torch.Tensor, split: int, groups: int,
                  stride: int = 1) -> torch.Tensor:
    """``channel_shuffle(cat([mix, maxpool_s(x[:, split:])]), groups)`` by one Triton kernel
    (``groups = 1``: no shuffle; ``stride = 1``: no pooling)."""
    return PartialMerge.apply(mix, x, int(split), int(groups), int(stride))
