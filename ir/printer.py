"""The canonical one-line-per-node printer of the IR.

Every value is printed with its type; choices with their label; a node that exists only under a
condition with ``when <guard>``; the source location as a trailing comment::

    %7: image[C=16, s=1] = sep_conv_3x3(%3, C=16, stride=1)  when normal.n0.in ∋ 0  # darts.nas:14
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nasc.ir.nodes import (
    Align,
    Input,
    InputChoice,
    InputMixture,
    Merge,
    Mixture,
    Node,
    Op,
    OpChoice,
    Output,
    RepeatChoice,
    ValueChoice,
)

if TYPE_CHECKING:
    from nasc.ir.graph import Graph


def format_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, tuple | list):
        return "[" + ", ".join(format_value(x) for x in v) + "]"
    return str(v)


def format_node(g: Graph, rec: Node, *, locations: bool = True) -> str:
    args = ", ".join(f"%{i}" for i in g.inputs(rec.id))
    if isinstance(rec, Input):
        rhs = f"input {rec.name!r}"
    elif isinstance(rec, Output):
        rhs = f"output {rec.name!r}({args})"
    elif isinstance(rec, Op):
        params = "".join(f", {k}={format_value(v)}" for k, v in rec.params)
        rhs = f"{rec.op}({args}{params})" if args else f"{rec.op}({params[2:]})"
    elif isinstance(rec, Merge):
        rhs = f"{rec.mode}({args})"
    elif isinstance(rec, Align):
        rhs = f"align({args}" + (f", policy={rec.policy!r}" if rec.policy else "") + ")"
    elif isinstance(rec, OpChoice):
        opts = ", ".join(f"{o}=%{i}" for o, i in zip(rec.options, g.inputs(rec.id)))
        rhs = f"choose @{rec.label!r} {{{opts}}}"
    elif isinstance(rec, InputChoice):
        k = rec.k_min if rec.k_min == rec.k_max else f"{rec.k_min}..{rec.k_max}"
        rhs = f"{rec.merge}(pick {k} of [{args}] @{rec.label!r})"
    elif isinstance(rec, RepeatChoice):
        opts = ", ".join(f"{d}=%{i}" for d, i in zip(rec.depths, g.inputs(rec.id)))
        rhs = f"repeat @{rec.label!r} {{{opts}}}"
    elif isinstance(rec, Mixture):
        ins = iter(g.inputs(rec.id))
        opts = ", ".join(
            f"{o}=%{next(ins)}" if c else f"{o}=zero" for o, c in zip(rec.options, rec.computed)
        )
        how = rec.weighting + (
            f"(tau={rec.tau}{', hard' if rec.hard else ''})" if rec.weighting == "gumbel" else ""
        )
        if rec.sampling:
            how += f", sample {rec.paths} {rec.sampling}"
        rhs = f"mixture[{how}] @{rec.label!r} {{{opts}}}"
    elif isinstance(rec, InputMixture):
        k = rec.k_min if rec.k_min == rec.k_max else f"{rec.k_min}..{rec.k_max}"
        how = rec.weighting if rec.weighting == "zero" else f"beta over {rec.normalize}"
        if rec.paths:
            how += f", sample {rec.paths} (tau={rec.tau})"
        rhs = f"{rec.merge}(mix {k} of [{args}] @{rec.label!r} [{how}])"
    elif isinstance(rec, ValueChoice):
        rhs = f"choose {{{', '.join(format_value(v) for v in rec.values)}}} @{rec.label!r}"
    else:  # pragma: no cover - every kind is handled above
        raise TypeError(rec)
    ty = f": {rec.type}" if rec.type is not None else ""
    line = f"%{rec.id}{ty} = {rhs}"
    if not rec.guard.is_true:
        line += f"  when {rec.guard}"
    if locations and rec.loc is not None:
        line += f"  # {rec.loc}"
    return line


def print_graph(g: Graph, *, locations: bool = True) -> str:
    """The whole graph, one node per line in topological order."""
    return "\n".join(format_node(g, rec, locations=locations) for rec in g)
