"""Validation and memory layout for the kernels (no triton import here).

Elementwise kernels work on the flat memory of their operands, so every operand must have one
dense layout: NCHW-contiguous or channels_last (the supernet's layout). Operands that do not
share the first one's layout are converted once; a per-channel index on the flat memory is then
``(i // S) % C`` with ``S = H * W`` (NCHW) or ``S = 1`` (channels_last).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

#: The floating dtypes the kernels accept (they accumulate in fp32).
DTYPES = (torch.float32, torch.bfloat16, torch.float16)


class KernelError(ValueError):
    """A kernel cannot run on these arguments, or the kernel setting cannot be honoured."""


def memory_format(t: torch.Tensor) -> torch.memory_format:
    """channels_last for a 4-D tensor stored NHWC (and not also NCHW-contiguous), else
    contiguous_format."""
    if (t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last)
            and not t.is_contiguous()):
        return torch.channels_last
    return torch.contiguous_format


def dense(xs: Sequence[torch.Tensor],
          fmt: torch.memory_format | None = None) -> tuple[list[torch.Tensor],
                                                           torch.memory_format]:
    """``xs`` in one dense layout (the first tensor's, or ``fmt``), each converted at most once."""
    fmt = memory_format(xs[0]) if fmt is None else fmt
    return [x if x.is_contiguous(memory_format=fmt) else x.contiguous(memory_format=fmt)
            for x in xs], fmt


def channel_stride(x: torch.Tensor, fmt: torch.memory_format) -> int:
    """``S`` of the per-channel index ``(i // S) % C`` on the flat memory of a dense 4-D ``x``."""
    return 1 if fmt == torch.channels_last else x.shape[2] * x.shape[3]


def check_operands(name: str, w: torch.Tensor, xs: Sequence[torch.Tensor]) -> None:
    """``w`` a vector with one weight per tensor in ``xs``; ``xs`` one shape, dtype and device."""
    if len(xs) == 0:
        raise KernelError(f"{name}: no inputs to combine")
    x0 = xs[0]
    if w.dim() != 1 or w.shape[0] != len(xs):
        raise KernelError(
            f"{name}: the weights must be a vector of {len(xs)} (one per input), "
            f"got shape {tuple(w.shape)}")
    for i, x in enumerate(xs):
        if x.shape != x0.shape:
            raise KernelError(f"{name}: input {i} has shape {tuple(x.shape)}, "
                              f"input 0 has {tuple(x0.shape)}")
        if x.dtype != x0.dtype:
            raise KernelError(f"{name}: input {i} is {x.dtype}, input 0 is {x0.dtype}")
        if x.device != x0.device:
            raise KernelError(f"{name}: input {i} is on {x.device}, input 0 on {x0.device}")
    check_dtype(name, x0)
    check_dtype(name, w)
    if w.device != x0.device:
        raise KernelError(f"{name}: the weights are on {w.device}, the inputs on {x0.device}")


def check_dtype(name: str, t: torch.Tensor) -> None:
    if t.dtype not in DTYPES:
        raise KernelError(f"{name}: dtype {t.dtype} is not supported "
                          "(float32, bfloat16 or float16)")


def check_image(name: str, x: torch.Tensor, what: str = "input") -> None:
    if x.dim() != 4:
        raise KernelError(f"{name}: the {what} must be an image batch (N, C, H, W), "
                          f"got shape {tuple(x.shape)}")
