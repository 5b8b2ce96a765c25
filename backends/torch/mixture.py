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


class _Mixture(torch.autograd.Function):
    """``sum_j wp[j] * p_j + sum_k wt[k] * (t_k - mean_k) * invstd_k`` with the statistics
    given (detached); the backward accounts for batch statistics analytically when
    ``training``.

    Each BN tail folds into a per-channel scale and shift, ``a_k = wt[k] invstd_k`` and
    ``-a_k mean_k``, so the forward is one fused multiply-add per candidate into one output.
    The backward needs, per tail, only the channel sums ``S_g = sum g`` (once for all) and
    ``S_gx = sum g t_k``: with ``M`` values per channel, ``sum g y_k = invstd_k (S_gx -
    mean_k S_g)``, ``dL/dwt[k]`` its total, and the batch-norm backward ``dt_k = a_k (g -
    S_g / M - y_k sum(g y_k) / M)`` is again one multiply-add of ``g`` and one of ``t_k``."""

    @staticmethod
    def forward(ctx, wp, wt, training: bool, means, invstds, n_plain: int, *xs):  # noqa: D102
        plain, tails = xs[:n_plain], xs[n_plain:]
        out = torch.empty_like(xs[0])
        if tails:
            a = wt[:, None] * torch.stack(invstds)  # (K, C)
            shift = -(a * torch.stack(means)).sum(0)
            torch.addcmul(shift[None, :, None, None], tails[0], a[0][None, :, None, None],
                          out=out)
            for k in range(1, len(tails)):
                out.addcmul_(tails[k], a[k][None, :, None, None])
        else:
            torch.mul(plain[0], wp[0], out=out)
            plain = plain[1:]
        for j, x in enumerate(plain, start=n_plain - len(plain)):
            out.addcmul_(x, wp[j])
        ctx.training, ctx.n_plain, ctx.n_tails = training, n_plain, len(tails)
        ctx.save_for_backward(wp, wt, *xs, *means, *invstds)
        return out

    @staticmethod
    def backward(ctx, g):  # noqa: D102
        n_plain, n = ctx.n_plain, ctx.n_tails
        saved = ctx.saved_tensors
        wp, wt = saved[0], saved[1]
        plain, tails = saved[2 : 2 + n_plain], saved[2 + n_plain : 2 + n_plain + n]
        means, invstds = saved[2 + n_plain + n : 2 + n_plain + 2 * n], saved[2 + n_plain + 2 * n :]
        need_w = ctx.needs_input_grad[0] or ctx.needs_input_grad[1]
        dwp = torch.empty_like(wp) if need_w else None
        dwt = torch.empty_like(wt) if need_w else None
        dxs = []
        for j, x in enumerate(plain):
            if dwp is not None:
                dwp[j] = (g * x).sum()
            dxs.append(g * wp[j] if ctx.needs_input_grad[6 + j] else None)
        if n:
            count = g.numel() // g.shape[1]
            s_g = g.sum(dim=(0, 2, 3))
        for k, x in enumerate(tails):
            mean, invstd = means[k], invstds[k]
            a = wt[k] * invstd
            s_gy = invstd * ((g * x).sum(dim=(0, 2, 3)) - mean * s_g)  # sum g y_k per channel
            if dwt is not None:
                dwt[k] = s_gy.sum()
            if not ctx.needs_input_grad[6 + n_plain + k]:
                dxs.append(None)
                continue
            if ctx.training:
                b = -a * invstd * s_gy / count  # dt = g a + t b + c
                c = -a * s_g / count - mean * b
                dx = torch.empty_like(x)
                torch.addcmul(c[None, :, None, None], g, a[None, :, None, None], out=dx)
                dx.addcmul_(x, b[None, :, None, None])
            else:
                dx = g * a[None, :, None, None]
            dxs.append(dx)
        return (dwp, dwt, None, None, None, None, *dxs)


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
    return mixture(w[:0], [], w, xs, bns, training)


def mixture(w_plain: torch.Tensor, plain: Sequence[torch.Tensor], w_tails: torch.Tensor,
            tails: Sequence[torch.Tensor], bns: Sequence[nn.BatchNorm2d],
            training: bool) -> torch.Tensor:
    """A mixed op (DARTS eq. 2) ``sum_j w_plain[j] plain[j] + sum_k w_tails[k]
    bns[k](tails[k])`` in one autograd function: one output written, the BN outputs never
    kept (recomputed where backward needs them)."""
    if not tails and len(plain) == 1:
        return plain[0] * w_plain[0]
    first = plain[0] if plain else tails[0]
    dtype, shape = first.dtype, first.shape
    if (w_plain.dtype != dtype or w_tails.dtype != dtype
            or any(x.dtype != dtype or x.shape != shape for x in (*plain, *tails))
            or any(bn.running_mean is not None and bn.running_mean.dtype != dtype
                   for bn in bns)):
        return _unfused(w_plain, plain, w_tails, tails, bns)  # (autocast's mixed dtypes)
    means, invstds = bn_statistics(tails, bns, training)
    return _Mixture.apply(w_plain, w_tails, training, means, invstds, len(plain), *plain,
                          *tails)


def weighted_sum(w: torch.Tensor, xs: Sequence[torch.Tensor]) -> torch.Tensor:
    """``sum_k w[k] * xs[k]`` in one autograd function (one output written)."""
    return mixture(w, xs, w[:0], [], [], False)


def _unfused(w_plain, plain, w_tails, tails, bns) -> torch.Tensor:
    """The same sum with torch's own BNs and type promotion."""
    terms = [wk * x for wk, x in zip(w_plain, plain)]
    terms += [wk * bn(x) for wk, x, bn in zip(w_tails, tails, bns)]
    out = terms[0]
    for t in terms[1:]:
        out = out + t
    return out


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
