"""The mixture ``sum_k w_k o_k`` (DARTS eq. 2) as Triton kernels, without stacking the K
candidate outputs: the kernels take the K tensors as a tuple of pointers.

* :class:`WeightedSum` — forward ``out = sum_k w_k x_k`` in one pass; backward in one pass over
  the gradient: ``dx_k = w_k g`` and ``dw_k = <g, x_k>`` (per-block partial dot products summed
  in a fixed order: deterministic).
* :class:`WeightedBNSum` — the same over affine-free BN tails, ``out = base + sum_k w_k y_k``
  with ``y_k = (x_k - mean_k) * invstd_k``, the statistics given; :func:`weighted_mixture`
  runs a whole DARTS mixed op (plain candidates such as the identity, and BN-tailed ones) in
  it, writing the output once. It keeps only the BN inputs
  and statistics and recomputes ``y_k`` in backward (the saving of
  ``backends/torch/mixture.py``): ``dw_k = <g, y_k>`` and, with batch statistics,
  ``dx_k = w_k invstd_k (g - mean_c(g) - y_k mean_c(g y_k))``; two passes (channel sums, then
  the elementwise gradient).

All arithmetic is in fp32; inputs and outputs are fp32, bf16 or fp16.
"""

from __future__ import annotations

import os

import torch
import triton
import triton.language as tl
from nasc.backends.triton.layout import (
    KernelError,
    channel_stride,
    check_image,
    check_operands,
    dense,
)

#: Whether these kernels were defined under the interpreter (triton reads the variable then).
INTERPRETED = os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")

BLOCK = 1024  # elements per program of the elementwise kernels
BLOCK_R = 64  # rows (N * H * W positions) per program of the per-channel reductions


@triton.jit
def _wsum_fwd(out_ptr, xs, w_ptr, n, K: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    m = offs < n
    acc = tl.zeros([BLOCK], tl.float32)
    for k in tl.static_range(K):
        wk = tl.load(w_ptr + k).to(tl.float32)
        acc += wk * tl.load(xs[k] + offs, mask=m, other=0.0).to(tl.float32)
    tl.store(out_ptr + offs, acc.to(out_ptr.dtype.element_ty), mask=m)


@triton.jit
def _wsum_bwd(g_ptr, xs, dxs, w_ptr, part_ptr, n, K: tl.constexpr, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    offs = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    m = offs < n
    g = tl.load(g_ptr + offs, mask=m, other=0.0).to(tl.float32)
    for k in tl.static_range(K):
        x = tl.load(xs[k] + offs, mask=m, other=0.0).to(tl.float32)
        tl.store(part_ptr + pid * K + k, tl.sum(g * x, axis=0))
        wk = tl.load(w_ptr + k).to(tl.float32)
        tl.store(dxs[k] + offs, (wk * g).to(dxs[k].dtype.element_ty), mask=m)


@triton.jit
def _bnsum_fwd(out_ptr, base_ptr, xs, w_ptr, means, invstds, n, C, S,
               K: tl.constexpr, HAS_BASE: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    m = offs < n
    c = (offs // S) % C
    if HAS_BASE:
        acc = tl.load(base_ptr + offs, mask=m, other=0.0).to(tl.float32)
    else:
        acc = tl.zeros([BLOCK], tl.float32)
    for k in tl.static_range(K):
        wk = tl.load(w_ptr + k).to(tl.float32)
        mean = tl.load(means[k] + c, mask=m, other=0.0).to(tl.float32)
        invstd = tl.load(invstds[k] + c, mask=m, other=0.0).to(tl.float32)
        x = tl.load(xs[k] + offs, mask=m, other=0.0).to(tl.float32)
        acc += wk * ((x - mean) * invstd)
    tl.store(out_ptr + offs, acc.to(out_ptr.dtype.element_ty), mask=m)


@triton.jit
def _bnsum_bwd_sums(g_ptr, xs, means, invstds, part_ptr, R, C, S,
                    K: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr):
    """Per channel, over a block of rows: ``sum g * y_k`` (k < K) and ``sum g`` (slot K)."""
    pid_r = tl.program_id(0)
    cs = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    rs = pid_r.to(tl.int64) * BLOCK_R + tl.arange(0, BLOCK_R)
    r, c = rs[:, None], cs[None, :]
    m = (r < R) & (c < C)
    offs = (r // S) * C * S + c * S + r % S
    g = tl.load(g_ptr + offs, mask=m, other=0.0).to(tl.float32)
    row = part_ptr + pid_r * (K + 1) * C
    tl.store(row + K * C + cs, tl.sum(g, axis=0), mask=cs < C)
    for k in tl.static_range(K):
        mean = tl.load(means[k] + cs, mask=cs < C, other=0.0).to(tl.float32)
        invstd = tl.load(invstds[k] + cs, mask=cs < C, other=0.0).to(tl.float32)
        x = tl.load(xs[k] + offs, mask=m, other=0.0).to(tl.float32)
        y = (x - mean[None, :]) * invstd[None, :]
        tl.store(row + k * C + cs, tl.sum(tl.where(m, g * y, 0.0), axis=0), mask=cs < C)


@triton.jit
def _bnsum_bwd_dx(g_ptr, xs, dxs, w_ptr, means, invstds, flag_ptr, mg_ptr, mgy_ptr, n, C, S,
                  K: tl.constexpr, TRAINING: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    m = offs < n
    c = (offs // S) % C
    g = tl.load(g_ptr + offs, mask=m, other=0.0).to(tl.float32)
    if TRAINING:
        mg = tl.load(mg_ptr + c, mask=m, other=0.0)
    for k in tl.static_range(K):
        wk = tl.load(w_ptr + k).to(tl.float32)
        invstd = tl.load(invstds[k] + c, mask=m, other=0.0).to(tl.float32)
        if TRAINING:  # flag 0: a plain term (no batch statistics to differentiate)
            fk = tl.load(flag_ptr + k)
            mean = tl.load(means[k] + c, mask=m, other=0.0).to(tl.float32)
            x = tl.load(xs[k] + offs, mask=m, other=0.0).to(tl.float32)
            mgy = tl.load(mgy_ptr + k * C + c, mask=m, other=0.0)
            dx = (g - fk * (mg + (x - mean) * invstd * mgy)) * (invstd * wk)
        else:
            dx = g * (invstd * wk)
        tl.store(dxs[k] + offs, dx.to(dxs[k].dtype.element_ty), mask=m)


def _grid(n: int) -> tuple[int]:
    return (triton.cdiv(n, BLOCK),)


class WeightedSum(torch.autograd.Function):
    """``sum_k w[k] * xs[k]``; ``apply(w, *xs)`` with ``w`` of shape ``(K,)``."""

    @staticmethod
    def forward(ctx, w, *xs):  # noqa: D102
        check_operands("weighted_sum", w, xs)
        xs, fmt = dense(xs)
        out = torch.empty_like(xs[0], memory_format=fmt)
        n = out.numel()
        if n:
            _wsum_fwd[_grid(n)](out, tuple(xs), w, n, K=len(xs), BLOCK=BLOCK)
        ctx.fmt = fmt
        ctx.save_for_backward(w, *xs)
        return out

    @staticmethod
    def backward(ctx, g):  # noqa: D102
        w, *xs = ctx.saved_tensors
        (g,), _ = dense([g], ctx.fmt)
        n, k = g.numel(), len(xs)
        dxs = [torch.empty_like(x) for x in xs]
        part = torch.zeros(_grid(n)[0], k, dtype=torch.float32, device=g.device)
        if n:
            _wsum_bwd[_grid(n)](g, tuple(xs), tuple(dxs), w, part, n, K=k, BLOCK=BLOCK)
        dw = part.sum(0).to(w.dtype)
        return (dw, *dxs)


def weighted_sum(w: torch.Tensor, xs: list[torch.Tensor]) -> torch.Tensor:
    """``sum_k w[k] * xs[k]`` by the Triton kernel."""
    return WeightedSum.apply(w, *xs)


class WeightedBNSum(torch.autograd.Function):
    """``base + sum_k w[k] * (xs[k] - means[k]) * invstds[k]`` (per channel, statistics given
    and detached); ``apply(w, training, base, means, invstds, normalized, *xs)``, ``base`` may
    be None; ``normalized[k]`` false makes term ``k`` plain (its statistics are 0 and 1)."""

    @staticmethod
    def forward(ctx, w, training: bool, base, means, invstds, normalized, *xs):  # noqa: D102
        name = "weighted_bn_sum"
        check_operands(name, w, xs)
        check_image(name, xs[0])
        c = xs[0].shape[1]
        for i, (mu, s) in enumerate(zip(means, invstds)):
            if mu.shape != (c,) or s.shape != (c,):
                raise KernelError(f"{name}: the statistics of input {i} must have shape ({c},), "
                                  f"got {tuple(mu.shape)} and {tuple(s.shape)}")
        if len(means) != len(xs) or len(invstds) != len(xs):
            raise KernelError(f"{name}: one mean and invstd per input ({len(xs)})")
        xs, fmt = dense(xs)
        if base is not None:
            if base.shape != xs[0].shape or base.dtype != xs[0].dtype:
                raise KernelError(f"{name}: base {tuple(base.shape)} {base.dtype} does not "
                                  f"match the inputs {tuple(xs[0].shape)} {xs[0].dtype}")
            (base,), _ = dense([base], fmt)
        means = tuple(mu.contiguous() for mu in means)
        invstds = tuple(s.contiguous() for s in invstds)
        out = torch.empty_like(xs[0], memory_format=fmt)
        n, s = out.numel(), channel_stride(xs[0], fmt)
        if n:
            _bnsum_fwd[_grid(n)](out, out if base is None else base, tuple(xs), w, means,
                                 invstds, n, c, s, K=len(xs), HAS_BASE=base is not None,
                                 BLOCK=BLOCK)
        ctx.training, ctx.fmt, ctx.k, ctx.has_base = bool(training), fmt, len(xs), base is not None
        ctx.flags = torch.tensor([float(f) for f in normalized], device=out.device)
        ctx.save_for_backward(w, *xs, *means, *invstds)
        return out

    @staticmethod
    def backward(ctx, g):  # noqa: D102
        k = ctx.k
        w, xs = ctx.saved_tensors[0], ctx.saved_tensors[1 : 1 + k]
        means = ctx.saved_tensors[1 + k : 1 + 2 * k]
        invstds = ctx.saved_tensors[1 + 2 * k :]
        (g,), _ = dense([g], ctx.fmt)
        nb, c, h, wd = g.shape
        n, rows, s = g.numel(), nb * h * wd, channel_stride(g, ctx.fmt)
        block_c = min(triton.next_power_of_2(max(c, 1)), 64)
        grid = (triton.cdiv(rows, BLOCK_R), triton.cdiv(c, block_c))
        part = torch.zeros(grid[0], k + 1, c, dtype=torch.float32, device=g.device)
        if n:
            _bnsum_bwd_sums[grid](g, tuple(xs), means, invstds, part, rows, c, s, K=k,
                                  BLOCK_R=BLOCK_R, BLOCK_C=block_c)
        sums = part.sum(0)  # (k + 1, C), a fixed summation order
        dw = sums[:k].sum(1).to(w.dtype)
        mean_g = (sums[k] / max(rows, 1)).contiguous()
        mean_gy = (sums[:k] / max(rows, 1)).contiguous()
        dxs = [torch.empty_like(x) for x in xs]
        if n:
            _bnsum_bwd_dx[_grid(n)](g, tuple(xs), tuple(dxs), w, means, invstds, ctx.flags,
                                    mean_g, mean_gy, n, c, s, K=k, TRAINING=ctx.training,
                                    BLOCK=BLOCK)
        return (dw, None, g if ctx.has_base else None, None, None, None, *dxs)


def weighted_bn_sum(w: torch.Tensor, xs: list[torch.Tensor], means: list[torch.Tensor],
                    invstds: list[torch.Tensor], training: bool,
                    base: torch.Tensor | None = None) -> torch.Tensor:
    """``base + sum_k w[k] * (xs[k] - means[k]) * invstds[k]`` by the Triton kernels."""
    return WeightedBNSum.apply(w, training, base, tuple(means), tuple(invstds),
                               (True,) * len(xs), *xs)


def weighted_mixture(w_plain: torch.Tensor, plain: list[torch.Tensor], w_tails: torch.Tensor,
                     tails: list[torch.Tensor], means: list[torch.Tensor],
                     invstds: list[torch.Tensor], training: bool) -> torch.Tensor:
    """A whole mixed op in one kernel: ``sum_j w_plain[j] plain[j] + sum_k w_tails[k]
    (tails[k] - means[k]) invstds[k]`` (the plain terms as terms with statistics 0 and 1 and
    no batch-statistics gradient), so the output is written once."""
    if not plain:
        return weighted_bn_sum(w_tails, tails, means, invstds, training)
    c = tails[0].shape[1] if tails else plain[0].shape[1]
    dev = (tails or plain)[0].device
    zero, one = torch.zeros(c, device=dev), torch.ones(c, device=dev)
    w = torch.cat([w_plain, w_tails]) if tails else w_plain
    return WeightedBNSum.apply(
        w, training, None, (zero,) * len(plain) + tuple(means),
        (one,) * len(plain) + tuple(invstds), (False,) * len(plain) + (True,) * len(tails),
        *plain, *tails)
