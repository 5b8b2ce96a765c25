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


def rows(x: torch.Tensor) -> torch.Tensor | None:
    """The ``(N*H*W, C)`` matrix view of a channels_last 4-D tensor (``None`` for any other
    layout). Per-channel sums and scalings of such a view run along contiguous rows: on the
    CPU ~10x faster than the same reductions and broadcasts over dims ``(0, 2, 3)`` of the
    4-D tensor (a ``var_mean`` there takes ~6 ms for 16x16x32x32 with AVX2, the row form
    0.15 ms)."""
    if x.dim() != 4 or not x.is_contiguous(memory_format=torch.channels_last):
        return None
    return x.permute(0, 2, 3, 1).reshape(-1, x.shape[1])


class _Layout:
    """Per-channel arithmetic on a list of same-shaped 4-D tensors: on their row views when
    every one is channels_last, else on the 4-D tensors with ``(1, C, 1, 1)`` vectors."""

    def __init__(self, xs: Sequence[torch.Tensor]) -> None:
        views = [rows(x) for x in xs]
        self.rows = all(v is not None for v in views)
        self.xs = views if self.rows else list(xs)

    def view(self, t: torch.Tensor) -> torch.Tensor:
        if not self.rows:
            return t
        v = rows(t)
        return v if v is not None else rows(t.contiguous(memory_format=torch.channels_last))

    def vec(self, v: torch.Tensor) -> torch.Tensor:
        return v if self.rows else v[None, :, None, None]

    def csum(self, t: torch.Tensor) -> torch.Tensor:
        return t.sum(dim=0) if self.rows else t.sum(dim=(0, 2, 3))


class _Mixture(torch.autograd.Function):
    """``sum_j wp[j] * p_j + sum_k wt[k] * (t_k - mean[k]) * invstd[k]`` with the statistics
    given (detached, ``(K, C)``); the backward accounts for batch statistics analytically when
    ``training``.

    Each BN tail folds into a per-channel scale and shift, ``a_k = wt[k] invstd_k`` and
    ``-a_k mean_k``, so the forward is one fused multiply-add per candidate into one output.
    The backward needs, per tail, only the channel sums ``S_g = sum g`` (once for all) and
    ``S_gx = sum g t_k``: with ``M`` values per channel, ``sum g y_k = invstd_k (S_gx -
    mean_k S_g)``, ``dL/dwt[k]`` its total, and the batch-norm backward ``dt_k = a_k (g -
    S_g / M - y_k sum(g y_k) / M)`` is again one multiply-add of ``g`` and one of ``t_k``.
    The per-channel coefficients of all K tails are computed together, as ``(K, C)``."""

    @staticmethod
    def forward(ctx, wp, wt, training: bool, mean, invstd, n_plain: int, *xs):  # noqa: D102
        lay = _Layout(xs)
        plain, tails = lay.xs[:n_plain], lay.xs[n_plain:]
        result = torch.empty_like(xs[0])
        out = lay.view(result)
        if tails:
            a = wt[:, None] * invstd  # (K, C)
            shift = -(a * mean).sum(0)
            torch.addcmul(lay.vec(shift), tails[0], lay.vec(a[0]), out=out)
            for k in range(1, len(tails)):
                out.addcmul_(tails[k], lay.vec(a[k]))
            first = 0
        else:
            torch.mul(plain[0], wp[0], out=out)
            first = 1
        for j in range(first, n_plain):
            out.addcmul_(plain[j], wp[j])
        ctx.training, ctx.n_plain = training, n_plain
        ctx.save_for_backward(wp, wt, mean, invstd, *xs)
        return result

    @staticmethod
    def backward(ctx, grad):  # noqa: D102
        n_plain = ctx.n_plain
        wp, wt, mean, invstd, *xs = ctx.saved_tensors
        lay = _Layout(xs)
        g = lay.view(grad)
        plain, tails = lay.xs[:n_plain], lay.xs[n_plain:]
        need = ctx.needs_input_grad
        need_w = need[0] or need[1]
        dwp = dwt = None
        dxs: list[torch.Tensor | None] = []
        if plain:
            if need_w:
                dwp = torch.stack([_dot(g, x) for x in plain])
            dxs += [_scaled(lay, g, wp[j], xs[j]) if need[6 + j] else None
                    for j in range(n_plain)]
        if tails:
            count = g.numel() // xs[0].shape[1]
            s_g = lay.csum(g)
            s_gy = invstd * (torch.stack([lay.csum(g * x) for x in tails]) - mean * s_g)
            if need_w:
                dwt = s_gy.sum(1)  # sum g y_k, per tail
            a = wt[:, None] * invstd
            if ctx.training:
                b = a * invstd * s_gy / -count  # dt = g a + t b + c
                c = a * s_g / -count - mean * b
            for k, x in enumerate(tails):
                if not need[6 + n_plain + k]:
                    dxs.append(None)
                    continue
                dx = torch.empty_like(xs[n_plain + k])
                if ctx.training:
                    torch.addcmul(lay.vec(c[k]), g, lay.vec(a[k]), out=lay.view(dx))
                    lay.view(dx).addcmul_(x, lay.vec(b[k]))
                else:
                    torch.mul(g, lay.vec(a[k]), out=lay.view(dx))
                dxs.append(dx)
        if need_w:
            dwp = dwp if dwp is not None else torch.zeros_like(wp)
            dwt = dwt if dwt is not None else torch.zeros_like(wt)
        return (dwp, dwt, None, None, None, None, *dxs)


class _WeightedBNSum:
    """``sum_k w[k] (x_k - means[k]) invstds[k]``: :class:`_Mixture` without plain terms (the
    torch reference of the Triton kernels' tests)."""

    @staticmethod
    def apply(w, training: bool, means, invstds, *xs):  # noqa: D102
        return _Mixture.apply(w[:0], w, training, torch.stack(list(means)),
                              torch.stack(list(invstds)), 0, *xs)


def _dot(g: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``sum(g * x)``."""
    if g.is_contiguous() and x.is_contiguous():
        return torch.dot(g.reshape(-1), x.reshape(-1))
    return (g * x).sum()


def _scaled(lay: _Layout, g: torch.Tensor, w: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``g * w`` in the layout of ``like``."""
    out = torch.empty_like(like)
    torch.mul(g, w, out=lay.view(out))
    return out


def bn_statistics(xs: Sequence[torch.Tensor], bns: Sequence[nn.BatchNorm2d],
                  training: bool) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Per input, the mean and ``1 / sqrt(var + eps)`` its affine-free BN normalises with,
    updating the running statistics in training as ``nn.BatchNorm2d`` does."""
    mean, invstd = stacked_statistics(xs, bns, training)
    return list(mean.unbind(0)), list(invstd.unbind(0))


def stacked_statistics(xs: Sequence[torch.Tensor], bns: Sequence[nn.BatchNorm2d],
                       training: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`bn_statistics` as two ``(K, C)`` tensors, the running statistics of all K
    updated together."""
    with torch.no_grad():
        eps = torch.tensor([bn.eps for bn in bns], dtype=xs[0].dtype, device=xs[0].device)
        if not training:
            mean = torch.stack([bn.running_mean for bn in bns])
            var = torch.stack([bn.running_var for bn in bns])
            return mean, torch.rsqrt(var + eps[:, None])
        var, mean = (torch.stack(t) for t in zip(*(_var_mean(x) for x in xs)))
        tracked = [bn for bn in bns if bn.running_mean is not None]
        if tracked:
            _update_running(tracked, [k for k, bn in enumerate(bns)
                                      if bn.running_mean is not None], mean, var,
                            xs[0].numel() // xs[0].shape[1])
        return mean, torch.rsqrt(var + eps[:, None])


def _update_running(bns: Sequence[nn.BatchNorm2d], idx: Sequence[int], mean: torch.Tensor,
                    var: torch.Tensor, count: int) -> None:
    """``nn.BatchNorm2d``'s running-statistics update (unbiased variance; momentum ``None``: a
    cumulative average), for several BNs at once where their momenta agree."""
    torch._foreach_add_([bn.num_batches_tracked for bn in bns], 1)
    momenta = [bn.momentum if bn.momentum is not None else 1.0 / float(bn.num_batches_tracked)
               for bn in bns]
    unbiased = var * (count / max(count - 1, 1))
    if len(set(momenta)) == 1:
        m = momenta[0]
        means, variances = [bn.running_mean for bn in bns], [bn.running_var for bn in bns]
        torch._foreach_mul_(means, 1 - m)
        torch._foreach_add_(means, list(mean[list(idx)].unbind(0)), alpha=m)
        torch._foreach_mul_(variances, 1 - m)
        torch._foreach_add_(variances, list(unbiased[list(idx)].unbind(0)), alpha=m)
        return
    for bn, k, m in zip(bns, idx, momenta):
        bn.running_mean.mul_(1 - m).add_(mean[k], alpha=m)
        bn.running_var.mul_(1 - m).add_(unbiased[k], alpha=m)


def _var_mean(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel biased variance and mean (two passes, on the row view when there is one)."""
    r = rows(x)
    if r is None:
        return torch.var_mean(x, dim=(0, 2, 3), unbiased=False)
    mean = r.sum(dim=0) / r.shape[0]
    d = r - mean
    return (d * d).sum(dim=0) / r.shape[0], mean


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
    if not tails:  # plain autograd ops: differentiable twice (second-order DARTS)
        out = plain[0] * w_plain[0]
        for j in range(1, len(plain)):
            out = torch.addcmul(out, plain[j], w_plain[j])
        return out
    mean, invstd = stacked_statistics(tails, bns, training)
    return _Mixture.apply(w_plain, w_tails, training, mean, invstd, len(plain), *plain,
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


# ---- PC-DARTS: the partial-channel merges of a node's inputs and their weighted sum ----------
def _merged_views(t: torch.Tensor, split: int, k: int, shuffle: bool):
    """Views of the channels of a merged tensor ``t`` that hold the mixture's output and
    those that hold the bypass. PC-DARTS ``channel_shuffle(cat(mix, bypass), k)`` puts mixture
    channel ``j`` at ``j k`` and bypass channel ``(i - 1) split + j`` at ``j k + i``: with the
    shuffle the bypass view is ``(N, split, k - 1, H, W)`` (see :func:`_bypass_view`)."""
    if not shuffle:
        return t[:, :split], t[:, split:]
    t5 = t.unflatten(1, (split, k))
    return t5[:, :, 0], t5[:, :, 1:]


def _bypass_view(b: torch.Tensor, split: int, k: int, shuffle: bool) -> torch.Tensor:
    """A bypass tensor ``(N, (k - 1) split, H, W)`` shaped as the bypass view of the merge."""
    return b.unflatten(1, (k - 1, split)).transpose(1, 2) if shuffle else b


class _PartialSum(torch.autograd.Function):
    """``sum_j p[j] * merge(mix_j, bypass_j)`` with ``merge`` the PC-DARTS concatenation and
    channel shuffle, written straight into the output's channels. Saved for backward: the
    mixtures' outputs (``C/k`` channels) and the bypasses (views of the node inputs, which the
    candidates keep anyway), never the merged full-width tensors."""

    @staticmethod
    def forward(ctx, p, split: int, k: int, shuffle: bool, *ts):  # noqa: D102
        n = len(ts) // 2
        mixes = ts[:n]
        byps = [_bypass_view(b, split, k, shuffle) for b in ts[n:]]
        m = mixes[0]
        out = torch.empty((m.shape[0], split * k, m.shape[2], m.shape[3]), dtype=m.dtype,
                          device=m.device, memory_format=_format(m))
        om, ob = _merged_views(out, split, k, shuffle)
        om.copy_(mixes[0]).mul_(p[0])
        ob.copy_(byps[0]).mul_(p[0])
        for j in range(1, n):
            om.addcmul_(mixes[j], p[j])
            ob.addcmul_(byps[j], p[j])
        ctx.split, ctx.k, ctx.shuffle = split, k, shuffle
        ctx.save_for_backward(p, *ts)
        return out

    @staticmethod
    def backward(ctx, g):  # noqa: D102
        p, *ts = ctx.saved_tensors
        n = len(ts) // 2
        split, k, shuffle = ctx.split, ctx.k, ctx.shuffle
        gm, gb = _merged_views(g, split, k, shuffle)
        byps = [_bypass_view(b, split, k, shuffle) for b in ts[n:]]
        dp = None
        if ctx.needs_input_grad[0]:
            dp = torch.stack([(gm * ts[j]).sum() + (gb * byps[j]).sum() for j in range(n)])
        gm = gm.contiguous(memory_format=_format(ts[0]))
        dm = [gm * p[j] if ctx.needs_input_grad[4 + j] else None for j in range(n)]
        # (differentiable ops only: the function is differentiable twice)
        db = [_bypass_back(gb * p[j], shuffle) if ctx.needs_input_grad[4 + n + j] else None
              for j in range(n)]
        return (dp, None, None, None, *dm, *db)


def _bypass_back(t: torch.Tensor, shuffle: bool) -> torch.Tensor:
    """The inverse of :func:`_bypass_view` (a copy where the shuffle needs one)."""
    return t.transpose(1, 2).flatten(1, 2) if shuffle else t


def _format(t: torch.Tensor) -> torch.memory_format:
    if t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


def partial_sum(p: torch.Tensor, mixes: Sequence[torch.Tensor], bypasses: Sequence[torch.Tensor],
                split: int, k: int, shuffle: bool) -> torch.Tensor:
    """``sum_j p[j] * channel_shuffle(cat([mixes[j], bypasses[j]]), k)`` (PC-DARTS: the
    partial-channel merges of a node's inputs weighted by the edge normalisation ``p``), in one
    autograd function that never materialises the merged tensors."""
    return _PartialSum.apply(p, split, k, shuffle, *mixes, *bypasses)
