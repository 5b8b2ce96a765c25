"""Building a supernet's op modules quickly: structural templates on the meta device.

A large supernet repeats a few module shapes many times: the DCNAS space at L = 14 has 2,225 op
modules but only a few dozen distinct (op, parameters, input and output types) signatures: the
1,680 alignment layers differ only in their source and target scales. Constructing an
``nn.Module`` is slow (every ``__setattr__`` and every parameter goes through PyTorch's
bookkeeping, and each layer initialises itself even on the meta device), so each signature is
built once, on the meta device, and every further op with that signature gets a structural
clone of it: fresh module objects and fresh meta tensors, no shared state. Storage is then
allocated on the target device and every layer initialised by its own ``reset_parameters``
(PyTorch's default initialisation, in op order, so a seed gives the weights it always gave).

Only modules whose state ``reset_parameters`` fully restores are templated; any other module
(a user's layer with hand-set tensors) is built directly on the device by its builder.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

import torch
from nasc.backends.torch.conv import SubsampledConv2d
from nasc.backends.torch.library import OpCall, OpLibrary
from nasc.ir.gcpause import gc_paused
from nasc.ir.graph import Graph
from nasc.ir.nodes import Op
from torch import nn

#: Layers whose ``reset_parameters`` restores every parameter and buffer they own (exact
#: types: a subclass may initialise differently).
RESETTABLE = (nn.Conv1d, nn.Conv2d, SubsampledConv2d, nn.Conv3d, nn.ConvTranspose2d, nn.Linear,
              nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.LayerNorm, nn.GroupNorm,
              nn.Embedding)


def build_ops(g: Graph, library: OpLibrary, *, affine: bool, search: bool,
              device: torch.device | str | None, channels_last: bool) -> nn.ModuleDict:
    """One module per op node of ``g``, keyed by IR id, with initialised storage on ``device``
    (on the meta device the structure is all there is). NHWC 4-d weights when
    ``channels_last`` (NHWC convolutions are about 2x faster on the CPU: memory layout is a
    compiler decision)."""
    device = torch.device(device or "cpu")
    templates: dict[Hashable, nn.Module | None] = {}
    ops = nn.ModuleDict()
    with gc_paused():
        for rec in g.nodes_of(Op):
            call = OpCall(op=rec.op, params=dict(rec.params),
                          in_types=tuple(g[i].type for i in g.inputs(rec.id)),
                          out_type=rec.type, affine=affine, search=search)
            ops[str(rec.id)] = _module(call, library, templates, device, channels_last)
    return ops


def _module(call: OpCall, library: OpLibrary, templates: dict[Hashable, nn.Module | None],
            device: torch.device, channels_last: bool) -> nn.Module:
    key = _signature(call)
    try:
        hash(key)
    except TypeError:  # a parameter value nasc cannot compare: no template
        key = object()
    if key not in templates:
        with torch.device("meta"):
            template = library.build(call)
        templates[key] = template if resettable(template) else None
    template = templates[key]
    if template is None:  # not restorable by reset_parameters: the builder builds it
        with torch.device(device):
            module = library.build(call)
        return module.to(memory_format=torch.channels_last) if channels_last else module
    return _materialized(clone_structure(template), device, channels_last)


def _signature(call: OpCall) -> Hashable:
    """What a builder's result depends on (builders are functions of their call)."""
    return (call.op, _frozen(call.params), call.in_types, call.out_type, call.affine,
            call.search)


def _frozen(v: Any) -> Hashable:
    if isinstance(v, dict):
        return tuple(sorted((k, _frozen(x)) for k, x in v.items()))
    if isinstance(v, list | tuple):
        return (type(v).__name__, *(_frozen(x) for x in v))
    return v


_CONTAINERS = frozenset({dict, OrderedDict, list, set})


def clone_structure(module: nn.Module) -> nn.Module:
    """A structurally equal copy of a meta-device ``module``: new module objects, new meta
    parameters and buffers, shallow copies of container attributes (hook tables and the like),
    everything else shared (ints, strings, functions). Several times faster than building the
    module again or ``copy.deepcopy``."""
    new = object.__new__(type(module))
    state = module.__dict__.copy()
    for k, v in state.items():
        if type(v) in _CONTAINERS:  # (mostly empty hook tables)
            state[k] = type(v)(v) if v else type(v)()
    state["_parameters"] = {
        k: None if p is None else nn.Parameter(_meta(p), requires_grad=p.requires_grad)
        for k, p in module._parameters.items()}
    state["_buffers"] = {k: None if b is None else _meta(b) for k, b in module._buffers.items()}
    state["_modules"] = {k: None if m is None else clone_structure(m)
                         for k, m in module._modules.items()}
    new.__dict__.update(state)
    return new


def _meta(t: torch.Tensor) -> torch.Tensor:
    # (``torch.empty_like`` on the meta device runs a Python reference: 25x slower)
    return torch.empty(t.shape, dtype=t.dtype, device="meta")


def _materialized(module: nn.Module, device: torch.device, channels_last: bool) -> nn.Module:
    """``module`` (on the meta device) with storage on ``device`` and PyTorch's default
    initialisation."""
    if device.type == "meta":
        return module
    for m in module.modules():
        if has_state(m):
            _allocate(m, device, channels_last)
            m.reset_parameters()
    return module


def _allocate(m: nn.Module, device: torch.device, channels_last: bool) -> None:
    """Give ``m``'s own meta parameters and buffers uninitialised storage on ``device``
    (NHWC for 4-d weights when ``channels_last``)."""
    def empty(t: torch.Tensor) -> torch.Tensor:
        fmt = torch.channels_last if channels_last and t.dim() == 4 else torch.contiguous_format
        return torch.empty(t.shape, dtype=t.dtype, device=device, memory_format=fmt)

    for name, p in m._parameters.items():
        if p is not None:
            m._parameters[name] = nn.Parameter(empty(p), requires_grad=p.requires_grad)
    for name, b in m._buffers.items():
        if b is not None:
            m._buffers[name] = empty(b)


def has_state(m: nn.Module) -> bool:
    """Whether ``m`` itself (not its children) holds parameters or buffers."""
    return (any(p is not None for p in m._parameters.values())
            or any(b is not None for b in m._buffers.values()))


def resettable(module: nn.Module) -> bool:
    """Whether every submodule that holds state restores all of it in ``reset_parameters``
    (PyTorch's own layers do; a user's module with hand-set tensors may not), and none keeps a
    tensor outside its parameters and buffers (a clone would share it)."""
    return all((type(m) in RESETTABLE or not has_state(m))
               and not any(isinstance(v, torch.Tensor) for v in m.__dict__.values())
               for m in module.modules())
