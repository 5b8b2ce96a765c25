"""Graphviz (DOT) pictures of an IR graph, for ``nasc show --dot``.

Choice nodes are diamonds named by their label; a node that exists only under a condition is
dashed; edges into a choice carry the option they stand for.
"""

from __future__ import annotations

from nasc.ir.graph import Graph
from nasc.ir.nodes import (
    Align,
    Input,
    InputChoice,
    Merge,
    Op,
    OpChoice,
    Output,
    RepeatChoice,
    ValueChoice,
)


def _q(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(g: Graph, title: str = "space") -> str:
    lines = [
        f"digraph {_q(title)} {{",
        "  rankdir=TB;",
        '  node [fontname="Helvetica", fontsize=10, shape=box, style=rounded];',
        '  edge [fontname="Helvetica", fontsize=8];',
    ]
    for rec in g:
        ty = f"\\n{rec.type}" if rec.type is not None else ""
        attrs = []
        if isinstance(rec, Input | Output):
            text, attrs = f"{rec.name}", ["shape=ellipse"]
        elif isinstance(rec, Op):
            text = rec.op
        elif isinstance(rec, Merge):
            text, attrs = rec.mode, ["shape=circle"]
        elif isinstance(rec, Align):
            text, attrs = "align", ["shape=hexagon"]
        elif isinstance(rec, OpChoice | RepeatChoice | InputChoice | ValueChoice):
            kind = {
                OpChoice: "op",
                RepeatChoice: "repeat",
                InputChoice: "input",
                ValueChoice: "value",
            }[type(rec)]
            extra = ""
            if isinstance(rec, InputChoice):
                k = rec.k_min if rec.k_min == rec.k_max else f"{rec.k_min}..{rec.k_max}"
                extra = f" ({k} of {rec.n}, {rec.merge})"
            text = f"{kind} @{rec.label}{extra}"
            attrs = ["shape=diamond", "style=filled", "fillcolor=lightyellow"]
        else:  # pragma: no cover
            text = type(rec).__name__
        if not rec.guard.is_true:
            attrs.append(
                'style="rounded,dashed"'
                if "shape=diamond" not in attrs
                else 'style="filled,dashed"'
            )
        attrs.insert(0, f"label={_q(text + ty)}")
        lines.append(f"  n{rec.id} [{', '.join(attrs)}];")
    for rec in g:
        ins = g.inputs(rec.id)
        names: list[str] = []
        if isinstance(rec, OpChoice):
            names = list(rec.options)
        elif isinstance(rec, RepeatChoice):
            names = [f"depth {d}" for d in rec.depths]
        elif isinstance(rec, InputChoice):
            names = [str(i) for i in range(rec.n)]
        for slot, src in enumerate(ins):
            label = f" [label={_q(names[slot])}]" if names else ""
            lines.append(f"  n{src} -> n{rec.id}{label};")
    lines.append("}")
    return "\n".join(lines) + "\n"
