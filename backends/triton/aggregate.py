"""Weighted input aggregation for input choices as Triton kernels: ``sum_i beta_i H_i(x_i)``
(DCNAS eq. 4/6; DenseNAS eq. 4; PC-DARTS edge normalisation) over the inputs that run (the
sampled ones when sampling is on: the caller passes only those, with their renormalised
weights).

* :func:`weighted_aggregate` — the summing merge; the same computation as the mixture, so it
  is :class:`nasc.backends.triton.mixture.WeightedSum` (one pass forward, one backward).
* :func:`weighted_concat` — the concatenating merge ``cat_i(beta_i x_i)`` along channels: each
  input is scaled straight into its channel range of the output (no scaled copies, no
  concatenation afterwards); backward ``dx_i = beta_i g[:, range_i]`` and
  ``dbeta_i = <g[:, range_i], x_i>`` (per-block partial sums in a fixed order). Every tensor is
  addressed through its own strides.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from nasc.backends.triton.layout import KernelError, check_dtype, check_image, memory_format
from nasc.backends.triton.mixture import INTERPRETED, weighted_sum
from nasc.backends.triton.tiles import BLOCK_C, BLOCK_R, grid, nchw_tile

__all__ = ["INTERPRETED", "WeightedConcat", "weighted_aggregate", "weighted_concat"]



@triton.jit
def _scale_into(dst_ptr, src_ptr, w_ptr, i, R, HW, W, C, sd_n, sd_c, sd_h, sd_w,
                ss_n, ss_c, ss_h, ss_w, BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr):
    """``dst[n, c, h, w] = w[i] * src[n, c, h, w]`` over ``C`` channels, strides given."""
    n, c, h, w, m = nchw_tile(R, HW, W, C, BLOCK_R, BLOCK_C)
    wi = tl.load(w_ptr + i).to(tl.float32)
    v = tl.load(src_ptr + n * ss_n + c * ss_c + h * ss_h + w * ss_w, mask=m, other=0.0)
    tl.store(dst_ptr + n * sd_n + c * sd_c + h * sd_h + w * sd_w,
             (wi * v.to(tl.float32)).to(dst_ptr.dtype.element_ty), mask=m)


@triton.jit
def _scale_back(dx_ptr, g_ptr, x_ptr, w_ptr, part_ptr, i, R, HW, W, C, sd_n, sd_c, sd_h, sd_w,
                sg_n, sg_c, sg_h, sg_w, sx_n, sx_c, sx_h, sx_w, BLOCK_R: tl.constexpr,
                BLOCK_C: tl.constexpr):
    """``dx = w[i] * g`` and a partial ``<g, x>`` per program."""
    n, c, h, w, m = nchw_tile(R, HW, W, C, BLOCK_R, BLOCK_C)
    g = tl.load(g_ptr + n * sg_n + c * sg_c + h * sg_h + w * sg_w, mask=m, other=0.0)
    g = g.to(tl.float32)
    x = tl.load(x_ptr + n * sx_n + c * sx_c + h * sx_h + w * sx_w, mask=m, other=0.0)
    wi = tl.load(w_ptr + i).to(tl.float32)
    tl.store(dx_ptr + n * sd_n + c * sd_c + h * sd_h + w * sd_w,
             (wi * g).to(dx_ptr.dtype.element_ty), mask=m)
    x = x.to(tl.float32)
    block = tl.program_id(0) * tl.num_programs(1) + tl.program_id(1)
    tl.store(part_ptr + block, tl.sum(tl.sum(g * x, axis=1), 0))


def _check(w: torch.Tensor, xs: list[torch.Tensor]) -> None:
    name = "weighted_concat"
    if not xs:
        raise KernelError(f"{name}: no inputs to combine")
    if w.dim() != 1 or w.shape[0] != len(xs):
        raise KernelError(f"{name}: the weights must be a vector of {len(xs)} (one per input), "
                          f"got shape {tuple(w.shape)}")
    check_dtype(name, w)
    x0 = xs[0]
    for i, x in enumerate(xs):
        check_image(name, x, f"input {i}")
        check_dtype(name, x)
        if x.shape[0] != x0.shape[0] or x.shape[2:] != x0.shape[2:]:
            raise KernelError(f"{name}: input {i} has shape {tuple(x.shape)}, input 0 has "
                              f"{tuple(x0.shape)}: only the channels may differ")
        if x.dtype != x0.dtype or x.device != x0.device:
            raise KernelError(f"{name}: input {i} is {x.dtype} on {x.device}, input 0 is "
                              f"{x0.dtype} on {x0.device}")
    if w.device != x0.device:
        raise KernelError(f"{name}: the weights are on {w.device}, the inputs on {x0.device}")


class WeightedConcat(torch.autograd.Function):
    """``cat([w[0] * xs[0], w[1] * xs[1], ...], dim=1)``; ``apply(w, *xs)``."""

    @staticmethod
    def forward(ctx, w, *xs):  # noqa: D102
        _check(w, xs)
        nb, _, h, wd = xs[0].shape
        widths = [x.shape[1] for x in xs]
        out = torch.empty((nb, sum(widths), h, wd), dtype=xs[0].dtype, device=xs[0].device,
                          memory_format=memory_format(xs[0]))
        rows, start = nb * h * wd, 0
        for i, x in enumerate(xs):
            part = out[:, start : start + widths[i]]
            if part.numel():
                _scale_into[grid(rows, widths[i])](
                    part, x, w, i, rows, h * wd, wd, widths[i], *part.stride(), *x.stride(),
                    BLOCK_R=BLOCK_R, BLOCK_C=BLOCK_C)
            start += widths[i]
        ctx.widths = widths
        ctx.save_for_backward(w, *xs)
        return out

    @staticmethod
    def backward(ctx, g):  # noqa: D102
        w, *xs = ctx.saved_tensors
        nb, _, h, wd = g.shape
        rows, start = nb * h * wd, 0
        dxs, dw = [], torch.zeros_like(w)
        for i, x in enumerate(xs):
            gi = g[:, start : start + ctx.widths[i]]
            dx = torch.empty_like(x)  # x's strides where x is dense
            tiles = grid(rows, ctx.widths[i])
            part = torch.zeros(tiles, dtype=torch.float32, device=g.device)
            if x.numel():
                _scale_back[tiles](dx, gi, x, w, part, i, rows, h * wd, wd, ctx.widths[i],
                                  *dx.stride(), *gi.stride(), *x.stride(), BLOCK_R=BLOCK_R,
                                  BLOCK_C=BLOCK_C)
            dw[i] = part.sum().to(w.dtype)
            dxs.append(dx)
            start += ctx.widths[i]
        return (dw, *dxs)


def weighted_concat(w: torch.Tensor, xs: list[torch.Tensor]) -> torch.Tensor:
    """``cat_i(w[i] * xs[i])`` along channels by the Triton kernel."""
    return WeightedConcat.apply(w, *xs)


def weighted_aggregate(w: torch.Tensor, xs: list[torch.Tensor]) -> torch.Tensor:
    """``sum_i w[i] * xs[i]`` by the Triton mixture kernel (the same computation)."""
    return weighted_sum(w, xs)
