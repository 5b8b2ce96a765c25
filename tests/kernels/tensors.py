"""Tensors for the kernel tests: tiny shapes in every dtype and memory layout the kernels
accept, drawn by hypothesis."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from unittest import mock

import torch
from hypothesis import strategies as st

DTYPES = [torch.float32, torch.bfloat16, torch.float16]
LAYOUTS = ["contiguous", "channels_last", "strided"]

#: (atol, rtol) of a kernel output against the fp32 torch path on the same inputs: the kernels
#: compute in fp32 and round once.
TOL = {torch.float32: (1e-5, 1e-5), torch.bfloat16: (1e-2, 1e-2), torch.float16: (2e-3, 2e-3)}

dtypes = st.sampled_from(DTYPES)
layouts = st.sampled_from(LAYOUTS)


def make(shape: tuple[int, ...], dtype: torch.dtype, layout: str, gen: torch.Generator,
         scale: float = 1.0) -> torch.Tensor:
    """A leaf tensor of ``shape``: NCHW-contiguous, channels_last, or a non-dense view (every
    other column of a wider tensor)."""
    n, c, h, w = shape
    if layout == "strided":
        t = (torch.randn(n, c, h, 2 * w, generator=gen) * scale).to(dtype)[..., ::2]
    else:
        t = (torch.randn(shape, generator=gen) * scale).to(dtype)
        if layout == "channels_last":
            t = t.contiguous(memory_format=torch.channels_last)
    return t.requires_grad_()


def upcast(ts: list[torch.Tensor]) -> list[torch.Tensor]:
    """fp32 leaf copies (the reference computation on exactly the same values)."""
    return [t.detach().float().requires_grad_() for t in ts]


def assert_close(actual: torch.Tensor, expected: torch.Tensor, dtype: torch.dtype) -> None:
    atol, rtol = TOL[dtype]
    torch.testing.assert_close(actual.float(), expected.float(), atol=atol, rtol=rtol)


@contextlib.contextmanager
def kernels(mode: str) -> Iterator[None]:
    """``NASC_KERNELS=mode`` inside the block (hypothesis tests cannot take monkeypatch)."""
    with mock.patch.dict(os.environ, {"NASC_KERNELS": mode}):
        yield
