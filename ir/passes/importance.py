"""HR-NAS importance relaxation of search units (Ding et al., CVPR 2021, §3.3, eq. 6–7).

A *search unit* is one hidden channel of a MixConv depthwise branch or one token of a
lightweight transformer; "a searching block with c input channels, the expansion ratio of 3r, and
n tokens has 3rc + n search units". In a space each unit group is a value choice over counts
``{0, ..., max}`` passed directly as an op parameter (``mixconv(x, C, c3=choose {0..rc + 1}
@"b.c3", ...)``). :func:`relax_importance` builds every such op at its largest count and marks it
relaxed: it gains the parameters ``units`` (``(param, label)`` pairs) and ``eps``. Each unit then
carries an importance factor ``alpha_i`` (the BN scale after the depthwise conv for a channel, of
the projector's BN for a token, §4.1), learnt jointly with the weights under the resource-aware
L1 penalty ``lambda * sum_i Delta_i |alpha_i|`` (eq. 7, :func:`unit_deltas` gives ``Delta``,
eq. 6). A unit with ``|alpha_i| <= eps`` is removed (masked in the supernet; really removed by
:func:`nasc.ir.passes.shrink.shrink`). :func:`derive_units` turns factors into kept counts, which
are decisions of the space's value choices.

Nothing here imports torch: factors come in as plain numbers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from nasc.ir.cost.stdlib import DEFAULT
from nasc.ir.cost.table import CostTable, OpCall
from nasc.ir.graph import Graph
from nasc.ir.nodes import Op, ValueChoice
from nasc.ir.passes.manager import Pass, PassError, register
from nasc.ir.sym import Sym, labels_of
from nasc.ir.types import Layout

#: Ops whose parameters are search units: op name -> its unit parameters (HR-NAS §3.3).
UNIT_PARAMS: dict[str, tuple[str, ...]] = {"mixconv": ("c3", "c5", "c7"), "transformer": ("n",)}
#: HR-NAS §4.1: "search units with alpha < 0.001 are deemed unimportant and removed".
EPS = 1e-3


def _plain_label(v: Any) -> str | None:
    """The label of a bare value-choice symbol ``v`` (not an expression of one), else None."""
    if isinstance(v, Sym) and v.op == "var":
        return str(v.args[0])
    return None


def _uses(g: Graph) -> dict[str, list[str]]:
    """Label -> where it is used (types, parameters, guards), for error messages."""
    out: dict[str, list[str]] = {}
    for rec in g:
        if isinstance(rec, ValueChoice):
            continue
        for k, v in getattr(rec, "params", ()):
            for lab in labels_of(v):
                out.setdefault(lab, []).append(f"%{rec.id}.{k}")
        if rec.type is not None:
            for lab in labels_of((rec.type.channels, rec.type.stride)):
                out.setdefault(lab, []).append(f"the type of %{rec.id}")
        for term in rec.guard.terms:
            for atom in term:
                out.setdefault(atom.label, []).append(f"the guard of %{rec.id}")
    return out


def relax_importance(
    g: Graph, *, eps: float = EPS, ops: Mapping[str, Sequence[str]] | None = None
) -> Graph:
    """Relax every search-unit value choice with importance factors (HR-NAS §3.3, eq. 7).

    An op of ``ops`` (default :data:`UNIT_PARAMS`) whose unit parameters are bare value choices
    over counts ``>= 0`` is built at the largest counts, with ``units=((param, label), ...)``
    and ``eps`` added to its parameters; those value choices leave the graph. A unit label must
    be used by that one parameter only (its factors belong to one module).
    """
    if not (isinstance(eps, int | float) and eps >= 0):
        raise PassError(f"importance: eps must be a number >= 0, got {eps!r}")
    unit_ops = UNIT_PARAMS if ops is None else ops
    values = {r.label: r.values for r in g.nodes_of(ValueChoice)}
    uses = _uses(g)
    out = g.copy()
    relaxed: set[str] = set()
    for rec in g.nodes_of(Op):
        if rec.op not in unit_ops or dict(rec.params).get("units"):
            continue
        params = dict(rec.params)
        labels = {p: _plain_label(params.get(p)) for p in unit_ops[rec.op]}
        if not any(labels.values()):
            continue
        fixed = [p for p, lab in labels.items() if lab is None]
        if fixed:
            raise PassError(
                f"importance: %{rec.id} {rec.op} mixes search units and fixed widths "
                f"({', '.join(fixed)}); make every unit parameter a value choice or none"
            )
        for p, lab in labels.items():
            opts = values[lab]
            if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in opts):
                raise PassError(f"importance: {lab!r} must choose counts >= 0, got {list(opts)}")
            if len(uses.get(lab, ())) != 1:
                raise PassError(
                    f"importance: search-unit label {lab!r} is used in {', '.join(uses[lab])}; "
                    "HR-NAS factors belong to one op parameter"
                )
            params[p] = max(opts)
            relaxed.add(lab)
        params["units"] = tuple(labels.items())
        params["eps"] = float(eps)
        out.update(rec.id, params=tuple(params.items()))
    for rec in g.nodes_of(ValueChoice):
        if rec.label in relaxed:
            out.remove(rec.id)
    return out.renumbered()


def unit_ops(g: Graph) -> list[Op]:
    """The ops relaxed by :func:`relax_importance` (those with ``units``)."""
    return [r for r in g.nodes_of(Op) if dict(r.params).get("units")]


def derive_units(
    g: Graph, factors: Mapping[str, Sequence[float]], *, eps: float = EPS
) -> dict[str, int]:
    """HR-NAS threshold derivation: for each unit label, how many units have ``|alpha| > eps``.

    ``factors[label]`` holds one number per unit of that label's current count.
    """
    out: dict[str, int] = {}
    for rec in unit_ops(g):
        params = dict(rec.params)
        for p, lab in params["units"]:
            if lab not in factors:
                raise PassError(f"derive_units: no importance factors for {lab!r}")
            fs = list(factors[lab])
            if len(fs) != params[p]:
                raise PassError(
                    f"derive_units: {lab!r} has {params[p]} units but {len(fs)} factors"
                )
            out[lab] = sum(1 for f in fs if abs(float(f)) > eps)
    return out


def _hw(ty: Any, hw: tuple[int, int]) -> tuple[int, int]:
    if ty.layout is Layout.VECTOR:
        return (1, 1)
    return (-(-hw[0] // int(ty.stride)), -(-hw[1] // int(ty.stride)))


def unit_deltas(
    g: Graph,
    *,
    kind: str = "macs",
    input_size: int | tuple[int, int] = (224, 224),
    counts: Mapping[str, int] | None = None,
    table: CostTable = DEFAULT,
) -> dict[str, int]:
    """HR-NAS eq. 6 per unit label: ``Delta = O(n') - O(n' - 1)``, the ``kind`` cost one more
    unit adds to its op, ``n'`` the label's remaining units (``counts``, default the built
    count; at least 1). For a MixConv channel it does not depend on ``n'``; for a token it
    is the transformer's ``O_T(n') - O_T(n' - 1)``.

    (``nasc.ir.cost.unit_cost`` answers the same on a space, summing over every joint value of
    the node's choices; with ``{0, ..., rc}`` widths that is too many, so this reads the op
    alone at the current counts.)
    """
    hw = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    out: dict[str, int] = {}
    for rec in unit_ops(g):
        params = dict(rec.params)
        ins = [g[i].type for i in g.inputs(rec.id)]
        fn = table[rec.op].fn(kind)
        if fn is None:
            raise PassError(f"unit_deltas: op {rec.op!r} has no {kind!r} cost")
        for p, lab in params["units"]:
            n = max(1, int((counts or {}).get(lab, params[p])))
            at = []
            for v in (n, n - 1):
                call = OpCall(
                    op=rec.op, params=tuple({**params, p: v}.items()),
                    in_channels=tuple(int(t.channels) for t in ins),
                    in_hw=tuple(_hw(t, hw) for t in ins),
                    out_channels=int(rec.type.channels), out_hw=_hw(rec.type, hw),
                )  # fmt: skip
                at.append(fn(call))
            out[lab] = at[0] - at[1]
    return out


register(
    Pass(
        name="importance",
        fn=relax_importance,
        provides=frozenset({"importance"}),
    )
)

__all__ = ["EPS", "UNIT_PARAMS", "derive_units", "relax_importance", "unit_deltas", "unit_ops"]
