"""The 2-D tiling shared by the strided kernels (partial-channel merge, weighted concat).

A program covers ``BLOCK_R`` positions ``(n, h, w)`` by ``BLOCK_C`` channels of an image
tensor; every tensor is then addressed through its own strides, so NCHW, channels_last or any
other layout runs without a copy.
"""

from __future__ import annotations

import triton
import triton.language as tl

BLOCK_R = 64  # positions (n, h, w) per program
BLOCK_C = 32  # channels per program


def grid(rows: int, channels: int) -> tuple[int, int]:
    """The launch grid over ``rows`` positions and ``channels`` channels."""
    return (triton.cdiv(rows, BLOCK_R), triton.cdiv(channels, BLOCK_C))


@triton.jit
def nchw_tile(R, HW, W, C, BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr):
    """This program's tile: index grids ``n, c, h, w`` (``BLOCK_R x BLOCK_C``) over ``R``
    positions of ``H x W`` images and ``C`` channels, and the mask of those in range."""
    rs = tl.program_id(0).to(tl.int64) * BLOCK_R + tl.arange(0, BLOCK_R)
    cs = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    r, c = rs[:, None], cs[None, :]
    n, hw = r // HW, r % HW
    return n, c, hw // W, hw % W, (r < R) & (c < C)
