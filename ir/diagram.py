"""The pictures a paper draws of a space or of one architecture, as data: nodes and labelled
edges, no drawing here (``nasc.search.diagrams`` renders them with matplotlib).

Where decisions are shared across instances (every DARTS normal cell carries the labels
``normal.*``), the shared structure is drawn once, as the DARTS paper and its successors do
(DARTS Fig. 1 and 4): the cell's inputs ``c_{k-2}``, ``c_{k-1}``, its intermediate nodes
``0, 1, ...``, its output ``c_{k}``, and an edge per chosen op, labelled with it. Where nothing is
shared (DCNAS' grid of fusion modules, DenseNAS' and ProxylessNAS' block chains, HR-NAS' units),
one network diagram shows each decision once, with the data flow between decisions (through the
fixed ops) as edges, and each node's channels and stride.

Everything is read from the IR, not from the space's name:

* an *op edge* is a connected group of nodes selected by one op (or repeat) decision: on a
  space, an op choice with its candidates; on an architecture, the chosen candidate's ops
  (found through the resolved graph's provenance and the guards of the space);
* the tensors an op edge reads and feeds are the *states*; op edges feeding one state belong to
  one instance; an op edge reading a state that an instance computed joins that instance,
  unless a label would repeat (then a new instance begins: the next NAS-Bench-201 cell reads
  the last one's output node); a fixed merge (``sum``, ``concat``) of computed states joins
  their instances, unless a label would repeat, and is a state of the result (DARTS' ``concat``
  of the intermediate nodes is ``c_{k}``, and joins the nodes that read only the inputs);
* an input of a state that no op edge computes is an ``identity`` edge (NASNet's identity
  candidate leaves no node in the resolved graph);
* instances with the same set of labels are one cell type; a type with two or more instances
  is shared, and is drawn once.

>>> import nasc
>>> space = nasc.load("nas_bench_201", N=1)
>>> [d.title for d in diagrams(space.graph)]
['cell (×3)']
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any, Literal

import attrs
from nasc.ir.graph import Graph
from nasc.ir.nodes import Input, Merge, Node, Op, OpChoice, Output, RepeatChoice
from nasc.ir.resolve import resolve_graph
from nasc.ir.sym import labels_of

__all__ = ["Diagram", "DiagramEdge", "DiagramNode", "diagrams"]

Role = Literal["input", "node", "output", "block"]


@attrs.frozen(kw_only=True)
class DiagramNode:
    """One box of a diagram."""

    #: the node's id in the graph the diagram was taken from (the resolved graph for an
    #: architecture)
    key: int
    text: str
    #: ``input``/``output`` of a cell or network, an intermediate ``node``, a network ``block``
    role: Role
    channels: Any = None
    stride: Any = None


@attrs.frozen(kw_only=True)
class DiagramEdge:
    """An arrow: an ``op`` edge (labelled with its decision) or plain data ``flow``."""

    src: int
    dst: int
    label: str = ""
    kind: Literal["op", "flow"] = "op"


@attrs.frozen(kw_only=True)
class Diagram:
    """A cell type (``kind="cell"``, drawn once for its ``instances``) or the network;
    ``nodes`` in topological order."""

    title: str
    kind: Literal["cell", "network"]
    nodes: tuple[DiagramNode, ...]
    edges: tuple[DiagramEdge, ...]
    instances: int = 1

    def text(self, key: int) -> str:
        return next(n.text for n in self.nodes if n.key == key)

    def labelled_edges(self) -> set[tuple[str, str, str]]:
        """``(source text, target text, label)`` for every op edge."""
        return {(self.text(e.src), self.text(e.dst), e.label) for e in self.edges
                if e.kind == "op"}


@attrs.frozen(kw_only=True)
class _Group:
    """An op edge: nodes selected by one decision (``label``; ``values``: value choices their
    parameters read)."""

    nodes: frozenset[int]
    label: str | None
    values: frozenset[str]
    text: str
    sources: tuple[int, ...]
    targets: tuple[int, ...]
    out: int


@attrs.define
class _Instance:
    """One instance of a cell: its op edges and their labels, the states its edges feed
    (``targets``) and merge (``closure``), and every state its edges read (``sources``)."""

    labels: set[str] = attrs.field(factory=set)
    groups: list[_Group] = attrs.field(factory=list)
    targets: list[int] = attrs.field(factory=list)
    closure: list[int] = attrs.field(factory=list)
    sources: set[int] = attrs.field(factory=set)


def diagrams(space: Graph, decisions: Mapping[str, Any] | None = None) -> list[Diagram]:
    """The diagrams of ``space`` (``decisions`` None: every candidate edge, labelled with its
    decision's name and option count) or of the architecture ``decisions`` selects (edges
    labelled with the chosen op): one per shared cell type, then the network where some
    decision is not shared. Empty for a space without decisions."""
    counts = Counter(r.label for r in space.choice_nodes())
    if decisions is None:
        g, tags = space, _space_tags(space)
    else:
        prov: dict[int, int] = {}
        g = resolve_graph(space, decisions, provenance=prov)
        tags = _arch_tags(space, g, prov)
    order = {n: i for i, n in enumerate(g.topo_order())}
    groups = _groups(g, tags, order, space, decisions)
    instances = _instances(g, groups, order)
    families: dict[frozenset[str], list[_Instance]] = {}
    for inst in instances:
        families.setdefault(frozenset(inst.labels), []).append(inst)
    families = {labels: insts for labels, insts in families.items()
                if len(insts) >= 2 and all(counts[lab] >= 2 for lab in labels)}
    out = [_cell(g, f"{_family_name(labels)} (×{len(insts)})", insts[0], order, len(insts))
           for labels, insts in families.items()]
    active = counts if decisions is None else {k: counts[k] for k in decisions if k in counts}
    if any(c == 1 for c in active.values()):
        cells = [(i, _family_name(labels)) for labels, insts in families.items() for i in insts]
        inside = {id(gr) for i, _ in cells for gr in i.groups}
        loose = [gr for gr in groups if id(gr) not in inside]
        out.append(_network(g, cells, loose, order))
    return out


# ---- tags: which decision selects each node ----------------------------------------------------
def _depths(space: Graph) -> dict[str, int]:
    """How deeply each op or repeat label's choice nests (atoms in its guard)."""
    depth: dict[str, int] = {}
    for r in space.choice_nodes():
        if isinstance(r, OpChoice | RepeatChoice):
            d = max((len(t) for t in r.guard.terms), default=0)
            depth[r.label] = max(depth.get(r.label, 0), d)
    return depth


def _innermost(rec: Node, depth: dict[str, int]) -> str | None:
    labels = {a.label for t in rec.guard.terms for a in t if a.label in depth}
    return max(labels, key=lambda lab: (depth[lab], lab)) if labels else None


def _values(rec: Node) -> frozenset[str]:
    return labels_of(tuple(v for _, v in rec.params)) if isinstance(rec, Op) else frozenset()


def _space_tags(space: Graph) -> dict[int, tuple[str | None, frozenset[str]]]:
    depth = _depths(space)
    tags = {}
    for r in space:
        if isinstance(r, OpChoice | RepeatChoice):
            tags[r.id] = (r.label, frozenset())
        elif isinstance(r, Op):
            lab, vals = _innermost(r, depth), _values(r)
            if lab is not None or vals:
                tags[r.id] = (lab, vals)
    return tags


def _arch_tags(space: Graph, g: Graph, prov: Mapping[int, int]):
    depth = _depths(space)
    tags = {}
    for nid, src in prov.items():
        rec = space[src]
        if isinstance(rec, Op) and isinstance(g[nid], Op):
            lab, vals = _innermost(rec, depth), _values(rec)
            if lab is not None or vals:
                tags[nid] = (lab, vals)
    return tags


# ---- op edges ----------------------------------------------------------------------------------
def _groups(g: Graph, tags, order, space: Graph, decisions) -> list[_Group]:
    parent = {n: n for n in tags}

    def find(n: int) -> int:
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    def key(n: int):
        lab, vals = tags[n]
        return lab if lab is not None else vals

    for n in tags:
        for i in g.inputs(n):
            if i in tags and key(i) == key(n):
                parent[find(i)] = find(n)
    members: dict[int, list[int]] = {}
    for n in tags:
        members.setdefault(find(n), []).append(n)
    options = {r.label: r.options for r in space.choice_nodes()}
    out = []
    for nodes in sorted(members.values(), key=lambda ns: min(order[n] for n in ns)):
        keep = frozenset(nodes)
        label = tags[nodes[0]][0]
        values = frozenset().union(*(tags[n][1] for n in nodes))
        outs = [n for n in nodes if any(u not in keep for u in g.users(n)) or not g.users(n)]
        last = max(outs or nodes, key=order.__getitem__)
        sources = sorted({i for n in nodes for i in g.inputs(n) if i not in keep},
                         key=order.__getitem__)
        targets = sorted({u for u in g.users(last) if u not in keep}, key=order.__getitem__)
        if any(u in tags for u in targets):  # read by the next op edges directly: a state
            targets = [last]
        ops = sorted({g[n].op for n in nodes if isinstance(g[n], Op)})
        text = _group_text(label, values, ops, options, decisions)
        out.append(_Group(nodes=keep, label=label, values=values, text=text,
                          sources=tuple(sources), targets=tuple(targets), out=last))
    return _units(out, g, options, decisions)


def _units(groups: list[_Group], g: Graph, options, decisions) -> list[_Group]:
    """Groups of value choices alone that run side by side (same inputs, same consumers) are
    one unit: HR-NAS' searching block, a mixed convolution's channels beside its transformer's
    tokens."""
    side: dict[tuple, list[_Group]] = {}
    out: list[_Group] = []
    for gr in groups:
        if gr.label is None:
            side.setdefault((gr.sources, gr.targets), []).append(gr)
        else:
            out.append(gr)
    for grs in side.values():
        values = frozenset().union(*(gr.values for gr in grs))
        ops = [_ops_of(g, gr) for gr in grs]
        head = ops[0] if len(ops) == 1 else "unit"
        text = head + " " + _group_text(None, values, [], options, decisions).strip()
        last = max(grs, key=lambda gr: gr.out).out
        out.append(_Group(nodes=frozenset().union(*(gr.nodes for gr in grs)), label=None,
                          values=values, text=text.strip(), sources=grs[0].sources,
                          targets=grs[0].targets, out=last))
    return out


def _ops_of(g: Graph, gr: _Group) -> str:
    return "+".join(sorted({g[n].op for n in gr.nodes if isinstance(g[n], Op)}))


def _short(label: str) -> str:
    return label.rsplit(".", 1)[-1]


def _group_text(label, values, ops, options, decisions) -> str:
    if decisions is None:
        parts = [f"{label} ×{len(options[label])}"] if label is not None else ops
        parts += [f"{_short(v)} ∈ {_span(options[v])}" for v in sorted(values)]
    else:
        parts = [_option(decisions[label], options[label])] if label is not None else ops
        parts += [f"{_short(v)}={decisions[v]}" for v in sorted(values)]
    return " ".join(parts)


def _option(chosen: Any, options) -> str:
    """An option's name without the arguments all options share: ``mbconv k=5, e=6`` for
    ``mbconv[k=5, e=6, se=true]`` among MBConvs that all have ``se=true``."""
    text = str(chosen)
    if not (text.endswith("]") and "[" in text):
        return text
    head, args = _split(text)
    others = [_split(str(o)) for o in options]
    common = set.intersection(*(set(a) for h, a in others if h == head)) if others else set()
    kept = [a for a in args if a not in common]
    return f"{head} {', '.join(kept)}" if kept else head


def _split(text: str) -> tuple[str, list[str]]:
    if not (text.endswith("]") and "[" in text):
        return text, []
    head, _, rest = text.partition("[")
    return head, [a.strip() for a in rest[:-1].split(",")]


def _span(values) -> str:
    vs = list(values)
    return f"{{{vs[0]}..{vs[-1]}}}" if len(vs) > 3 else "{" + ",".join(map(str, vs)) + "}"


# ---- cells -------------------------------------------------------------------------------------
def _instances(g: Graph, groups: list[_Group], order) -> list[_Instance]:
    """Op edges split into instances (module docstring)."""
    into: dict[int, list[_Group]] = {}
    for gr in groups:
        if gr.label is not None and gr.targets:
            into.setdefault(gr.targets[0], []).append(gr)
    home: dict[int, _Instance] = {}  # inner state (target or merge of them) -> its instance

    def join(a: _Instance, b: _Instance) -> _Instance:
        if a is b or a.labels & b.labels:
            return a
        a.labels |= b.labels
        a.groups += b.groups
        a.targets += b.targets
        a.closure += b.closure
        a.sources |= b.sources
        for n, inst in home.items():
            if inst is b:
                home[n] = a
        return a

    for n in g.topo_order():
        ins = g.inputs(n)
        if n in into:
            grs = into[n]
            inst = _Instance(labels={gr.label for gr in grs}, groups=list(grs), targets=[n])
            inst.sources = {s for gr in grs for s in gr.sources} | set(_identities(n, ins, grs))
            home[n] = inst
            for s in sorted(inst.sources, key=order.__getitem__):
                if s in home:
                    inst = join(home[s], inst) if home[s].labels.isdisjoint(inst.labels) else inst
        elif isinstance(g[n], Merge) and len(ins) >= 2 and all(i in home for i in ins):
            owners = list({id(home[i]): home[i] for i in ins}.values())
            merged = owners[0]
            for other in owners[1:]:
                merged = join(merged, other)
            if all(home[i] is merged for i in ins):
                merged.closure.append(n)
                home[n] = merged
    seen: dict[int, _Instance] = {}
    for n in g.topo_order():
        if n in home and id(home[n]) not in seen:
            seen[id(home[n])] = home[n]
    return list(seen.values())


def _identities(target: int, ins, groups: list[_Group]) -> list[int]:
    """The inputs of ``target`` that no op edge computes: an identity candidate was chosen
    (NASNet's ``identity``: the resolved graph has no node for it)."""
    inside = {n for gr in groups for n in (*gr.nodes, gr.out)}
    return [i for i in ins if i not in inside and i != target]


def _cell(g: Graph, title: str, inst: _Instance, order, count: int) -> Diagram:
    inner = set(inst.targets) | set(inst.closure)
    inputs = sorted(inst.sources - inner, key=order.__getitem__)
    used = {i for c in inst.closure for i in g.inputs(c)}
    sinks = [c for c in inst.closure if c not in used]
    if not sinks:  # no merge of the intermediate nodes: the last one is the cell's output
        sinks = [max(inst.targets, key=order.__getitem__)]
    middle = sorted(inner - set(sinks), key=order.__getitem__)
    names: dict[int, tuple[str, Role]] = {}
    m = len(inputs)
    for j, n in enumerate(inputs):
        names[n] = (f"c_{{k-{m - j}}}", "input")
    for j, n in enumerate(middle):
        names[n] = (str(j), "node")
    for j, n in enumerate(sorted(sinks, key=order.__getitem__)):
        names[n] = ("c_{k}" if j == 0 else f"c_{{k}}.{j}", "output")
    nodes = tuple(DiagramNode(key=n, text=t, role=r, channels=_ch(g, n), stride=_st(g, n))
                  for n, (t, r) in sorted(names.items(), key=lambda kv: order[kv[0]]))
    prefix = _prefix(inst.labels)
    edges = [DiagramEdge(src=s, dst=gr.targets[0], label=gr.text.removeprefix(prefix))
             for gr in sorted(inst.groups, key=lambda gr: order[gr.out]) for s in gr.sources
             if s in names]
    by_target: dict[int, list[_Group]] = {}
    for gr in inst.groups:
        by_target.setdefault(gr.targets[0], []).append(gr)
    edges += [DiagramEdge(src=i, dst=t, label="identity") for t in inst.targets
              for i in _identities(t, g.inputs(t), by_target[t]) if i in names]
    edges += [DiagramEdge(src=i, dst=c, kind="flow") for c in inst.closure
              for i in g.inputs(c) if i in names]
    return Diagram(title=title, kind="cell", nodes=nodes, edges=tuple(edges), instances=count)


def _prefix(labels) -> str:
    """The dotted components all ``labels`` share, with the last dot (``normal.``)."""
    parts = [lab.split(".") for lab in labels]
    common = []
    for column in zip(*parts):
        if len(set(column)) != 1:
            break
        common.append(column[0])
    return "".join(c + "." for c in common)


def _family_name(labels) -> str:
    prefix = _prefix(labels)
    return f"{prefix[:-1]} cell" if prefix else "cell"


def _ch(g: Graph, n: int):
    t = g[n].type
    return None if t is None else t.channels


def _st(g: Graph, n: int):
    t = g[n].type
    return None if t is None else t.stride


# ---- the network -------------------------------------------------------------------------------
def _network(g: Graph, cells: list[tuple[_Instance, str]], loose: list[_Group], order) -> Diagram:
    """Each unshared decision once, each shared cell instance as one block, the network's
    inputs and outputs; an edge wherever data flows from one to the next through fixed ops."""
    unit: dict[int, int] = {}
    text: dict[int, str] = {}
    for inst, name in cells:
        inner = [*inst.targets, *inst.closure, *(n for gr in inst.groups for n in gr.nodes)]
        key = max(inst.closure or inst.targets, key=order.__getitem__)
        for n in inner:
            unit[n] = key
        text[key] = name
    for gr in loose:
        for n in gr.nodes:
            unit[n] = gr.out
        text[gr.out] = gr.text
    for r in g:
        if isinstance(r, Input | Output):
            unit[r.id] = r.id
            text[r.id] = r.name
    behind: dict[int, frozenset[int]] = {}
    edges: set[tuple[int, int]] = set()
    for n in g.topo_order():
        ups = frozenset().union(*(behind[i] for i in g.inputs(n))) if g.inputs(n) else frozenset()
        u = unit.get(n)
        if u is None:
            behind[n] = ups
            continue
        edges |= {(a, u) for a in ups if a != u}
        behind[n] = frozenset({u})
    role = {k: ("input" if isinstance(g[k], Input) else
                "output" if isinstance(g[k], Output) else "block") for k in text}
    nodes = tuple(DiagramNode(key=k, text=text[k], role=role[k], channels=_ch(g, k),
                              stride=_st(g, k))
                  for k in sorted(text, key=order.__getitem__))
    return Diagram(title="network", kind="network", nodes=nodes,
                   edges=tuple(DiagramEdge(src=a, dst=b, kind="flow")
                               for a, b in sorted(edges, key=lambda e: (order[e[1]], order[e[0]]))))
