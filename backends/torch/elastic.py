"""Elastic op modules: one weight at the largest call, every smaller call a slice of it.

The IR says which ops are elastic and which calls each can make (:mod:`nasc.ir.elastic`). An
:class:`ElasticModule` builds the op once at its largest call and, for every other call, a
skeleton of the same op on the meta device (structure only, no storage). Running a call runs the
skeleton on slices of the largest module's parameters and buffers (``torch.func.functional_call``),
so no op needs an elastic version of its own: the slicing rule is derived from the shapes.

The slicing rule, per tensor the call's module has (matched by name with the largest module's):

- every dimension keeps its *first* entries (output channels, input channels, hidden units,
  BN statistics: OFA's elastic width and expansion, Cai et al. 2020 §3.2; AutoFormer's weight
  entanglement, Chen et al. 2021 §3.1);
- the spatial dimensions of a 4-d convolution weight keep their *centre* (OFA's elastic kernel
  size), optionally through OFA's kernel transformation matrices: one learnable
  ``k'^2 x k'^2`` matrix per step down from one kernel size of the op to the next smaller one,
  initialised to the identity, applied to the centre crop (``kernel_transform=True``).

Slices are views: gradients flow into the one shared weight, and a BN layer's running statistics
are updated in place in the full-width buffers (one set of statistics at full width, sliced like
the weights). A call whose module has a tensor that the largest module lacks, or one larger than
it, cannot share the weight: :class:`ElasticModule` reports it when it is built.
"""

from __future__ import annotations

import torch
from nasc.backends.torch.library import OpCall, OpLibrary
from nasc.ir.elastic import Call, ElasticError, ElasticOp
from nasc.ir.types import TensorType
from torch import nn
from torch.func import functional_call


def op_call(rec_op: str, call: Call, in_types: tuple[TensorType, ...], out_type: TensorType, *,
            affine: bool, search: bool) -> OpCall:
    """The library's view of one concrete call (channels replaced in the IR types)."""
    return OpCall(
        op=rec_op, params=dict(call.params),
        in_types=tuple(TensorType(layout=t.layout, channels=c, stride=_plain(t.stride))
                       for t, c in zip(in_types, call.in_channels)),
        out_type=TensorType(layout=out_type.layout, channels=call.out_channels,
                            stride=_plain(out_type.stride)),
        affine=affine, search=search)


def _plain(v):
    if not isinstance(v, int):
        raise ElasticError("a stride that depends on a value choice has no shared weight")
    return v


class ElasticModule(nn.Module):
    """One elastic op: ``largest`` holds the shared weights; ``forward(*xs, call=...)`` runs any
    call of the op on slices of them (see the module docstring)."""

    def __init__(self, spec: ElasticOp, library: OpLibrary, largest: nn.Module,
                 in_types: tuple[TensorType, ...], out_type: TensorType, *, affine: bool,
                 search: bool, kernel_transform: bool = False) -> None:
        super().__init__()
        self.spec = spec
        self.largest = largest
        self._library = library
        self._in_types, self._out_type = in_types, out_type
        self._affine, self._search = affine, search
        self._skeletons: dict[Call, nn.Module] = {}
        full = self._full_state()
        # every call's skeleton, checked against the largest module's tensors once
        kernel_sizes: dict[str, set[int]] = {}
        for call in set(spec.calls.values()):
            for name, t in self._state(self._skeleton(call)).items():
                big = full.get(name)
                if big is None or big.dim() != t.dim() or any(
                        a > b for a, b in zip(t.shape, big.shape)):
                    have = "no such tensor" if big is None else f"shape {tuple(big.shape)}"
                    raise ElasticError(
                        f"op {spec.op!r} cannot share one weight across its value choices: its "
                        f"call {dict(call.params)} has {name} of shape {tuple(t.shape)}, the "
                        f"largest call ({dict(spec.largest.params)}) {have}")
                if t.dim() == 4 and t.shape[2:] != big.shape[2:]:
                    kernel_sizes.setdefault(name, set()).update({t.shape[-1], big.shape[-1]})
        self.transforms = nn.ParameterDict()
        self._steps: dict[str, list[int]] = {}
        for name, sizes in kernel_sizes.items():
            steps = sorted(sizes, reverse=True)
            self._steps[name] = steps
            if kernel_transform:
                for src, dst in zip(steps, steps[1:]):
                    eye = torch.eye(dst * dst, device=full[name].device)
                    self.transforms[_key(name, src, dst)] = nn.Parameter(eye)

    def _full_state(self) -> dict[str, torch.Tensor]:
        return self._state(self.largest)

    @staticmethod
    def _state(m: nn.Module) -> dict[str, torch.Tensor]:
        return {**dict(m.named_parameters()), **dict(m.named_buffers())}

    def _skeleton(self, call: Call) -> nn.Module:
        sk = self._skeletons.get(call)
        if sk is None:
            with torch.device("meta"):
                sk = self._library.build(op_call(
                    self.spec.op, call, self._in_types, self._out_type, affine=self._affine,
                    search=self._search))
            self._skeletons[call] = sk
        return sk

    def sliced(self, call: Call) -> dict[str, torch.Tensor]:
        """The call's parameters and buffers as slices of the shared ones (views where no
        kernel transformation applies)."""
        full = self._full_state()
        out = {}
        for name, t in self._state(self._skeleton(call)).items():
            out[name] = self._slice(name, full[name], tuple(t.shape))
        return out

    def _slice(self, name: str, big: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
        if tuple(big.shape) == shape:
            return big
        spatial = big.dim() == 4 and big.shape[2:] != shape[2:]
        lead = shape[:2] if spatial else shape
        t = big[tuple(slice(0, n) for n in lead)]
        if not spatial:
            return t
        k = shape[-1]
        for src, dst in zip(self._steps[name], self._steps[name][1:]):
            if src <= k:
                break
            start = (src - dst) // 2
            t = t[:, :, start:start + dst, start:start + dst]
            key = _key(name, src, dst)
            if key in self.transforms:  # OFA §3.2: W_dst = T(centre of W_src)
                o, i = t.shape[:2]
                t = (t.reshape(o * i, dst * dst) @ self.transforms[key].T).reshape(o, i, dst, dst)
        return t

    def forward(self, *xs: torch.Tensor, call: Call) -> torch.Tensor:
        if call == self.spec.largest:
            return self.largest(*xs)
        skeleton = self._skeleton(call)
        if skeleton.training != self.training:  # (not a submodule: train()/eval() follow here)
            skeleton.train(self.training)
        return functional_call(skeleton, self.sliced(call), xs)

    def extract(self, call: Call) -> nn.Module:
        """The call as a plain module of its own size, holding copies of its slices (what
        ``nasc.instantiate(..., weights=net)`` puts in the discrete network)."""
        device = next(iter(self._full_state().values())).device
        with torch.device(device):
            module = self._library.build(op_call(
                self.spec.op, call, self._in_types, self._out_type, affine=self._affine,
                search=self._search))
        with torch.no_grad():
            module.load_state_dict({k: v.detach().clone() for k, v in self.sliced(call).items()})
        return module


def _key(name: str, src: int, dst: int) -> str:
    return f"{name.replace('.', '_')}_{src}to{dst}"


__all__ = ["ElasticModule", "op_call"]
