"""PyTorch modules of the kernel-size batches made by :mod:`nasc.ir.passes.batch`.

A batch of K candidates that read one input and differ only in kernel size (``sep_conv``,
``dil_conv`` or ``mbconv`` with ``ks=[k_1, ..., k_K]``) outputs the K candidates' outputs
concatenated along channels, in the order of ``ks``. Each candidate keeps its own reference
module (``batch.candidates[i]``, the module :data:`~nasc.backends.torch.ops.BUILDERS` builds
for the single op, with the same state-dict keys), so its weights stay inspectable and
``nasc.instantiate(space, arch, weights=supernet)`` copies them out (:meth:`KernelBatch.
candidate_state`). The forward runs the group as one computation over ``K * C`` channels:

* a depthwise k x k conv equals a depthwise k_max x k_max conv with the kernel zero-padded by
  ``(k_max - k) / 2`` per side and the input padding grown by ``dilation * (k_max - k) / 2``
  (every extra tap multiplies a zero): the depthwise convs of all kernel sizes are one
  ``conv2d`` call with ``groups = K * C`` (the input repeated K times along channels, the
  candidates' kernels padded and concatenated);
* 1x1 convs of the K candidates on the K-block tensor are one grouped conv (``groups = K``),
  a 1x1 conv reading the shared input is one conv with the candidates' kernels concatenated;
* a batch norm is per channel, so the K candidates' BNs are one ``batch_norm`` call over the
  concatenated statistics (the candidates' running statistics updated from it, as
  ``nn.BatchNorm2d`` would);
* MobileNetV3 squeeze-and-excitation: one pooling, grouped 1x1 convs with bias.

The batched weights are built from the candidates' parameters at every call (pad, concatenate:
small tensors), so gradients reach each candidate's own parameters. Results equal the separate
candidates' up to float summation order (``tests/backends/test_batched.py``). The padded taps
cost multiply-adds: :func:`nasc.ir.cost.batch.padded_macs` counts what runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from nasc.backends.torch.conv import conv2d
from nasc.backends.torch.library import OpCall
from torch import nn

__all__ = ["BATCHED_BUILDERS", "DilConvBatch", "KernelBatch", "MBConvBatch", "SepConvBatch",
           "candidate_modules", "copy_weights", "padded_kernel"]


def padded_kernel(w: torch.Tensor, k_max: int, k: int | None = None) -> torch.Tensor:
    """``w`` (``[..., k, k]``) zero-padded symmetrically to ``[..., k_max, k_max]``. Give the
    module's kernel size ``k`` when tracing (fx cannot branch on a traced shape)."""
    p = (k_max - (w.shape[-1] if k is None else k)) // 2
    return F.pad(w, (p, p, p, p)) if p else w


def _depthwise(convs: Sequence[nn.Conv2d], k_max: int) -> torch.Tensor:
    """The K depthwise kernels padded to ``k_max`` and stacked: ``[K * C, 1, k_max, k_max]``."""
    return torch.cat([padded_kernel(c.weight, k_max, c.kernel_size[-1]) for c in convs])


def _cat(convs: Sequence[nn.Conv2d]) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The K convs' weights (and biases) concatenated along output channels."""
    w = torch.cat([c.weight for c in convs])
    b = torch.cat([c.bias for c in convs]) if convs[0].bias is not None else None
    return w, b


def _batch_norm(x: torch.Tensor, bns: Sequence[nn.BatchNorm2d], training: bool) -> torch.Tensor:
    """``cat_i bns[i](x_i)`` for the K channel blocks ``x_i`` of ``x``, in one call; the running
    statistics of each BN are updated exactly as ``nn.BatchNorm2d.forward`` updates them."""
    bn = bns[0]
    track = bn.track_running_stats
    use_batch = training or not track
    rm = torch.cat([b.running_mean for b in bns]) if track else None
    rv = torch.cat([b.running_var for b in bns]) if track else None
    w = torch.cat([b.weight for b in bns]) if bn.affine else None
    b_ = torch.cat([b.bias for b in bns]) if bn.affine else None
    momentum = 0.0
    if training and track:
        with torch.no_grad():
            for b in bns:
                b.num_batches_tracked.add_(1)
        momentum = bn.momentum if bn.momentum is not None else 1.0 / float(
            bn.num_batches_tracked)
    out = F.batch_norm(x, rm, rv, w, b_, use_batch, momentum, bn.eps)
    if training and track:
        with torch.no_grad():
            c = bn.num_features
            for i, b in enumerate(bns):
                b.running_mean.copy_(rm[i * c:(i + 1) * c])
                b.running_var.copy_(rv[i * c:(i + 1) * c])
    return out


def _repeat(x: torch.Tensor, k: int) -> torch.Tensor:
    """``x`` repeated ``k`` times along channels (in ``x``'s memory format)."""
    return torch.cat([x] * k, dim=1)


class KernelBatch(nn.Module):
    """K candidate modules of kernel sizes ``ks`` run as one; ``candidates[i]`` is the reference
    module of kernel size ``ks[i]``."""

    def __init__(self, ks: Sequence[int], candidates: Sequence[nn.Module]) -> None:
        super().__init__()
        self.ks = tuple(int(k) for k in ks)
        self.k_max = max(self.ks)
        self.candidates = nn.ModuleList(candidates)

    def candidate(self, params: Mapping[str, Any]) -> nn.Module:
        """The candidate module of the single op with ``params`` (its ``k``)."""
        k = params.get("k")
        if k not in self.ks:
            raise ValueError(f"kernel size {k!r} is not in this batch (ks={list(self.ks)})")
        return self.candidates[self.ks.index(k)]

    def candidate_state(self, params: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """The state dict of the single op with ``params``, as its own module has it."""
        return self.candidate(params).state_dict()

    def extra_repr(self) -> str:
        return f"ks={list(self.ks)}"


class SepConvBatch(KernelBatch):
    """DARTS ``SepConv`` (without its leading ReLU) at K kernel sizes: dw (padded, stride),
    grouped 1x1, BN, ReLU, dw (padded), grouped 1x1, BN, over ``K * C_in`` channels."""

    def __init__(self, C_in: int, C_out: int, ks: Sequence[int], stride: int,
                 affine: bool = True) -> None:
        from nasc.backends.torch.ops import SepConv  # (ops.py imports this module)

        super().__init__(ks, [SepConv(C_in, C_out, k, stride, k // 2, affine) for k in ks])
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seqs = [c.op for c in self.candidates]
        n, km = len(seqs), self.k_max
        y = conv2d(_repeat(x, n), _depthwise([s[0] for s in seqs], km), None, self.stride,
                   km // 2, 1, n * x.shape[1], kernel_size=km)
        y = F.conv2d(y, _cat([s[1] for s in seqs])[0], None, 1, 0, 1, n)
        y = F.relu(_batch_norm(y, [s[2] for s in seqs], self.training))
        y = F.conv2d(y, _depthwise([s[4] for s in seqs], km), None, 1, km // 2, 1, y.shape[1])
        y = F.conv2d(y, _cat([s[5] for s in seqs])[0], None, 1, 0, 1, n)
        return _batch_norm(y, [s[6] for s in seqs], self.training)


class DilConvBatch(KernelBatch):
    """DARTS ``DilConv`` (without its leading ReLU) at K kernel sizes: dw (padded, dilation,
    stride), grouped 1x1, BN, over ``K * C_in`` channels."""

    def __init__(self, C_in: int, C_out: int, ks: Sequence[int], stride: int, dilation: int,
                 affine: bool = True) -> None:
        from nasc.backends.torch.ops import DilConv

        super().__init__(ks, [DilConv(C_in, C_out, k, stride, dilation * (k - 1) // 2, dilation,
                                      affine) for k in ks])
        self.stride, self.dilation = stride, dilation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seqs = [c.op for c in self.candidates]
        n, km, d = len(seqs), self.k_max, self.dilation
        y = conv2d(_repeat(x, n), _depthwise([s[0] for s in seqs], km), None, self.stride,
                   d * (km - 1) // 2, d, n * x.shape[1], kernel_size=km)
        y = F.conv2d(y, _cat([s[1] for s in seqs])[0], None, 1, 0, 1, n)
        return _batch_norm(y, [s[2] for s in seqs], self.training)


_ACT = {"relu6": F.relu6, "relu": F.relu, "hswish": F.hardswish}


class MBConvBatch(KernelBatch):
    """MobileNetV2 ``InvertedResidual`` (with optional SE) at K kernel sizes, one expansion
    ratio: the 1x1 expansion of the shared input as one conv (kernels concatenated), BN, act;
    dw (padded, stride) over ``K * hidden`` channels, BN, act; SE with grouped 1x1s; grouped
    1x1 projection, BN; plus the input repeated K times for the residual."""

    def __init__(self, C_in: int, C_out: int, ks: Sequence[int], stride: int, e: float,
                 se: bool, act: str, affine: bool = True) -> None:
        if act not in _ACT:
            raise ValueError(f"unknown activation {act!r}; expected one of {sorted(_ACT)}")
        from nasc.backends.torch.ops import InvertedResidual

        super().__init__(ks, [InvertedResidual(C_in, C_out, stride, e, kernel_size=k, se=se,
                                               act=act, affine=affine) for k in ks])
        self.stride, self.expand, self.se, self.act = stride, e != 1, se, act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seqs = [c.conv for c in self.candidates]
        n, km, act = len(seqs), self.k_max, _ACT[self.act]
        i = 0
        if self.expand:
            y = F.conv2d(x, _cat([s[0][0] for s in seqs])[0])
            y = act(_batch_norm(y, [s[0][1] for s in seqs], self.training))
            i = 1
        else:
            y = _repeat(x, n)
        y = conv2d(y, _depthwise([s[i][0] for s in seqs], km), None, self.stride, km // 2, 1,
                   y.shape[1], kernel_size=km)
        y = act(_batch_norm(y, [s[i][1] for s in seqs], self.training))
        i += 1
        if self.se:
            ses = [s[i] for s in seqs]
            w1, b1 = _cat([m.fc1 for m in ses])
            w2, b2 = _cat([m.fc2 for m in ses])
            scale = F.conv2d(F.relu(F.conv2d(F.adaptive_avg_pool2d(y, 1), w1, b1, groups=n)),
                             w2, b2, groups=n)
            y = F.hardsigmoid(scale) * y
            i += 1
        y = F.conv2d(y, _cat([s[i] for s in seqs])[0], None, 1, 0, 1, n)
        y = _batch_norm(y, [s[i + 1] for s in seqs], self.training)
        if self.candidates[0].use_res_connect:
            y = y + _repeat(x, n)
        return y


def _p(call: OpCall, name: str) -> Any:
    value = call.params.get(name)
    if value is None:
        raise ValueError(f"op {call.op!r}: missing parameter {name!r}")
    return value


BATCHED_BUILDERS = {
    "sep_conv_batch": lambda c: SepConvBatch(c.c_in, _p(c, "C"), _p(c, "ks"), _p(c, "stride"),
                                             c.affine),
    "dil_conv_batch": lambda c: DilConvBatch(c.c_in, _p(c, "C"), _p(c, "ks"), _p(c, "stride"),
                                             _p(c, "dilation"), c.affine),
    "mbconv_batch": lambda c: MBConvBatch(c.c_in, _p(c, "C"), _p(c, "ks"), _p(c, "stride"),
                                          _p(c, "e"), bool(_p(c, "se")), _p(c, "act"), c.affine),
}


def candidate_modules(net: Any) -> dict[tuple, list[nn.Module]]:
    """A supernet's weighted modules keyed by the single op they compute (a batch's candidates
    under the op their slice stands for), in topological order."""
    from nasc.ir.nodes import Op
    from nasc.ir.passes.batch import unbatched

    g = net.graph
    out: dict[tuple, list[nn.Module]] = {}
    for rec in g.nodes_of(Op):
        single = unbatched(g, rec)
        if single is not None:
            batch, op = single
            module = net.ops[str(batch)].candidate(dict(op.params))
        elif str(rec.id) in net.ops and not isinstance(net.ops[str(rec.id)], KernelBatch):
            op, module = rec, net.ops[str(rec.id)]
        else:
            continue
        key = (op.op, op.params, str(op.type), str(op.guard))
        out.setdefault(key, []).append(module)
    return out


def copy_weights(src: Any, dst: Any) -> None:
    """Give supernet ``dst`` the weights, BN statistics and architecture parameters of ``src``,
    the same space compiled with or without :func:`~nasc.ir.passes.batch.batch_kernels`."""
    a, b = candidate_modules(src), candidate_modules(dst)
    if {k: len(v) for k, v in a.items()} != {k: len(v) for k, v in b.items()}:
        raise ValueError("the two supernets do not have the same candidates")
    for key, mods in a.items():
        for m_src, m_dst in zip(mods, b[key]):
            m_dst.load_state_dict(m_src.state_dict())
    with torch.no_grad():
        for lab, alpha in zip(src.labels, src.alpha):
            dst.alpha[dst.labels.index(lab)].copy_(alpha)
