"""The torch path of the mixture ``sum_k w_k * BN_k(x_k)`` with affine-free BN tails, fused.

In a DARTS-family search network every candidate but the identity ends in an affine-free batch
norm (SepConv, DilConv, FactorizedReduce, and pools followed by a BN, model_search.py). A
hand-written mixed op keeps each candidate's normalised output alive for ``dL/dw_k = <g, y_k>``
on top of the BN's own saved input: two tensors per candidate. Here the BN and the weighted sum
are one autograd function that saves only the BN inputs and statistics and recomputes
``y_k = (x_k - mean_k) * invstd_k`` in backward (cheap, elementwise), halving what a mixture
keeps for backward.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn


class _WeightedBNSum(torch.autograd.Function):
    """``sum_k w[k] * (x_k - mean_k) * invstd_k`` with the statistics given (detached); the
    backward accounts for batch statistics analytically when ``training``."""

    @staticmethod
    def forward(ctx, w, training: bool, means, invstds, *xs):  # noqa: D102
        out = None
        for k, x in enumerate(xs):
            y = (x - means[k][None, :, None, None]) * invstds[k][None, :, None, None]
            out = y * w[k] if out is None else out + y * w[k]
        ctx.training = training
        ctx.n = len(xs)
        ctx.save_for_backward(w, *xs, *means, *invstds)
        return out

    @staticmethod
    def backward(ctx, g):  # noqa: D102
        n = ctx.n
        w, xs = ctx.saved_tensors[0], ctx.saved_tensors[1 : 1 + n]
        means = ctx.saved_tensors[1 + n : 1 + 2 * n]
        invstds = ctx.saved_tensors[1 + 2 * n :]
        dw = torch.empty_like(w)
        dxs = []
        for k in range(n):
            mean, invstd = means[k][None, :, None, None], invstds[k][None, :, None, None]
            y = (xs[k] - mean) * invstd  # recomputed instead of kept
            gy = g * y
            dw[k] = gy.sum()
            if ctx.training:
                # dx = w invstd (g - mean(g) - y mean(g y)), the batch-norm backward
                dx = (g - g.mean(dim=(0, 2, 3), keepdim=True)
                      - y * gy.mean(dim=(0, 2, 3), keepdim=True)) * (invstd * w[k])
            else:
                dx = g * (invstd * w[k])
            dxs.append(dx)
        return (dw, None, None, None, *dxs)


def bn_statistics(xs: Sequence[torch.Tensor], bns: Sequence[nn.BatchNorm2d],
                  training: bool) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Per input, the mean and ``1 / sqrt(var + eps)`` its affine-free BN normalises with,
    updating the running statistics in training as ``nn.BatchNorm2d`` does."""
    means, invstds = [], []
    with torch.no_grad():
        for x, bn in zip(xs, bns):
            if training:
                var, mean = torch.var_mean(x, dim=(0, 2, 3), unbiased=False)
                if bn.running_mean is not None:
                    count = x.numel() // x.shape[1]
                    bn.num_batches_tracked += 1
                    m = bn.momentum if bn.momentum is not None else 1.0 / float(
                        bn.num_batches_tracked)
                    bn.running_mean.mul_(1 - m).add_(mean, alpha=m)
                    bn.running_var.mul_(1 - m).add_(var * (count / max(count - 1, 1)), alpha=m)
            else:
                mean, var = bn.running_mean, bn.running_var
            means.append(mean)
            invstds.append(torch.rsqrt(var + bn.eps))
    return means, invstds


def weighted_bn_sum(w: torch.Tensor, xs: Sequence[torch.Tensor],
                    bns: Sequence[nn.BatchNorm2d], training: bool) -> torch.Tensor:
    """``sum_k w[k] * bns[k](xs[k])`` for affine-free BNs, updating their running statistics
    as ``nn.BatchNorm2d`` does."""
    means, invstds = bn_statistics(xs, bns, training)
    return _WeightedBNSum.apply(w, training, means, invstds, *xs)


def split_bn_tail(module: nn.Module) -> tuple[Callable, nn.BatchNorm2d] | None:
    """``(body, bn)`` when ``module`` is ``bn(body(x))`` with an affine-free BN, else None."""
    def affine_free(m: nn.Module) -> bool:
        return isinstance(m, nn.BatchNorm2d) and not m.affine and m.track_running_stats

    seq = getattr(module, "op", module)
    if isinstance(seq, nn.Sequential) and len(seq) > 1 and affine_free(seq[-1]):
        body = seq[:-1]
        return body, seq[-1]
    bn = getattr(module, "bn", None)
    if bn is not None and affine_free(bn) and hasattr(module, "body"):
        return module.body, bn
    return None
