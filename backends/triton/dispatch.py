"""Which implementation runs a supernet's fused operations: ``NASC_KERNELS``, read at every
call (so tests and scripts can switch it):

* ``auto`` (the default) — the Triton kernels for CUDA tensors when triton is installed, the
  torch path otherwise (on the CPU the torch path is faster than the interpreter). triton is
  an optional dependency (``pip install 'nasc[gpu]'``; PyTorch's CUDA wheels bring it): CUDA
  tensors without it run the torch path, with one :class:`KernelFallbackWarning` per process
  saying so and how to install it;
* ``triton`` — always the Triton kernels: on CPU tensors they need ``TRITON_INTERPRET=1`` (set
  before the first kernel call: triton reads it when a kernel is defined) and otherwise fail with
  a :class:`KernelError`; never a silent fallback. A missing triton is an error too;
* ``torch`` — always the torch path.

The torch path of the mixtures is :mod:`nasc.backends.torch.mixture` (one autograd function per
mixture, tuned for the CPU); the Triton kernels compute the same sums.
"""

from __future__ import annotations

import importlib
import os
import warnings
from collections.abc import Sequence
from types import ModuleType

import torch
from nasc.backends.torch import mixture as torch_mixture
from nasc.backends.torch.mixture import bn_statistics
from nasc.backends.triton.layout import KernelError
from torch import nn

__all__ = [
    "KernelError",
    "KernelFallbackWarning",
    "MODES",
    "kernels_mode",
    "mixture",
    "partial_merge",
    "use_triton",
    "weighted_bn_sum",
    "weighted_concat",
    "weighted_sum",
]

MODES = ("auto", "triton", "torch")


def kernels_mode() -> str:
    """The current ``NASC_KERNELS`` setting (``auto`` when unset or empty)."""
    mode = os.environ.get("NASC_KERNELS", "").strip().lower() or "auto"
    if mode not in MODES:
        raise KernelError(
            f"NASC_KERNELS={os.environ['NASC_KERNELS']!r} is not a kernel setting; "
            f"expected one of {', '.join(MODES)}")
    return mode


def triton_available() -> bool:
    """Whether ``import triton`` works."""
    try:
        importlib.import_module("triton")
    except ImportError:
        return False
    return True


class KernelFallbackWarning(UserWarning):
    """``NASC_KERNELS=auto`` ran CUDA tensors on the torch path: triton is not installed."""


def _triton_or_warn() -> bool:
    """Whether triton can be imported; if not, warn (once per process: the warning is raised
    from this one line) that CUDA tensors run the torch path."""
    if triton_available():
        return True
    warnings.warn(
        "NASC_KERNELS=auto: CUDA tensors, but triton is not installed, so the supernet's fused "
        "ops (mixture, partial channels, input aggregation) run on the torch path (slower, "
        "more memory). Install the kernels with pip install 'nasc[gpu]' (or pip install "
        "triton), or set NASC_KERNELS=torch to choose the torch path.",
        KernelFallbackWarning, stacklevel=1)
    return False


def _interpreter_on() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def use_triton(*tensors: torch.Tensor) -> bool:
    """Whether the Triton kernels run on ``tensors`` under the current setting; raises a
    :class:`KernelError` when ``NASC_KERNELS=triton`` cannot be honoured."""
    mode = kernels_mode()
    if mode == "torch" or not all(isinstance(t, torch.Tensor) for t in tensors):
        return False  # (an fx proxy while tracing records the torch path)
    on_cuda = all(t.device.type == "cuda" for t in tensors)
    if mode == "auto":
        return on_cuda and _triton_or_warn()
    if not triton_available():
        raise KernelError("NASC_KERNELS=triton but triton cannot be imported; install it "
                          "(pip install 'nasc[gpu]', or pip install triton; Linux) or set "
                          "NASC_KERNELS=torch or auto")
    if not on_cuda:
        devices = sorted({str(t.device) for t in tensors})
        if not _interpreter_on():
            raise KernelError(
                f"NASC_KERNELS=triton on {', '.join(devices)} tensors needs Triton's "
                "interpreter: set TRITON_INTERPRET=1 before the first kernel call, or use "
                "NASC_KERNELS=auto (torch path on the CPU)")
        if not _kernels("mixture").INTERPRETED:
            raise KernelError(
                "NASC_KERNELS=triton on CPU tensors: the kernels were defined without "
                "TRITON_INTERPRET=1 (triton reads it when a kernel is defined); set it before "
                "the first kernel call, in a fresh process")
    return True


def _kernels(name: str) -> ModuleType:
    """A kernel module, imported at its first use (so that ``TRITON_INTERPRET`` set by then
    counts)."""
    return importlib.import_module(f"nasc.backends.triton.{name}")


def weighted_sum(w: torch.Tensor, xs: Sequence[torch.Tensor]) -> torch.Tensor:
    """``sum_k w[k] * xs[k]`` (a mixture, DARTS eq. 2, or a summed input aggregation, DCNAS
    eq. 4), ``w`` a vector with one weight per tensor."""
    if use_triton(w, *xs):
        return _kernels("mixture").weighted_sum(w, _promoted(xs))
    return torch_mixture.weighted_sum(w, xs)


def weighted_concat(w: torch.Tensor, xs: Sequence[torch.Tensor]) -> torch.Tensor:
    """``cat_k(w[k] * xs[k])`` along channels (a concatenating input aggregation)."""
    if use_triton(w, *xs):
        return _kernels("aggregate").weighted_concat(w, _promoted(xs))
    return torch.cat([wk * x for wk, x in zip(w, xs)], dim=1)


def weighted_bn_sum(w: torch.Tensor, xs: Sequence[torch.Tensor],
                    bns: Sequence[nn.BatchNorm2d], training: bool,
                    base: torch.Tensor | None = None) -> torch.Tensor:
    """``base + sum_k w[k] * bns[k](xs[k])`` for affine-free BNs (their running statistics
    updated as ``nn.BatchNorm2d`` does), the BN outputs recomputed in backward."""
    if not use_triton(w, *xs):
        out = torch_mixture.weighted_bn_sum(w, xs, bns, training)
        return out if base is None else base + out
    xs = _promoted(xs)
    means, invstds = bn_statistics(xs, bns, training)
    fused = _kernels("mixture").weighted_bn_sum
    if base is not None and base.dtype != xs[0].dtype:  # (autocast) torch's type promotion
        return base + fused(w, xs, means, invstds, training)
    return fused(w, xs, means, invstds, training, base)


def mixture(w_plain: torch.Tensor, plain: Sequence[torch.Tensor], w_tails: torch.Tensor,
            tails: Sequence[torch.Tensor], bns: Sequence[nn.BatchNorm2d],
            training: bool) -> torch.Tensor:
    """A mixed op (DARTS eq. 2) ``sum_j w_plain[j] plain[j] + sum_k w_tails[k] bns[k](tails[k])``
    over its computed candidates, the affine-free BN tails fused (their outputs recomputed in
    backward); on the Triton path one kernel writes the output once."""
    if not use_triton(w_plain, w_tails, *plain, *tails):
        return torch_mixture.mixture(w_plain, plain, w_tails, tails, bns, training)
    kern = _kernels("mixture")
    xs = _promoted([*plain, *tails])
    plain, tails = xs[: len(plain)], xs[len(plain) :]
    if not tails:
        return kern.weighted_sum(w_plain, plain)
    means, invstds = bn_statistics(tails, bns, training)
    return kern.weighted_mixture(w_plain, plain, w_tails, tails, means, invstds, training)


def _promoted(xs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """``xs`` in one dtype, torch's promotion of theirs (as ``a + b`` would give; autocast
    mixes fp32 and bf16 outputs): a kernel reads one dtype."""
    dtype = xs[0].dtype
    for x in xs[1:]:
        dtype = torch.promote_types(dtype, x.dtype)
    return [x if x.dtype == dtype else x.to(dtype) for x in xs]


def partial_merge(mix: torch.Tensor, x: torch.Tensor, split: int, groups: int,
                  stride: int = 1) -> torch.Tensor:
    """The fused partial-channel merge (PC-DARTS; DCNAS eq. 7) by the Triton kernel; the torch
    path is ``PartialMerge.forward`` in ``backends/torch/ops.py``, which asks
    :func:`use_triton` first."""
    return _kernels("partial").partial_merge(mix, x, split, groups, stride)
