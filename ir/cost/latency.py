"""Latency from a look-up table: one measured time per op, parameters and shapes.

DenseNAS (Fang et al., §3.3.2 and §4.1) and ProxylessNAS build a look-up table with the latency
of every candidate module of the super network, measured separately on the target device, and
read it in the cost: ``latency_l = sum_o w_o latency_o`` for a layer (eq. 5), ``p_ji`` times
that for a head layer (eq. 6), summed over the layers (eq. 7). Here the table is a
:class:`LatencyTable`, a :class:`~nasc.ir.cost.CostTable` that adds the kind ``"latency"`` to
every op, so the usual functions answer with it::

    lut = LatencyTable.load("lut.json")        # written by `nasc profile SPACE -o lut.json`
    cost(space.resolve(arch).graph, "latency", table=lut, input_size=(224, 224))
    expected_cost(space.graph, "latency", probs, table=lut, input_size=(224, 224))

The exact latency of a network is the sum of its ops' entries (merges, inputs and outputs cost
nothing, as in the papers' tables); an ``Align`` node costs the entries of the ops its policy
lowers it to. A call whose key the table lacks is a :class:`CostError` that names the key.

**Keys.** One entry per op call: the op name, its parameters sorted by name, the shape
``CxHxW`` of each input and of the output, for one batch of ``batch`` images (a table field),
e.g. ``mbconv(C=24, act="relu6", e=6, k=3, se=false, stride=2) [16x112x112] -> 24x56x56``
(:func:`call_key`). Vectors are ``Cx1x1``.

**File** (JSON)::

    {"format": "nasc-latency-table/1", "unit": "ms", "batch": 1,
     "device": "...", "entries": {"<key>": 0.123, ...}}

:func:`op_calls` lists the calls a graph needs (every candidate, and every value of the value
choices its shape or parameters depend on); ``nasc.search.profile`` measures them with
PyTorch. Nothing
here imports torch.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import attrs
from nasc.ir.cost.model import (
    _assignments,
    _concrete,
    _graph_of,
    _node_labels,
    _spatial,
    label_options,
)
from nasc.ir.cost.stdlib import DEFAULT
from nasc.ir.cost.table import CostError, CostTable, OpCall, OpCost
from nasc.ir.graph import Graph
from nasc.ir.nodes import Align, Op
from nasc.ir.sym import evaluate
from nasc.ir.types import TensorType

FORMAT = "nasc-latency-table/1"


# ---- keys ----------------------------------------------------------------------------------
def _literal(v: Any) -> str:
    if isinstance(v, tuple | list):
        return "[" + ", ".join(_literal(x) for x in v) + "]"
    if isinstance(v, bool | str) or v is None:
        return json.dumps(v)
    if isinstance(v, float) and v.is_integer():
        return repr(v)
    return str(v)


def _shape(channels: int, hw: tuple[int, int]) -> str:
    return f"{channels}x{hw[0]}x{hw[1]}"


def call_key(call: OpCall) -> str:
    """The table key of one op call: name, parameters sorted by name, input and output shapes.

    >>> call_key(OpCall(op="conv2d", params=(("k", 3), ("C", 8)), in_channels=(4,),
    ...                 in_hw=((32, 32),), out_channels=8, out_hw=(16, 16)))
    'conv2d(C=8, k=3) [4x32x32] -> 8x16x16'
    """
    params = ", ".join(f"{k}={_literal(v)}" for k, v in sorted(call.params))
    ins = ", ".join(_shape(c, hw) for c, hw in zip(call.in_channels, call.in_hw))
    return f"{call.op}({params}) [{ins}] -> {_shape(call.out_channels, call.out_hw)}"


# ---- the calls a graph needs ----------------------------------------------------------------
@attrs.frozen(kw_only=True)
class ProfiledCall:
    """One op call to measure: its cost-model view (``call``, ``key``) and the concrete tensor
    types of its inputs and output, from which a backend builds the module."""

    key: str
    call: OpCall
    in_types: tuple[TensorType, ...]
    out_type: TensorType


def _profiled(op: str, params: tuple, ins: list[TensorType], out: TensorType,
              hw: tuple[int, int]) -> ProfiledCall:
    call = OpCall(
        op=op,
        params=params,
        in_channels=tuple(t.channels for t in ins),
        in_hw=tuple(_spatial(t, hw) for t in ins),
        out_channels=out.channels,
        out_hw=_spatial(out, hw),
    )
    return ProfiledCall(key=call_key(call), call=call, in_types=tuple(ins), out_type=out)


def op_calls(graph: Graph | Any, *, input_size: int | tuple[int, int] = (32, 32)
             ) -> dict[str, ProfiledCall]:
    """Key → call, for every op call that costing ``graph`` (a space or a choice-free graph) at
    ``input_size`` can ask for: every op node, under every value of the value choices it
    depends on, and the ops that ``Align`` nodes are lowered to."""
    from nasc.ir.passes.align import POLICIES  # lazily, as in the cost model

    g = _graph_of(graph)
    hw = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    options = label_options(g)
    out: dict[str, ProfiledCall] = {}
    for rec in g:
        if not isinstance(rec, Op | Align):
            continue
        for env, _ in _assignments(_node_labels(g, rec), options, rec):
            ins = [_concrete(g[i].type, env) for i in g.inputs(rec.id)]
            ty = _concrete(rec.type, env)
            if isinstance(rec, Op):
                params = tuple((k, evaluate(v, env)) for k, v in rec.params)
                p = _profiled(rec.op, params, ins, ty, hw)
                out.setdefault(p.key, p)
                continue
            policy = rec.policy or "dcnas"
            steps = POLICIES[policy](ins[0], ty) if policy in POLICIES else None
            if steps is None:
                raise CostError(f"align %{rec.id}: policy {policy!r} cannot align {ins[0]} to {ty}")
            prev = ins[0]
            for op, params, step_ty in steps:
                p = _profiled(op, params, [prev], step_ty, hw)
                out.setdefault(p.key, p)
                prev = step_ty
    return out


# ---- the table ------------------------------------------------------------------------------
def _check_entries(entries: Mapping[str, Any]) -> dict[str, float]:
    out = {}
    for k, v in entries.items():
        if not isinstance(k, str):
            raise CostError(f"latency table: key {k!r} is not a string")
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
            raise CostError(f"latency table: {k!r} has latency {v!r}; need a number >= 0")
        out[k] = float(v)
    return out


def _latency_fn(entries: Mapping[str, float], where: str):
    def latency(call: OpCall) -> float:
        key = call_key(call)
        try:
            return entries[key]
        except KeyError:
            same_op = [k for k in entries if k.startswith(call.op + "(")]
            close = difflib.get_close_matches(key, same_op, n=1, cutoff=0.0)
            hint = f"; closest entry: {close[0]!r}" if close else f"; no entry for op {call.op!r}"
            raise CostError(
                f"latency table{where} has no entry for op {call.op!r} at {key!r}{hint}. "
                "Measure this space at this input size with `nasc profile SPACE --input-size H W "
                "-o lut.json`"
            ) from None

    return latency


@attrs.frozen(eq=False, kw_only=True)
class LatencyTable(CostTable):
    """A cost table whose ops also answer ``"latency"`` from measured ``entries`` (key →
    latency in ``unit``, for one batch of ``batch`` images on ``device``); every other kind
    comes from ``base`` (:data:`~nasc.ir.cost.DEFAULT` unless given).

    >>> lut = LatencyTable.from_entries({"relu() [4x8x8] -> 4x8x8": 0.5})
    >>> from nasc.ir.cost import OpCall
    >>> lut["relu"].fn("latency")(OpCall(op="relu", in_channels=(4,), in_hw=((8, 8),),
    ...                                  out_channels=4, out_hw=(8, 8)))
    0.5
    """

    entries: Mapping[str, float] = attrs.field(
        factory=dict, converter=lambda m: MappingProxyType(_check_entries(m)))
    unit: str = "ms"
    batch: int = 1
    device: str = ""

    @classmethod
    def from_entries(cls, entries: Mapping[str, float], *, unit: str = "ms", batch: int = 1,
                     device: str = "", base: CostTable = DEFAULT, where: str = ""
                     ) -> LatencyTable:
        """The table of ``entries`` over ``base``: every op of ``base``, and every op named in
        an entry, gets a ``"latency"`` kind that looks its calls up."""
        checked = _check_entries(entries)
        fn = _latency_fn(checked, where)
        names = set(base.ops) | {k.split("(", 1)[0] for k in checked}
        ops = {}
        for name in sorted(names):
            cost = base.ops.get(name) or OpCost(params=_no_model(name, "params"),
                                                macs=_no_model(name, "macs"))
            other = tuple((k, f) for k, f in cost.other if k != "latency") + (("latency", fn),)
            ops[name] = attrs.evolve(cost, other=other)
        return cls(ops=ops, entries=checked, unit=unit, batch=batch, device=device)

    # ---- files --------------------------------------------------------------------------------
    def to_json(self) -> str:
        return json.dumps({"format": FORMAT, "unit": self.unit, "batch": self.batch,
                           "device": self.device, "entries": dict(sorted(self.entries.items()))},
                          indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str, *, base: CostTable = DEFAULT, where: str = "") -> LatencyTable:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise CostError(f"latency table{where}: not JSON ({e})") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise CostError(f"latency table{where}: not a {FORMAT!r} file (see nasc profile)")
        entries = data.get("entries")
        if not isinstance(entries, dict):
            raise CostError(f"latency table{where}: 'entries' must map keys to latencies")
        batch = data.get("batch", 1)
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise CostError(f"latency table{where}: 'batch' must be a positive integer")
        return cls.from_entries(entries, unit=str(data.get("unit", "ms")), batch=batch,
                                device=str(data.get("device", "")), base=base, where=where)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json())

    @classmethod
    def load(cls, path: str | Path, *, base: CostTable = DEFAULT) -> LatencyTable:
        """Read a table written by :meth:`save` (``nasc profile -o``)."""
        try:
            text = Path(path).read_text()
        except OSError as e:
            raise CostError(f"cannot read latency table {str(path)!r}: {e.strerror}") from None
        return cls.from_json(text, base=base, where=f" {str(path)!r}")


def _no_model(name: str, kind: str):
    def fail(call: OpCall) -> int:
        raise CostError(f"op {name!r} has only a latency in this table, no {kind!r} model")

    return fail


__all__ = ["FORMAT", "LatencyTable", "ProfiledCall", "call_key", "op_calls"]
