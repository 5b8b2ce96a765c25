"""The canonical one-line-per-node printer of the IR.

Every value is printed with its type; choices with their label; a node that exists only under a
condition with ``when <guard>``; the source location as a trailing comment::

    %7: image[C=16, s=1] = sep_conv(%3, C=16, k=3)  when @'normal.n0.in' ∋ 0  # darts.nas:14:5

Labels are quoted and marked with ``@`` wherever they appear (a value choice inside a parameter
or a type is ``@'label'``), and an option that is not a plain name is quoted, so the text is
unambiguous: :func:`nasc.ir.text.parse_graph` reads it back to the same graph.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from nasc.ir.guards import Guard
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
from nasc.ir.sym import Sym
from nasc.ir.types import Layout, TensorType

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


def _value(v: Any) -> str:
    """A parameter or choice value in IR text (strings JSON-quoted, symbols with ``@``)."""
    if isinstance(v, Sym):
        return _sym(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, tuple | list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if v is None:
        return "null"
    return format_value(v)


def _sym(v: Any) -> str:
    if not isinstance(v, Sym):
        return _value(v)
    if v.op == "var":
        return f"@{v.args[0]!r}"
    if v.op == "neg":
        return f"-{_sym(v.args[0])}"
    if v.op in ("min", "max"):
        return f"{v.op}({_sym(v.args[0])}, {_sym(v.args[1])})"
    return f"({_sym(v.args[0])} {v.op} {_sym(v.args[1])})"


def format_type(t: TensorType) -> str:
    if t.layout is Layout.VECTOR:
        return f"vector[C={_value(t.channels)}]"
    return f"{t.layout.value}[C={_value(t.channels)}, s={_value(t.stride)}]"


def format_guard(guard: Guard) -> str:
    if guard.is_true:
        return "true"
    if guard.is_false:
        return "false"
    tests = {"eq": "==", "has": "∋", "ge": ">="}
    parts = [" & ".join(f"@{a.label!r} {tests[a.test]} {_value(a.value)}" for a in sorted(t))
             for t in guard.terms]
    return " | ".join(sorted(f"({p})" if len(guard.terms) > 1 else p for p in parts))


def _option(o: Any) -> str:
    """A candidate's name as it is (a plain name or a number), else quoted."""
    if isinstance(o, str) and _NAME.fullmatch(o) and o not in ("zero", "true", "false", "null"):
        return o
    if isinstance(o, int) and not isinstance(o, bool):
        return str(o)
    return _value(o)


_NAME = re.compile(r"[A-Za-z_][A-Za-z_0-9]*")


def format_node(g: Graph, rec: Node, *, locations: bool = True) -> str:
    args = ", ".join(f"%{i}" for i in g.inputs(rec.id))
    if isinstance(rec, Input):
        rhs = f"input {rec.name!r}"
    elif isinstance(rec, Output):
        rhs = f"output {rec.name!r}({args})"
    elif isinstance(rec, Op):
        params = "".join(f", {k}={_value(v)}" for k, v in rec.params)
        rhs = f"{rec.op}({args}{params})" if args else f"{rec.op}({params[2:]})"
    elif isinstance(rec, Merge):
        rhs = f"{rec.mode}({args})"
    elif isinstance(rec, Align):
        rhs = f"align({args}" + (f", policy={rec.policy!r}" if rec.policy else "") + ")"
    elif isinstance(rec, OpChoice):
        opts = ", ".join(f"{_option(o)}=%{i}" for o, i in zip(rec.options, g.inputs(rec.id)))
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
            f"{_option(o)}={f'%{next(ins)}' if c else 'zero'}"
            for o, c in zip(rec.options, rec.computed)
        )
        how = rec.weighting + (
            f"(tau={rec.tau}{', hard' if rec.hard else ''})"
            if rec.weighting == "gumbel" or rec.tau != 1.0 or rec.hard else ""
        )
        if rec.sampling:
            how += f", sample {rec.paths} {rec.sampling}"
        if rec.source_kind != "op":
            how += f", {rec.source_kind}"
        rhs = f"mixture[{how}] @{rec.label!r} {{{opts}}}"
    elif isinstance(rec, InputMixture):
        k = rec.k_min if rec.k_min == rec.k_max else f"{rec.k_min}..{rec.k_max}"
        how = rec.weighting if rec.weighting == "zero" else f"beta over {rec.normalize}"
        if rec.paths or rec.tau != 1.0:
            how += f", sample {rec.paths} (tau={rec.tau})"
        rhs = f"{rec.merge}(mix {k} of [{args}] @{rec.label!r} [{how}])"
    elif isinstance(rec, ValueChoice):
        rhs = f"choose {{{', '.join(_value(v) for v in rec.values)}}} @{rec.label!r}"
    else:  # pragma: no cover - every kind is handled above
        raise TypeError(rec)
    ty = f": {format_type(rec.type)}" if rec.type is not None else ""
    line = f"%{rec.id}{ty} = {rhs}"
    if not rec.guard.is_true:
        line += f"  when {format_guard(rec.guard)}"
    if locations and rec.loc is not None:
        line += f"  # {rec.loc}"
    return line


def print_graph(g: Graph, *, locations: bool = True) -> str:
    """The whole graph, one node per line in topological order."""
    return "\n".join(format_node(g, rec, locations=locations) for rec in g)
