"""Graphviz (DOT) pictures of an IR graph, for ``nasc show --dot``.

Choice nodes are diamonds named by their label; a node that exists only under a condition is
dashed; edges into a choice carry the option they stand for.

:func:`to_overview_dot` draws only the decisions (``nasc show --overview``): one node per op,
input or repeat choice, the network's inputs and outputs, and an edge wherever data flows from
one to the next through fixed ops. That is the picture the papers draw: the cell DAG of DARTS,
the reticular grid of fusion modules with dense connections of DCNAS (Fig. 1), the blocks and
their candidate connections of DenseNAS.
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
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(g: Graph, title: str = "space") -> str:
    lines = [
        f"digraph {_q(title)} {{",
        "  rankdir=TB;",
        '  node [fontname="Helvetica", fontsize=10, shape=box, style=rounded];',
        '  edge [fontname="Helvetica", fontsize=8];',
    ]
    for rec in g:
        ty = f"\n{rec.type}" if rec.type is not None else ""
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


def to_overview_dot(g: Graph, title: str = "space") -> str:
    """The decision graph of ``g`` (see the module docstring)."""
    shown = (Input, Output, OpChoice, InputChoice, RepeatChoice)
    behind: dict[int, frozenset[int]] = {}  # the nearest shown nodes upstream of each node
    edges: dict[tuple[int, int], set[str]] = {}
    for rec in g:
        ins = g.inputs(rec.id)
        if isinstance(rec, shown):
            for slot, src in enumerate(ins):
                for a in behind[src]:
                    tag = str(slot) if isinstance(rec, InputChoice) else ""
                    edges.setdefault((a, rec.id), set()).add(tag)
            behind[rec.id] = frozenset({rec.id})
        else:
            behind[rec.id] = frozenset().union(*(behind[i] for i in ins)) if ins else frozenset()
    lines = [
        f"digraph {_q(title + ' (decisions)')} {{",
        "  rankdir=LR;",
        '  node [fontname="Helvetica", fontsize=10];',
        '  edge [fontname="Helvetica", fontsize=8, color=gray40];',
    ]
    for rec in g:
        if not isinstance(rec, shown):
            continue
        nl = "\n"
        if isinstance(rec, Input | Output):
            text = f"{rec.name}{nl}{rec.type}"
            attrs = [f"label={_q(text)}", "shape=ellipse"]
        elif isinstance(rec, InputChoice):
            k = rec.k_min if rec.k_min == rec.k_max else f"{rec.k_min}..{rec.k_max}"
            text = f"{rec.label}{nl}{k} of {rec.n}"
            attrs = [f"label={_q(text)}", "shape=circle", "style=filled", "fillcolor=lightblue"]
        else:
            text = f"{rec.label}{nl}{len(rec.options)} options{nl}{rec.type}"
            attrs = [f"label={_q(text)}", "shape=box", "style=filled", "fillcolor=lightyellow"]
        lines.append(f"  n{rec.id} [{', '.join(attrs)}];")
    for (a, b), tags in sorted(edges.items()):
        tag = ",".join(sorted(t for t in tags if t))
        lines.append(f"  n{a} -> n{b}" + (f" [label={_q(tag)}]" if tag else "") + ";")
    lines.append("}")
    return "\n".join(lines) + "\n"
