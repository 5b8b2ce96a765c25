"""PyTorch modules of the HR-NAS searching block (Ding et al., CVPR 2021, §3.1–3.3).

* :class:`MixConv` — the convolution path of the searching block, laid out as the authors'
  ``InvertedResidualChannels`` (dingmyu/HR-NAS ``models/mobilenet_base.py``): one branch per
  kernel size ``k`` in (3, 5, 7) with ``c_k`` hidden channels, each ``[1x1 C_in->c_k, BN, ReLU]
  -> [k x k depthwise, stride, BN, ReLU] -> 1x1 c_k->C`` (the expansion ``C_0`` of eq. 5 split
  per branch, the projection ``C_4`` split per branch and summed: the same parameters and
  function), then one BN over the sum (``pw_bn``) and the residual: the identity when the stride
  is 1 and the width is kept, else a 1x1 conv with ``gcd(C_in, C)`` groups and the stride (no
  BN), as in the reference. A branch with 0 channels is absent.
* :class:`LightweightTransformer` — §3.1, Fig. 2: the projector ``P`` (bilinear resize to
  ``s x s``, concatenation of the 2-D positional map of eq. 2, 1x1 conv to ``n`` tokens, BN), the
  encoder (eq. 3 multi-head attention with ``W^Q, W^K, W^V in R^{s^2 x d}``, ``W^O in R^{hd x
  s^2}``, no biases; the FFN of eq. 4 with hidden width ``ffn * s^2`` and biases; a residual
  connection around each followed by LayerNorm), the decoder without the first attention
  (``n`` learnt queries ``S`` attend to the encoder output; its residual adds the encoder output,
  as the reference ``TransformerDecoderLayer`` does), and the inverse projector (1x1 conv to
  ``C``, BN, bilinear resize to the output size — half the input for a reduction block).
  Where the paper is explicit it is followed (eq. 2's map ``i/h, j/w``; eq. 4's ``4 s^2`` FFN
  with biases), where it is silent the reference code (resize before the projection conv,
  decoder residual, no dropout at inference). The transformer returns only its path; the
  residual of the searching block lives in :class:`MixConv`, so ``block = mixconv + transformer``
  is eq. 5 with the residual counted once.

Importance factors (§3.3, §4.1): "for the MixConv, we use the scales from the batch
normalization layers after the depth-wise convolutions ... for the Transformer, the scales from
the batch normalization layer in the projector P". They are the ordinary BN weights here. When a
module is built with ``eps`` (an op relaxed by the ``importance`` pass), a unit whose factor
has ``|gamma| <= eps`` is *masked*: its BN scale and shift are multiplied by 0 (a channel then
outputs ReLU(0) = 0; a token is also left out of every attention's keys and its decoder row
is zeroed). The masked module computes exactly what the module with those units removed
computes (:meth:`kept_state_dict` gives that smaller module's weights), which is what makes
HR-NAS's progressive shrinking a pure IR rewrite plus a weight slice.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from nasc.backends.torch.conv import make_conv2d
from nasc.backends.torch.library import OpCall
from nasc.ir.cost.hrnas import KERNELS  # the kernel size and op parameter of each branch
from torch import nn

__all__ = [
    "HRNAS_BUILDERS",
    "KERNELS",
    "Attention",
    "ConvBNReLU",
    "LightweightTransformer",
    "MixConv",
    "ZeroPath",
    "positional_map",
]


def _masked_bn(bn: nn.BatchNorm2d, x: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
    """``bn(x)`` with the scale and shift of the channels outside ``keep`` set to 0."""
    if keep is None:
        return bn(x)
    momentum = bn.momentum
    if bn.training and bn.num_batches_tracked is not None:
        bn.num_batches_tracked.add_(1)
        if momentum is None:  # a cumulative moving average, as nn.BatchNorm2d computes it
            momentum = 1.0 / float(bn.num_batches_tracked)
    return F.batch_norm(
        x, bn.running_mean, bn.running_var, bn.weight * keep, bn.bias * keep,
        bn.training or bn.running_mean is None, momentum or 0.0, bn.eps,
    )  # fmt: skip


def _alive(bn: nn.BatchNorm2d, eps: float | None) -> torch.Tensor | None:
    """1.0 where the importance factor ``|gamma| > eps``, 0.0 elsewhere (``None``: no masking)."""
    if eps is None:
        return None
    return (bn.weight.detach().abs() > eps).to(bn.weight.dtype)


def _sliced(state: Mapping[str, torch.Tensor], rules: Mapping[str, tuple[int, torch.Tensor]]):
    """``state`` with ``rules[name] = (dim, index)`` applied by ``index_select``."""
    out = {}
    for name, t in state.items():
        rule = rules.get(name)
        out[name] = t.index_select(rule[0], rule[1]).clone() if rule else t.clone()
    return out


# ---- MixConv ---------------------------------------------------------------------------------
class ConvBNReLU(nn.Sequential):
    """The reference ``ConvBNReLU``: conv (padding (k-1)//2, no bias) -> BN -> ReLU."""

    def __init__(self, C_in: int, C_out: int, k: int, stride: int = 1, groups: int = 1) -> None:
        super().__init__(
            make_conv2d(C_in, C_out, k, stride, (k - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(C_out),
            nn.ReLU(),
        )


class MixConv(nn.Module):
    """The MixConv path of the HR-NAS searching block (see the module docstring).

    >>> m = MixConv(8, 8, hidden=(32, 32, 32))
    >>> m(torch.randn(1, 8, 16, 16)).shape
    torch.Size([1, 8, 16, 16])
    """

    def __init__(
        self,
        C_in: int,
        C_out: int,
        hidden: Sequence[int],
        stride: int = 1,
        eps: float | None = None,
    ) -> None:
        super().__init__()
        if len(hidden) != len(KERNELS) or any(int(w) < 0 for w in hidden):
            raise ValueError(f"mixconv: hidden widths must be 3 counts >= 0, got {hidden!r}")
        self.C_in, self.C_out, self.stride, self.eps = C_in, C_out, stride, eps
        self.hidden = tuple(int(w) for w in hidden)
        self.kernels = tuple(k for (k, _), w in zip(KERNELS, self.hidden) if w > 0)
        self.ops = nn.ModuleList()
        for (k, _), w in zip(KERNELS, self.hidden):
            if w == 0:
                continue
            self.ops.append(nn.Sequential(
                ConvBNReLU(C_in, w, 1),
                ConvBNReLU(w, w, k, stride, groups=w),
                make_conv2d(w, C_out, 1, bias=False),
            ))  # fmt: skip
        self.pw_bn = nn.BatchNorm2d(C_out) if self.ops else None
        self.use_res_connect = stride == 1 and C_in == C_out
        self.residual = (
            None if self.use_res_connect
            else make_conv2d(C_in, C_out, 1, stride, 0, groups=math.gcd(C_in, C_out), bias=False)
        )  # fmt: skip

    def depthwise_bns(self) -> list[nn.BatchNorm2d]:
        """The BN after each branch's depthwise conv: its weights are the importance factors."""
        return [op[1][1] for op in self.ops]

    def _branch(self, op: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
        h = op[0](x)
        conv, bn, act = op[1]
        h = act(_masked_bn(bn, conv(h), _alive(bn, self.eps)))
        return op[2](h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        res = x if self.residual is None else self.residual(x)
        if not self.ops:
            return res
        acc = self._branch(self.ops[0], x)
        for op in self.ops[1:]:
            acc = acc + self._branch(op, x)
        out = self.pw_bn(acc)
        if self.eps is not None:  # every channel removed: no branch, no BN (as when shrunk)
            alive = torch.stack([_alive(bn, self.eps).amax() for bn in self.depthwise_bns()])
            out = out * alive.amax()
        return res + out

    def kept(self, eps: float) -> dict[int, torch.Tensor]:
        """Kernel size -> indices of the hidden channels with ``|gamma| > eps``."""
        return {
            k: torch.nonzero(bn.weight.detach().abs() > eps).flatten()
            for k, bn in zip(self.kernels, self.depthwise_bns())
        }

    def kept_state_dict(self, eps: float) -> dict[str, torch.Tensor]:
        """The state of the module with only the channels :meth:`kept` (branches left with no
        channel dropped): it loads into ``MixConv(C_in, C, hidden=<counts kept>, ...)``, which
        computes what this module computes with ``eps`` masking."""
        keep = self.kept(eps)
        state = self.state_dict()
        out: dict[str, torch.Tensor] = {}
        j = 0
        for i, k in enumerate(self.kernels):
            idx = keep[k]
            if idx.numel() == 0:
                continue
            rules = {
                f"ops.{i}.0.0.weight": (0, idx), f"ops.{i}.1.0.weight": (0, idx),
                f"ops.{i}.2.weight": (1, idx),
                **{f"ops.{i}.{a}.1.{p}": (0, idx) for a in (0, 1)
                   for p in ("weight", "bias", "running_mean", "running_var")},
            }  # fmt: skip
            part = {n: t for n, t in state.items() if n.startswith(f"ops.{i}.")}
            for n, t in _sliced(part, rules).items():
                out[f"ops.{j}." + n[len(f"ops.{i}.") :]] = t
            j += 1
        if j:
            out.update({n: t.clone() for n, t in state.items() if n.startswith("pw_bn.")})
        out.update({n: t.clone() for n, t in state.items() if n.startswith("residual.")})
        return out

    def extra_repr(self) -> str:
        return f"{self.C_in}, {self.C_out}, hidden={self.hidden}, stride={self.stride}"


# ---- the lightweight transformer -------------------------------------------------------------
def positional_map(s: int) -> torch.Tensor:
    """HR-NAS eq. 2 at ``s x s``: ``P[0, i, j] = i / s``, ``P[1, i, j] = j / s``; (1, 2, s, s).

    >>> positional_map(2)[0, :, 1, 0].tolist()
    [0.5, 0.0]
    """
    r = torch.arange(s, dtype=torch.float32) / s
    return torch.stack([r[:, None].expand(s, s), r[None, :].expand(s, s)])[None]


class Attention(nn.Module):
    """HR-NAS eq. 3: ``softmax(Q W^Q (K W^K)^T / sqrt(d)) V W^V`` per head, heads concatenated and
    mapped back by ``W^O``; no biases. ``bias`` (shape (keys,)) is added to the scores."""

    def __init__(self, dim: int, d: int, h: int) -> None:
        super().__init__()
        self.d, self.h = d, h
        self.q = nn.Linear(dim, h * d, bias=False)
        self.k = nn.Linear(dim, h * d, bias=False)
        self.v = nn.Linear(dim, h * d, bias=False)
        self.o = nn.Linear(h * d, dim, bias=False)

    def forward(self, q: torch.Tensor, kv: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        b, lq, lk = q.shape[0], q.shape[1], kv.shape[1]
        Q = self.q(q).view(b, lq, self.h, self.d).transpose(1, 2)
        K = self.k(kv).view(b, lk, self.h, self.d).transpose(1, 2)
        V = self.v(kv).view(b, lk, self.h, self.d).transpose(1, 2)
        scores = Q @ K.transpose(-1, -2) / math.sqrt(self.d)
        if bias is not None:
            scores = scores + bias
        out = scores.softmax(dim=-1) @ V
        return self.o(out.transpose(1, 2).reshape(b, lq, self.h * self.d))


class _FFN(nn.Sequential):
    """HR-NAS eq. 4: ``max(0, x W_1 + b_1) W_2 + b_2``."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, dim))


class _EncoderLayer(nn.Module):
    def __init__(self, dim: int, d: int, h: int, ffn: int) -> None:
        super().__init__()
        self.attn, self.ffn = Attention(dim, d, h), _FFN(dim, ffn * dim)
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        x = self.norm1(x + self.attn(x, x, bias))
        return self.norm2(x + self.ffn(x))


class _DecoderLayer(_EncoderLayer):
    def forward(
        self,
        query: torch.Tensor,
        memory: torch.Tensor,  # type: ignore[override]
        bias: torch.Tensor | None,
    ) -> torch.Tensor:
        t = self.norm1(memory + self.attn(query, memory, bias))
        return self.norm2(t + self.ffn(t))


class LightweightTransformer(nn.Module):
    """The HR-NAS lightweight transformer path with ``n`` tokens (see the module docstring).

    >>> t = LightweightTransformer(8, 16, n=4, stride=2)
    >>> t(torch.randn(2, 8, 10, 10)).shape
    torch.Size([2, 16, 5, 5])
    """

    def __init__(
        self,
        C_in: int,
        C_out: int,
        n: int,
        stride: int = 1,
        s: int = 8,
        d: int = 64,
        h: int = 1,
        ffn: int = 4,
        eps: float | None = None,
    ) -> None:
        super().__init__()
        if n < 1:
            raise ValueError("transformer: a transformer needs at least one token (n >= 1)")
        self.C_in, self.C_out, self.n, self.stride = C_in, C_out, n, stride
        self.s, self.eps = s, eps
        dim = s * s
        self.input_proj = make_conv2d(C_in + 2, n, 1, bias=False)
        self.input_norm = nn.BatchNorm2d(n)
        self.encoder = _EncoderLayer(dim, d, h, ffn)
        self.query_embed = nn.Embedding(n, dim)
        self.decoder = _DecoderLayer(dim, d, h, ffn)
        self.reverse_proj = make_conv2d(n, C_out, 1, bias=False)
        self.reverse_norm = nn.BatchNorm2d(C_out)
        self.register_buffer("pos", positional_map(s), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        s = self.s
        f = F.interpolate(x, size=(s, s), mode="bilinear", align_corners=False)
        f = torch.cat([f, self.pos.to(f.dtype).expand(b, -1, -1, -1)], dim=1)
        alive = _alive(self.input_norm, self.eps)
        f = _masked_bn(self.input_norm, self.input_proj(f), alive)
        tokens = f.flatten(2)  # (b, n, s*s)
        bias = None if alive is None else (alive - 1.0) * 1e9  # dead tokens are no keys
        memory = self.encoder(tokens, bias)
        query = self.query_embed.weight.unsqueeze(0).expand(b, -1, -1)
        out = self.decoder(query, memory, bias)
        if alive is not None:
            out = out * alive[:, None]
        out = self.reverse_norm(self.reverse_proj(out.reshape(b, self.n, s, s)))
        if alive is not None:  # every token removed: the path adds nothing (as when shrunk)
            out = out * alive.amax()
        size = (-(-x.shape[2] // self.stride), -(-x.shape[3] // self.stride))
        return F.interpolate(out, size=size, mode="bilinear", align_corners=False)

    def kept(self, eps: float) -> torch.Tensor:
        """Indices of the tokens with ``|gamma| > eps`` (projector BN scale)."""
        return torch.nonzero(self.input_norm.weight.detach().abs() > eps).flatten()

    def kept_state_dict(self, eps: float) -> dict[str, torch.Tensor]:
        """The state of the transformer with only the tokens :meth:`kept` (HR-NAS §3.3: "remove
        the corresponding weights from the 1x1 convolutions of the projections and the
        corresponding embedding from queries S")."""
        idx = self.kept(eps)
        rules = {"input_proj.weight": (0, idx), "query_embed.weight": (0, idx),
                 "reverse_proj.weight": (1, idx),
                 **{f"input_norm.{p}": (0, idx)
                    for p in ("weight", "bias", "running_mean", "running_var")}}  # fmt: skip
        return _sliced(self.state_dict(), rules)

    def extra_repr(self) -> str:
        return (
            f"{self.C_in}, {self.C_out}, n={self.n}, stride={self.stride}, s={self.s}, "
            f"eps={self.eps}"
        )


class ZeroPath(nn.Module):
    """A transformer whose tokens are all removed: "the Transformer will degenerate into a
    residual path" (§3.3), i.e. it adds nothing; zeros of the output's shape."""

    def __init__(self, C_out: int, stride: int) -> None:
        super().__init__()
        self.C_out, self.stride = C_out, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = -(-x.shape[2] // self.stride), -(-x.shape[3] // self.stride)
        return x.new_zeros(x.shape[0], self.C_out, h, w)


# ---- builders --------------------------------------------------------------------------------
def _param(call: OpCall, name: str) -> Any:
    if name not in call.params or call.params[name] is None:
        raise ValueError(f"op {call.op!r}: missing parameter {name!r}")
    return call.params[name]


def _eps(call: OpCall) -> float | None:
    """The masking threshold of an op relaxed by the ``importance`` pass (``None`` otherwise)."""
    eps = call.params.get("eps")
    return None if eps is None else float(eps)


def _mixconv(call: OpCall) -> nn.Module:
    hidden = [int(_param(call, p)) for _, p in KERNELS]
    return MixConv(call.c_in, call.c_out, hidden, int(call.params.get("stride", 1)), _eps(call))


def _transformer(call: OpCall) -> nn.Module:
    n, stride = int(_param(call, "n")), int(call.params.get("stride", 1))
    if n == 0:
        return ZeroPath(call.c_out, stride)
    return LightweightTransformer(
        call.c_in, call.c_out, n, stride, s=int(call.params.get("s", 8)),
        d=int(call.params.get("d", 64)), h=int(call.params.get("h", 1)),
        ffn=int(call.params.get("ffn", 4)), eps=_eps(call),
    )  # fmt: skip


def _upsample_nearest(call: OpCall) -> nn.Module:
    return nn.Upsample(scale_factor=float(call.params.get("factor", 2)), mode="nearest")


#: The builders of stdlib/hrnas_ops.nas, merged into ``ops.BUILDERS``.
HRNAS_BUILDERS = {
    "mixconv": _mixconv,
    "transformer": _transformer,
    "upsample_nearest": _upsample_nearest,
}
