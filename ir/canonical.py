"""Canonical forms of networks: when two architectures select the same network.

A space's size counts decisions (``Space.count()``); different decisions can build the same
network. :class:`Canonicaliser` reduces the network an architecture selects to a canonical
graph under exactly these rules, and serialises it; two architectures get the same
:attr:`CanonicalForm.digest` exactly when their canonical graphs are equal.

1. A zero op (``none``) contributes nothing.
2. A node with nothing but zero contributions is zero (a sum of zeros, a concat of zeros), and
   so is an op applied to zero (an op all of whose tensor inputs are zero). A zero inside a
   concat keeps its channels: it is a block of zeros, and neighbouring blocks of zeros join.
3. Identity ops are elided: ``identity``, and ``skip_connect`` at stride 1 with the channel
   count kept; so is a sum or concat of one input.
4. The inputs of a sum form a multiset; a concat keeps its order. Sums are associative: a sum
   that feeds a sum contributes its inputs, and a concat that feeds a concat its parts.
5. Nodes that no output depends on are removed.
6. Parameter-free ops are compared by op, parameters and inputs (two equal ones are one node);
   parameterised ops by op, parameters, inputs and position in the canonical graph (two
   convolutions of the same tensor are two nodes). Weights are never compared.

An op is parameter-free when its cost model (``nasc.ir.cost.DEFAULT``) counts no parameters for
the call; an op without a cost model counts as parameterised. The zero op is the one relaxation
adds (``nasc.ir.passes.relax.ZERO``).

The serialisation is exact, not a fingerprint: it lists every node of the canonical graph with
its op, parameters, output type and inputs (by position), in a canonical order. The order comes
from two structural hashes per node (its expression below, and its uses above); ties that
remain are twins (same inputs, same users: any order gives the same text), and any other tie is
broken by marking one member of the first tied class and hashing again (individualisation, as in
canonical graph labelling). Equal texts always mean equal canonical graphs; that equal graphs
give equal texts rests on tied nodes being interchangeable (an automorphism maps one to the
other), which the brute force over NAS-Bench-201 and the random-network tests check. Only the
final digest is a hash (SHA-256 of the text). An ``align`` node counts as parameterised (how it
aligns is decided later, by ``insert_alignment``).

>>> import nasc
>>> space = nasc.load("nas_bench_201", N=1)
>>> c = Canonicaliser(space.graph)
>>> base = {"1<-0": "nor_conv_3x3", "2<-0": "none", "2<-1": "skip_connect",
...         "3<-0": "none", "3<-1": "none", "3<-2": "skip_connect"}
>>> c.hash(base) == c.hash({**base, "2<-0": "none", "3<-1": "skip_connect", "3<-2": "none"})
True
>>> c.hash(base) == c.hash({**base, "3<-0": "avg_pool_3x3"})
False
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import attrs
from nasc.ir.cost import DEFAULT
from nasc.ir.cost.table import CostError, CostTable, OpCall
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
    is_identity_op,
)
from nasc.ir.passes.relax import ZERO
from nasc.ir.sym import evaluate, labels_of
from nasc.ir.types import TensorType


class CanonicalError(ValueError):
    """A graph cannot be put in canonical form (it has relaxed nodes)."""


@attrs.frozen(kw_only=True)
class CanonicalForm:
    """The canonical serialisation of a network and where its parameterised ops went.

    ``positions`` maps the id of every parameterised op node of the source graph that survives
    the rules to its position in the canonical graph (equal positions: the same weights).
    """

    text: str
    positions: Mapping[int, int]

    @property
    def digest(self) -> str:
        """SHA-256 of :attr:`text`, in hex."""
        return hashlib.sha256(self.text.encode()).hexdigest()


# ---- op semantics --------------------------------------------------------------------------
def is_zero_op(op: str) -> bool:
    """The zero candidate (``none``): its output is zero whatever its input."""
    return op == ZERO


# ---- the canonical graph of one architecture ---------------------------------------------------
@attrs.define
class _Net:
    """The canonical graph being built: node ``i`` is ``labels[i]`` applied to ``inputs[i]``."""

    labels: list[tuple] = attrs.field(factory=list)
    inputs: list[tuple[int, ...]] = attrs.field(factory=list)
    types: list[TensorType] = attrs.field(factory=list)
    texts: list[str] = attrs.field(factory=list)
    interned: dict[tuple, int] = attrs.field(factory=dict)
    zero: set[int] = attrs.field(factory=set)
    origin: dict[int, int] = attrs.field(factory=dict)  # parameterised node -> source id

    def node(self, label: tuple, inputs: tuple[int, ...], ty: TensorType, *, free: bool,
             source: int = -1) -> int:
        """A new node, or for a parameter-free one the equal node made before (rule 6)."""
        label = (*label, _type_key(ty))
        key = (label, inputs)
        if free and key in self.interned:
            return self.interned[key]
        self.labels.append(label)
        self.inputs.append(inputs)
        self.types.append(ty)
        self.texts.append(repr(label))
        n = len(self.labels) - 1
        if free:
            self.interned[key] = n
        else:
            self.origin[n] = source
        return n

    def zeros(self, ty: TensorType) -> int:
        n = self.node(("zero",), (), ty, free=True)
        self.zero.add(n)
        return n

    def merge(self, mode: str, ty: TensorType, parts: list[int]) -> int:
        if mode == "sum":
            flat = [p for q in parts for p in (self.inputs[q] if self._is(q, "sum") else (q,))]
            flat = sorted(p for p in flat if p not in self.zero)
        else:
            flat = []
            for q in parts:
                for p in self.inputs[q] if self._is(q, "concat") else (q,):
                    if p in self.zero and flat and flat[-1] in self.zero:  # join zero blocks
                        a, b = self.types[flat[-1]], self.types[p]
                        flat[-1] = self.zeros(a.with_channels(a.channels + b.channels))
                    else:
                        flat.append(p)
        if not flat or all(p in self.zero for p in flat):
            return self.zeros(ty)
        if len(flat) == 1:
            return flat[0]
        return self.node((mode,), tuple(flat), ty, free=True)

    def _is(self, n: int, mode: str) -> bool:
        return self.labels[n][0] == mode


def _type_key(ty: TensorType) -> tuple:
    return (ty.layout.value, ty.channels, ty.stride)


def _hashable(v: Any) -> Any:
    if isinstance(v, list | tuple):
        return tuple(_hashable(x) for x in v)
    if isinstance(v, dict):
        return tuple(sorted((k, _hashable(x)) for k, x in v.items()))
    return v


class Canonicaliser:
    """Canonical forms of the networks of one graph (a space, or a choice-free graph).

    Built once per space; :meth:`form` and :meth:`hash` take canonical decisions
    (``space.canonical(arch)``; ``{}`` for a choice-free graph).
    """

    def __init__(self, g: Graph, *, table: CostTable = DEFAULT) -> None:
        self.graph = g
        self.table = table
        self._steps = [(rec, tuple(g.inputs(rec.id))) for rec in g]
        self._index = {rec.id: i for i, (rec, _) in enumerate(self._steps)}
        self._inputs = {rec.id: ins for rec, ins in self._steps}
        self._outputs = [rec.id for rec, _ in self._steps if isinstance(rec, Output)]
        self._kind = {rec.id: _kind(rec) for rec, _ in self._steps}
        self._slots = {  # op and repeat choices: decision -> the input it selects
            rec.id: dict(zip(rec.options, ins))
            for rec, ins in self._steps
            if isinstance(rec, OpChoice | RepeatChoice)
        }
        self._params: dict[int, tuple[dict, tuple]] = {}  # ops no value choice decides
        for rec, _ in self._steps:
            if isinstance(rec, Op) and not labels_of(tuple(v for _, v in rec.params)):
                params = {k: _hashable(v) for k, v in rec.params}
                self._params[rec.id] = (params, ("op", rec.op, tuple(sorted(params.items()))))
        self._free: dict[tuple, bool] = {}

    def hash(self, decisions: Mapping[str, Any]) -> str:
        """The digest of :meth:`form`."""
        return self.form(decisions).digest

    def form(self, decisions: Mapping[str, Any]) -> CanonicalForm:
        """The canonical form of the network that ``decisions`` select."""
        net = self._build(decisions)
        live = _live(net)
        order = _canonical_order(net, live)
        rank = {n: i for i, n in enumerate(order)}
        lines = []
        for n in order:
            ins = [rank[i] for i in net.inputs[n]]
            if net.labels[n][0] == "sum":
                ins.sort()
            lines.append(f"{net.texts[n]} <- {ins}")
        positions = {src: rank[n] for n, src in net.origin.items() if n in rank}
        return CanonicalForm(text="\n".join(lines), positions=positions)

    # ---- building the canonical graph ----------------------------------------------------------
    def _needed(self, d: Mapping[str, Any]) -> set[int]:
        """The source nodes the chosen network reads: from the outputs, through chosen slots."""
        need: set[int] = set()
        stack = list(self._outputs)
        kind, inputs = self._kind, self._inputs
        while stack:
            n = stack.pop()
            if n in need:
                continue
            need.add(n)
            k = kind[n]
            if k == "choose":
                stack.append(self._slots[n][d[self.graph[n].label]])
            elif k == "pick":
                ins = inputs[n]
                stack.extend(ins[j] for j in d[self.graph[n].label])
            elif k != "zero":
                stack.extend(inputs[n])
        return need

    def _build(self, d: Mapping[str, Any]) -> _Net:
        net = _Net()
        val: dict[int, int] = {}
        kind, inputs = self._kind, self._inputs
        for step in sorted(self._index[n] for n in self._needed(d)):
            rec = self._steps[step][0]
            n, ins, k = rec.id, inputs[rec.id], kind[rec.id]
            if k == "choose":
                val[n] = val[self._slots[n][d[rec.label]]]
                continue
            ty = _eval_type(rec.type, d)
            if k == "op":
                params, label = self._params.get(n, (None, None))
                if params is None:
                    params = {p: _hashable(evaluate(v, d)) for p, v in rec.params}
                    label = ("op", rec.op, tuple(sorted(params.items())))
                args = [val[i] for i in ins]
                if is_identity_op(rec.op, params, [net.types[a] for a in args], ty):
                    val[n] = args[0]
                else:
                    val[n] = self._op(net, rec, label, ty, args, params)
            elif k == "pick":
                val[n] = net.merge(rec.merge, ty, [val[ins[j]] for j in d[rec.label]])
            elif k == "merge":
                val[n] = net.merge(rec.mode, ty, [val[i] for i in ins])
            elif k == "zero":
                val[n] = net.zeros(ty)
            elif k == "input":
                val[n] = net.node(("input", rec.name), (), ty, free=True)
            elif k == "output":
                val[n] = net.node(("output", rec.name), (val[ins[0]],), ty, free=True)
            else:  # align
                val[n] = self._op(net, rec, ("align", rec.policy), ty, [val[ins[0]]], {})
        return net

    def _op(self, net: _Net, rec: Op | Align, label: tuple, ty: TensorType, args: list[int],
            params: Mapping[str, Any]) -> int:
        if args and all(a in net.zero for a in args):
            return net.zeros(ty)
        free = isinstance(rec, Op) and self._parameter_free(rec.op, params, net, args, ty)
        return net.node(label, tuple(args), ty, free=free, source=rec.id)

    def _parameter_free(self, op: str, params: Mapping[str, Any], net: _Net, args: list[int],
                        ty: TensorType) -> bool:
        in_channels = tuple(net.types[a].channels for a in args)
        key = (op, tuple(sorted(params.items())), in_channels, ty.channels)
        if key not in self._free:
            try:
                call = OpCall(op=op, params=tuple(params.items()), in_channels=in_channels,
                              in_hw=tuple((8, 8) for _ in args), out_channels=ty.channels,
                              out_hw=(8, 8))
                self._free[key] = self.table[op].params(call) == 0
            except (CostError, KeyError, TypeError, ValueError, ZeroDivisionError):
                self._free[key] = False
        return self._free[key]


def _kind(rec: Any) -> str:
    if isinstance(rec, OpChoice | RepeatChoice):
        return "choose"
    if isinstance(rec, InputChoice):
        return "pick"
    if isinstance(rec, Op):
        return "zero" if is_zero_op(rec.op) else "op"
    if isinstance(rec, Merge | Input | Output | Align | ValueChoice):
        return type(rec).__name__.lower()
    raise CanonicalError(
        f"%{rec.id} is a {type(rec).__name__}: canonical forms are defined for spaces and "
        "choice-free graphs, not relaxed ones"
    )


def _eval_type(ty: TensorType, d: Mapping[str, Any]) -> TensorType:
    if isinstance(ty.channels, int) and isinstance(ty.stride, int):
        return ty
    return attrs.evolve(ty, channels=evaluate(ty.channels, d), stride=evaluate(ty.stride, d))


def _live(net: _Net) -> list[int]:
    """Rule 5: the nodes some output depends on, in creation (topological) order."""
    seen = {n for n, lab in enumerate(net.labels) if lab[0] == "output"}
    stack = list(seen)
    while stack:
        for i in net.inputs[stack.pop()]:
            if i not in seen:
                seen.add(i)
                stack.append(i)
    return sorted(seen)


# ---- canonical order -------------------------------------------------------------------------
def _users(net: _Net, live: list[int]) -> dict[int, list[tuple[int, int]]]:
    """Node -> [(user, slot)], slot -1 for a sum (whose inputs are unordered)."""
    users: dict[int, list[tuple[int, int]]] = {n: [] for n in live}
    for n in live:
        commutative = net.labels[n][0] == "sum"
        for slot, i in enumerate(net.inputs[n]):
            users[i].append((n, -1 if commutative else slot))
    return users


def _canonical_order(net: _Net, live: list[int]) -> list[int]:
    """``live`` in an order that depends only on the graph's structure.

    Each node gets two structural hashes: ``up`` (its expression: label and inputs, a sum's
    unordered) and ``down`` (its uses: the users' hashes and slots). Nodes with equal hashes
    are interchangeable: twins (same inputs, same users) in any order; otherwise one of the
    first such class is individualised (marked) and the hashes recomputed, until none is left.
    """
    users = _users(net, live)
    level: dict[int, int] = {}
    for n in live:
        level[n] = 1 + max((level[i] for i in net.inputs[n]), default=-1)
    marks: dict[int, int] = {}
    while True:
        color = _colors(net, live, users, marks)
        classes: dict[tuple[int, int], list[int]] = {}
        for n in live:
            classes.setdefault(color[n], []).append(n)
        open_ = sorted(c for c, ns in classes.items() if len(ns) > 1 and not _twins(net, users, ns))
        if not open_:
            return sorted(live, key=lambda n: (level[n], color[n], n))
        marks[classes[open_[0]][0]] = len(marks)


def _colors(net: _Net, live: list[int], users, marks: Mapping[int, int]) -> dict[int, int]:
    # labels by rank of their text, so that the hashes (of ints only) are the same in every
    # process; equal colours for unequal nodes only cost an individualisation, never a collision
    names = sorted({net.texts[n] for n in live})
    index = {t: i for i, t in enumerate(names)}
    up: dict[int, int] = {}
    for n in live:
        ins = [up[i] for i in net.inputs[n]]
        if net.labels[n][0] == "sum":
            ins.sort()
        up[n] = hash((index[net.texts[n]], marks.get(n, -1), tuple(ins)))
    down: dict[int, int] = {}
    for n in reversed(live):
        down[n] = hash(tuple(sorted((up[u], down[u], s) for u, s in users[n])))
    return {n: (up[n], down[n]) for n in live}


def _twins(net: _Net, users: dict[int, list[tuple[int, int]]], members: list[int]) -> bool:
    """Members with the same inputs and the same users: swapping any two is an automorphism."""
    first = members[0]
    return all(
        net.inputs[m] == net.inputs[first] and sorted(users[m]) == sorted(users[first])
        for m in members[1:]
    )


__all__ = [
    "CanonicalError",
    "CanonicalForm",
    "Canonicaliser",
    "is_identity_op",
    "is_zero_op",
]
