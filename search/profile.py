"""Measuring a latency look-up table on this machine: ``nasc profile``.

DenseNAS (Fang et al., §4.1) builds "a lookup table for the module latency of the super
network", each module measured separately on the target device; ProxylessNAS does the same for
its latency loss. :func:`profile` does this for a space: every op call the space's cost can ask
for (:func:`nasc.ir.cost.latency.op_calls`: every candidate, each value of a value choice, the
ops ``align`` lowers to) is built alone with the PyTorch op library, run ``warmup`` times, then
timed ``repeats`` times, and the median time is its entry (milliseconds, one batch of ``batch``
images). Calls with the same op, parameters and shapes are measured once. The result is a
:class:`~nasc.ir.cost.latency.LatencyTable`: pass it as ``table=`` to ``cost``,
``expected_cost`` or ``Supernet.expected_cost`` with the kind ``"latency"``.

>>> import nasc
>>> from nasc.search.profile import profile
>>> space = nasc.parse('''
... import nn
... space tiny() {
...     input x: image(3)
...     output y = linear(global_avg_pool(conv2d(x, 8, k=choose {1, 3} @"k")), 10)
... }''')
>>> lut = profile(space, input_size=(8, 8), repeats=2, warmup=0)
>>> sorted(k.split("(")[0] for k in lut.entries)
['conv2d', 'conv2d', 'global_avg_pool', 'linear']
"""

from __future__ import annotations

import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

from nasc.dsl.diagnostics import NasError
from nasc.ir.cost.latency import LatencyTable, ProfiledCall, op_calls
from nasc.ir.types import Layout, TensorType


def describe_device(channels_last: bool = False) -> str:
    """The machine a table was measured on, as the table's ``device`` field records it."""
    import torch

    cpu = platform.processor() or platform.machine() or "cpu"
    layout = ", channels_last" if channels_last else ""
    return (f"cpu {cpu}, {torch.get_num_threads()} threads, torch {torch.__version__}, "
            f"{platform.system()}{layout}")


def _example(ty: TensorType, hw: tuple[int, int], batch: int, gen: Any) -> Any:
    import torch

    if ty.layout is Layout.VECTOR:
        return torch.randn(batch, int(ty.channels), generator=gen)
    if ty.layout is Layout.TOKENS:
        return torch.randn(batch, hw[0] * hw[1], int(ty.channels), generator=gen)
    return torch.randn(batch, int(ty.channels), hw[0], hw[1], generator=gen)


def measure(module: Any, inputs: list[Any], *, warmup: int, repeats: int) -> float:
    """Median wall time of ``module(*inputs)`` in milliseconds after ``warmup`` runs."""
    import torch

    with torch.inference_mode():
        for _ in range(warmup):
            module(*inputs)
        times = []
        for _ in range(repeats):
            t = time.perf_counter_ns()
            module(*inputs)
            times.append(time.perf_counter_ns() - t)
    return statistics.median(times) / 1e6


def profile(
    space: Any,
    *,
    input_size: int | tuple[int, int] = (32, 32),
    batch: int = 1,
    warmup: int = 5,
    repeats: int = 20,
    library: Any = None,
    channels_last: bool = False,
    threads: int | None = None,
    seed: int = 0,
    on_call: Callable[[int, int, ProfiledCall, float], None] | None = None,
) -> LatencyTable:
    """A latency table of every op call of ``space`` (a :class:`~nasc.Space` or a graph) at
    ``input_size``, measured on this machine's CPU (see the module docstring).

    ``threads`` sets torch's intra-op threads for the measurement (restored afterwards; the
    default keeps the current setting). ``on_call(i, n, call, ms)`` is called after each
    measurement (progress reports).
    Modules are in eval mode with affine BN, as in a derived network; ``channels_last`` times
    them in the NHWC layout that nasc's supernets use.
    """
    import torch
    from nasc.backends.torch.library import default_library

    hw = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    if len(hw) != 2 or not all(isinstance(v, int) and v >= 1 for v in hw):
        raise NasError(f"profile: input size must be two positive integers, got {input_size!r}")
    checks = (("batch", batch, 1), ("repeats", repeats, 1), ("warmup", warmup, 0),
              ("threads", 1 if threads is None else threads, 1))
    for name, v, low in checks:
        if isinstance(v, bool) or not isinstance(v, int) or v < low:
            raise NasError(f"profile: {name} must be an integer >= {low}, got {v!r}")
    lib = library or default_library()
    calls = op_calls(space, input_size=hw)
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        entries = _measure_all(calls, lib, batch, warmup, repeats, channels_last, seed, on_call)
        device = describe_device(channels_last)
    finally:
        torch.set_num_threads(before)
    return LatencyTable.from_entries(entries, batch=batch, device=device)


def _measure_all(calls: dict[str, ProfiledCall], lib: Any, batch: int, warmup: int,
                 repeats: int, channels_last: bool, seed: int, on_call: Any) -> dict[str, float]:
    import torch
    from nasc.backends.torch.library import OpCall

    gen = torch.Generator().manual_seed(seed)
    entries: dict[str, float] = {}
    for i, (key, pc) in enumerate(calls.items()):
        if pc.call.op not in lib:
            raise NasError(f"profile: op {pc.call.op!r} has no PyTorch implementation to time")
        module = lib.build(OpCall(op=pc.call.op, params=dict(pc.call.params),
                                  in_types=pc.in_types, out_type=pc.out_type)).eval()
        xs = [_example(t, s, batch, gen) for t, s in zip(pc.in_types, pc.call.in_hw)]
        if channels_last:
            module = module.to(memory_format=torch.channels_last)
            xs = [x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x
                  for x in xs]
        entries[key] = measure(module, xs, warmup=warmup, repeats=repeats)
        if on_call is not None:
            on_call(i, len(calls), pc, entries[key])
    return entries


__all__ = ["describe_device", "measure", "profile"]
