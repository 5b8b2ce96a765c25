"""Costing graphs: :func:`cost` of a choice-free graph, :func:`expected_cost` of a space under
a distribution over its decisions, :func:`unit_cost` (HR-NAS Δ) and :func:`one_hot`."""

from __future__ import annotations

import difflib
import itertools
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import attrs
from nasc.ir.cost.conditions import FALSE, TRUE, Cond, Conditions, Var
from nasc.ir.cost.stdlib import DEFAULT
from nasc.ir.cost.table import KINDS, CostError, CostTable, OpCall
from nasc.ir.graph import Graph
from nasc.ir.nodes import (
    Align,
    Input,
    InputChoice,
    Merge,
    Node,
    Op,
    OpChoice,
    Output,
    RepeatChoice,
    ValueChoice,
)
from nasc.ir.sym import evaluate, labels_of
from nasc.ir.types import Layout, TensorType

#: Most joint assignments of value choices one node's cost may depend on.
MAX_ASSIGNMENTS = 4096
#: Largest liveness condition (DNF terms) kept exactly; larger ones are summarized.
MAX_TERMS = 32


# ---- costing one node ----------------------------------------------------------------------
@attrs.frozen(kw_only=True)
class _Setup:
    kind: str
    hw: tuple[int, int]
    table: CostTable
    bn_affine: bool
    bytes_per_element: int


def _setup(kind: str, input_size: Any, table: CostTable, bn_affine: bool, bpe: int) -> _Setup:
    if not isinstance(kind, str):
        raise CostError(f"kind must be a string such as {KINDS}, got {kind!r}")
    hw = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    if len(hw) != 2 or not all(isinstance(v, int) and v >= 1 for v in hw):
        raise CostError(f"input_size must be (H, W) of positive ints, got {input_size!r}")
    return _Setup(kind=kind, hw=hw, table=table, bn_affine=bn_affine, bytes_per_element=bpe)


def _concrete(ty: TensorType, env: Mapping[str, Any]) -> TensorType:
    """``ty`` with its symbols evaluated (``KeyError`` for an undecided value choice)."""
    return attrs.evolve(ty, channels=evaluate(ty.channels, env), stride=evaluate(ty.stride, env))


def _spatial(ty: TensorType, hw: tuple[int, int]) -> tuple[int, int]:
    if ty.layout is Layout.VECTOR:
        return (1, 1)
    return (-(-hw[0] // ty.stride), -(-hw[1] // ty.stride))


def _elements(ty: TensorType, hw: tuple[int, int]) -> int:
    h, w = _spatial(ty, hw)
    return ty.channels * h * w


def _call_cost(
    name: str, params: tuple, ins: list[TensorType], out: TensorType, setup: _Setup
) -> int:
    """The table's ``setup.kind`` cost of op ``name`` from ``ins`` to ``out`` (concrete)."""
    fn = setup.table[name].fn(setup.kind)
    if fn is None:
        raise CostError(f"op {name!r} has no {setup.kind!r} cost in this table")
    call = OpCall(
        op=name,
        params=params,
        in_channels=tuple(t.channels for t in ins),
        in_hw=tuple(_spatial(t, setup.hw) for t in ins),
        out_channels=out.channels,
        out_hw=_spatial(out, setup.hw),
        bn_affine=setup.bn_affine,
    )
    value = fn(call)
    return value * setup.bytes_per_element if setup.kind == "memory" else value


def _align_cost(rec: Align, src: TensorType, out: TensorType, setup: _Setup) -> int:
    """An ``Align`` costs what ``insert_alignment`` lowers it to: the ops of its policy (the
    pass's default ``"dcnas"`` when it names none), unless the table has an ``"align"`` op."""
    if "align" in setup.table:
        return _call_cost("align", (("policy", rec.policy),), [src], out, setup)
    from nasc.ir.passes.align import POLICIES  # lazily: passes may come to use costs

    policy = rec.policy or "dcnas"
    steps = POLICIES[policy](src, out) if policy in POLICIES else None
    if steps is None:
        raise CostError(f"align %{rec.id}: policy {policy!r} cannot align {src} to {out}")
    total, prev = 0, src
    for op, params, ty in steps:
        total += _call_cost(op, params, [prev], ty, setup)
        prev = ty
    return total


def _node_cost(g: Graph, rec: Node, env: Mapping[str, Any], setup: _Setup) -> int:
    """The cost of one node once the value choices it mentions are fixed by ``env``.

    An ``InputChoice`` is costed as the merge it resolves to (only when it picks two or more).
    """
    if rec.type is None:
        return 0
    try:
        ins = [_concrete(g[i].type, env) for i in g.inputs(rec.id)]
        out = _concrete(rec.type, env)
        params = tuple((k, evaluate(v, env)) for k, v in getattr(rec, "params", ()))
    except KeyError as e:
        raise CostError(
            f"node %{rec.id} depends on value choice {e.args[0]!r}; use expected_cost"
        ) from None
    if isinstance(rec, Op):
        return _call_cost(rec.op, params, ins, out, setup)
    if isinstance(rec, Align):
        return _align_cost(rec, ins[0], out, setup)
    if isinstance(rec, Input | Merge | InputChoice) and setup.kind == "memory":
        return _elements(out, setup.hw) * setup.bytes_per_element
    return 0


def _graph_of(graph: Graph | Any) -> Graph:
    return graph if isinstance(graph, Graph) else graph.graph  # a Space


# ---- choice-free graphs --------------------------------------------------------------------
def _live_nodes(g: Graph) -> set[int]:
    """Nodes an output depends on (what ``Space.resolve`` keeps)."""
    live: set[int] = set()
    stack = [r.id for r in g if isinstance(r, Output)]
    while stack:
        n = stack.pop()
        if n not in live:
            live.add(n)
            stack.extend(g.inputs(n))
    return live


def node_costs(
    graph: Graph,
    kind: str,
    *,
    input_size: int | tuple[int, int] = (32, 32),
    table: CostTable = DEFAULT,
    bn_affine: bool = True,
    bytes_per_element: int = 1,
) -> dict[int, int]:
    """Node id → cost, for every node of a choice-free graph that an output depends on."""
    g = _graph_of(graph)
    setup = _setup(kind, input_size, table, bn_affine, bytes_per_element)
    for rec in g:
        if not isinstance(rec, Input | Output | Op | Merge | Align):
            raise CostError(
                f"cost() takes a choice-free graph, but %{rec.id} is a {type(rec).__name__}; "
                "resolve an architecture first, or use expected_cost()"
            )
    live = _live_nodes(g)
    return {r.id: _node_cost(g, r, {}, setup) for r in g if r.id in live}


def cost(
    graph: Graph,
    kind: str,
    *,
    input_size: int | tuple[int, int] = (32, 32),
    table: CostTable = DEFAULT,
    bn_affine: bool = True,
    bytes_per_element: int = 1,
) -> int:
    """The ``kind`` cost (``"params"``, ``"macs"``, ``"memory"`` or a table's own kind) of a
    choice-free graph (or a resolved ``Space``) for one ``input_size`` image.

    Nodes no output depends on are not counted (``Space.resolve`` drops them too).
    ``bn_affine`` counts the affine parameters of the BN layers inside composite ops (False for
    the DARTS search network's ``affine=False`` ops). ``bytes_per_element`` scales memory only.
    """
    return sum(
        node_costs(
            graph, kind, input_size=input_size, table=table, bn_affine=bn_affine,
            bytes_per_element=bytes_per_element,
        ).values()
    )  # fmt: skip


# ---- spaces: when does a node end up in the network ----------------------------------------
_CHOICES = (OpChoice, InputChoice, RepeatChoice, ValueChoice)


def label_options(g: Graph) -> dict[str, tuple[Any, ...]]:
    """Label → its options (input choices: the input indices), from the graph's choice nodes."""
    out: dict[str, tuple[Any, ...]] = {}
    for rec in g:
        if isinstance(rec, _CHOICES):
            out.setdefault(rec.label, tuple(rec.options))
        elif not isinstance(rec, Input | Output | Op | Merge | Align):
            raise CostError(
                f"%{rec.id} is a {type(rec).__name__}: costs are computed on the space "
                "(choices), not on a relaxed or sampled graph"
            )
    return out


def _edge(cs: Conditions, user: Node, slot: int) -> Cond:
    """When the edge into ``slot`` of ``user`` is taken, given that ``user`` is."""
    if isinstance(user, OpChoice | RepeatChoice):
        return cs.term({(user.label, None): frozenset({slot})})
    if isinstance(user, InputChoice):
        return cs.picked(user.label, slot)
    return TRUE


def _liveness(g: Graph, cs: Conditions) -> dict[int, Cond]:
    """Node id → when the node is in the resolved network: its guard holds and an output uses
    it through taken edges (``live(n) = guard(n) & OR_(u, slot) edge(u, slot) & live(u)``).

    A condition of more than :data:`MAX_TERMS` terms (many paths to the outputs over many
    decisions) is summarized as one variable: exact for 0/1 probabilities, an independence
    approximation otherwise."""
    live: dict[int, Cond] = {}
    for nid in reversed(g.topo_order()):
        rec = g[nid]
        guard = cs.of_guard(rec.guard)
        if isinstance(rec, Output):
            live[nid] = guard
            continue
        used = FALSE
        for _, user, slot in sorted(g.nx.out_edges(nid, data="slot")):
            used = cs.or_(used, cs.and_(_edge(cs, g[user], slot), live[user]))
        live[nid] = cs.and_(guard, used)
        if len(live[nid]) > MAX_TERMS:
            live[nid] = cs.summarize(live[nid], f"<live %{nid}>")
    return live


def _merges(cs: Conditions, rec: InputChoice) -> Cond:
    """When an input choice resolves to a ``Merge`` node: it picks at least two inputs."""
    if rec.k_min >= 2:
        return TRUE
    if rec.k_max < 2:
        return FALSE
    out = FALSE
    for i, j in itertools.combinations(range(rec.n), 2):
        out = cs.or_(out, cs.and_(cs.picked(rec.label, i), cs.picked(rec.label, j)))
    return out


def _assignments(
    labels: frozenset[str], options: Mapping[str, tuple[Any, ...]], rec: Node
) -> Iterator[tuple[dict[str, Any], dict[Var, frozenset[int]]]]:
    """Every joint value of the value choices ``labels``, with the condition selecting it."""
    ordered = sorted(labels)
    missing = [lab for lab in ordered if lab not in options]
    if missing:
        raise CostError(f"node %{rec.id} mentions {missing[0]!r}, which is no choice of the graph")
    total = 1
    for lab in ordered:
        total *= len(options[lab])
    if total > MAX_ASSIGNMENTS:
        raise CostError(f"node %{rec.id} depends on {total} joint values of {ordered}: too many")
    for idx in itertools.product(*(range(len(options[lab])) for lab in ordered)):
        env = {lab: options[lab][i] for lab, i in zip(ordered, idx)}
        yield env, {(lab, None): frozenset({i}) for lab, i in zip(ordered, idx)}


def _node_labels(g: Graph, rec: Node) -> frozenset[str]:
    out = labels_of(tuple(v for _, v in getattr(rec, "params", ())))
    for ty in [rec.type, *(g[i].type for i in g.inputs(rec.id))]:
        if ty is not None:
            out |= labels_of((ty.channels, ty.stride))
    return out


def _check_probs(options: Mapping[str, tuple[Any, ...]], probs: Mapping[str, Any]) -> None:
    for lab, opts in sorted(options.items()):
        if lab not in probs:
            close = difflib.get_close_matches(lab, [str(k) for k in probs], n=1)
            raise CostError(
                f"no probabilities for label {lab!r}"
                + (f" (given {close[0]!r})" if close else "")
                + "; inactive labels need a distribution too (one_hot() fills them)"
            )
        if len(probs[lab]) != len(opts):
            raise CostError(
                f"label {lab!r}: {len(probs[lab])} probabilities for {len(opts)} options"
            )


def expected_cost(
    graph: Graph,
    kind: str,
    probs: Mapping[str, Sequence[Any]],
    *,
    input_size: int | tuple[int, int] = (32, 32),
    table: CostTable = DEFAULT,
    bn_affine: bool = True,
    bytes_per_element: int = 1,
) -> Any:
    """The expected ``kind`` cost of a space when its decisions are drawn independently.

    ``probs[label]`` is a sequence aligned with the label's options: probabilities of its
    options for op, value and repeat choices (summing to 1), and for an input choice the
    inclusion probability of each input. Every label needs one, active or not (:func:`one_hot`
    fills inactive ones). Labels are independent, and so are the picks of one input choice
    (exact for one ``has`` atom; an event over several picks of one choice, such as "some
    input is picked", is computed as if ``k_min``/``k_max`` did not bind), except that an input
    choice that must pick all its inputs (``k_min == n``) picks each surely.

    ``E = sum_n P(n in network) * cost(n)`` (DenseNAS eq. 5–7), over op nodes, merges and, for
    memory, inputs and input choices that merge two or more picks. A node is in the network
    when its guard holds and an output uses it through taken edges (what ``Space.resolve``
    keeps). Guards are DNFs over atoms: ``eq`` contributes ``probs[label][index]``, ``has`` the
    inclusion probability, ``ge`` the mass of depths at least the value; ``P`` of a DNF is
    exact under independence (Shannon expansion on shared variables). A node whose cost depends
    on value choices is summed over their values: ``sum_v P(n in network, V = v) * cost_v(n)``.

    Only ``+``, ``-`` and ``*`` touch the probabilities, so torch tensors give a differentiable
    result; with 0/1 integers (:func:`one_hot`) the result is the exact cost of that
    architecture, and with :class:`~fractions.Fraction` s an exact expectation. A liveness
    condition of more than :data:`MAX_TERMS` terms is summarized (see ``_liveness``), which
    keeps 0/1 results exact and makes soft ones an independence approximation.

    >>> import nasc
    >>> space = nasc.load("nas_bench_201")
    >>> arch = {lab: "nor_conv_3x3" for lab in space.specs}
    >>> expected_cost(space.graph, "params", one_hot(space.graph, arch))
    1531546
    """
    g = _graph_of(graph)
    setup = _setup(kind, input_size, table, bn_affine, bytes_per_element)
    options = label_options(g)
    _check_probs(options, probs)
    return _expected(g, setup, options, probs)


def _expected(g: Graph, setup: _Setup, options, probs) -> Any:
    forced = {r.label for r in g if isinstance(r, InputChoice) and r.k_min == r.n}
    cs = Conditions(options, probs, frozenset(forced))
    live = _liveness(g, cs)
    total: Any = 0
    for rec in g:
        cond = live[rec.id]
        if not cond or not isinstance(rec, Input | Op | Merge | Align | InputChoice):
            continue
        if isinstance(rec, InputChoice):
            if setup.kind != "memory":
                continue
            cond = cs.and_(cond, _merges(cs, rec))
        for env, fixed in _assignments(_node_labels(g, rec), options, rec):
            c = _node_cost(g, rec, env, setup)
            if c:
                total = total + cs.prob(cs.and_(cond, cs.term(fixed))) * c
    return total


def one_hot(graph: Graph, arch: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    """0/1 probabilities selecting ``arch``: 1 on the chosen option (input choices: on each
    picked input). Labels ``arch`` leaves out (inactive ones) get their first option (first
    ``k_min`` inputs), any distribution would do."""
    g = _graph_of(graph)
    out: dict[str, tuple[int, ...]] = {}
    for rec in g:
        if not isinstance(rec, _CHOICES) or rec.label in out:
            continue
        opts = tuple(rec.options)
        if isinstance(rec, InputChoice):
            picked = set(arch[rec.label]) if rec.label in arch else set(range(rec.k_min))
            out[rec.label] = tuple(int(j in picked) for j in opts)
        else:
            d = arch.get(rec.label, opts[0])
            same = [i for i, o in enumerate(opts) if o == d and type(o) is type(d)]
            if not same:
                raise CostError(f"{rec.label!r}: {d!r} is not one of {list(opts)}")
            out[rec.label] = tuple(int(i == same[0]) for i in range(len(opts)))
    return out


def unit_cost(
    graph: Graph,
    kind: str,
    label: str,
    units: int,
    probs: Mapping[str, Sequence[Any]] | None = None,
    *,
    input_size: int | tuple[int, int] = (32, 32),
    table: CostTable = DEFAULT,
    bn_affine: bool = True,
) -> Any:
    """HR-NAS eq. 6, ``Delta = O(n') - O(n' - 1)``: how much the (expected) cost drops when the
    value choice ``label`` (a width or token count) goes from ``units`` to ``units - 1``.

    ``units`` need not be one of the label's options; the other labels follow ``probs``.
    """
    g = _graph_of(graph)
    setup = _setup(kind, input_size, table, bn_affine, 1)
    options = label_options(g)
    if not any(isinstance(r, ValueChoice) and r.label == label for r in g):
        raise CostError(f"{label!r} is no value choice of this graph")
    probs = dict(probs or {})
    at = []
    for n in (units, units - 1):
        opts = {**options, label: (n,)}
        ps = {**probs, label: (1,)}
        _check_probs(opts, ps)
        at.append(_expected(g, setup, opts, ps))
    return at[0] - at[1]
