"""Cost models on the IR: parameters, multiply-accumulates and activation memory.

Three costs of a network, read off the IR alone (nothing here imports torch):

* ``"params"`` — trainable parameters, exactly as the PyTorch reference modules count them
  (``sum(p.numel() for p in m.parameters())``; BN running statistics are buffers, not counted).
  Every ``Op`` node is its own module: two nodes that share a label share a *decision*, never
  weights.
* ``"macs"`` — multiply-accumulates of the convolutions and linear layers for one image of
  ``input_size`` (the "multi-adds" of the papers; BN, activations, pooling and additions count 0).
* ``"memory"`` — activation memory: the output elements of every node of the network (inputs,
  ops, merges, aligns; an output node is its input and is not counted again). Elements, not
  bytes, unless ``bytes_per_element`` says otherwise.

A tensor with stride ``s`` (relative to the network input, see :class:`TensorType`) is
``ceil(H / s) x ceil(W / s)``, the size a "same"-padded PyTorch conv gives. Vectors are 1 x 1.

:func:`cost` answers for a choice-free graph. :func:`expected_cost` answers for a space under a
distribution over its decisions. It is the expected latency of DenseNAS (Fang et al.) eq. 5–7
with any per-op cost in place of the latency table: eq. 5, ``latency_l = sum_o w_o latency_o``
for a layer's candidates; eq. 6, ``latency_l = p_ji sum_o w_o latency_o`` for a head layer fed
by block ``j`` with probability ``p_ji``; eq. 7, ``latency = sum_l latency_l``. In general,
``E[cost] = sum_n P(node n is in the network) * cost(n)``, where ``P`` comes from the node's
guard and its uses (see :func:`expected_cost`). :func:`unit_cost` is HR-NAS (Ding et al.)
eq. 6: ``Delta = O(n') - O(n' - 1)``, the cost of one more channel or token of a value choice.

>>> import nasc
>>> g = nasc.parse('''
... import nn
... space tiny() {
...     input x: image(3)
...     output y = linear(global_avg_pool(conv2d(x, 8, k=3)), 10)
... }''').graph
>>> cost(g, "params")          # conv 3*8*3*3 + linear 8*10 + 10
306
>>> cost(g, "macs", input_size=(4, 4))   # 16 * 8 * 27 + 80
3536
"""

from __future__ import annotations

import difflib
import functools
import itertools
import operator
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import Any

import attrs
from nasc.ir.graph import Graph
from nasc.ir.guards import Atom, Guard
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

#: The costs every table entry answers; a table may add others (a latency look-up table).
KINDS = ("params", "macs", "memory")
#: Most joint assignments of value choices one node's cost may depend on.
MAX_ASSIGNMENTS = 4096


class CostError(ValueError):
    """A cost cannot be computed: an op without a cost model, a choice left in the graph, ..."""


# ---- what a cost function sees -------------------------------------------------------------
@attrs.frozen(kw_only=True)
class OpCall:
    """One op call with concrete parameters and shapes, as a cost function sees it.

    ``in_hw``/``out_hw`` are spatial sizes (``(1, 1)`` for vectors). ``bn_affine`` says whether
    the BN layers inside composite ops (sep_conv, relu_conv_bn, mbconv, ...) have affine
    parameters.

    >>> call = OpCall(op="conv2d", params=(("C", 8), ("k", 3)), in_channels=(4,),
    ...               in_hw=((32, 32),), out_channels=8, out_hw=(32, 32))
    >>> call.p("k"), call.c_in, call.out_elements
    (3, 4, 8192)
    """

    op: str
    params: tuple[tuple[str, Any], ...] = ()
    in_channels: tuple[int, ...] = ()
    in_hw: tuple[tuple[int, int], ...] = ()
    out_channels: int = 0
    out_hw: tuple[int, int] = (1, 1)
    bn_affine: bool = True

    def p(self, name: str, default: Any = None) -> Any:
        """The parameter ``name`` (``default`` when the call does not set it)."""
        return next((v for k, v in self.params if k == name), default)

    @property
    def c_in(self) -> int:
        """Channels of the first input (0 for an op without inputs)."""
        return self.in_channels[0] if self.in_channels else 0

    @property
    def hw_in(self) -> tuple[int, int]:
        return self.in_hw[0] if self.in_hw else self.out_hw

    @property
    def out_elements(self) -> int:
        return self.out_channels * self.out_hw[0] * self.out_hw[1]


CostFn = Callable[[OpCall], int]


def output_elements(call: OpCall) -> int:
    """The default memory cost of an op: the elements of its output tensor."""
    return call.out_elements


# ---- layers: the reference modules, counted -----------------------------------------------
def _pair(k: int | tuple[int, int]) -> tuple[int, int]:
    return (k, k) if isinstance(k, int) else (int(k[0]), int(k[1]))


@attrs.frozen
class Conv:
    """``nn.Conv2d(c_in, c_out, k, groups=groups, bias=bias)`` producing ``hw`` pixels."""

    c_in: int
    c_out: int
    k: int | tuple[int, int]
    hw: tuple[int, int]
    groups: int = 1
    bias: bool = False

    @property
    def params(self) -> int:
        kh, kw = _pair(self.k)
        return self.c_out * (self.c_in // self.groups) * kh * kw + (self.c_out if self.bias else 0)

    @property
    def macs(self) -> int:
        kh, kw = _pair(self.k)
        return self.hw[0] * self.hw[1] * self.c_out * (self.c_in // self.groups) * kh * kw


@attrs.frozen
class BN:
    """``nn.BatchNorm2d(c, affine=affine)``: weight and bias when affine; no MACs counted."""

    c: int
    affine: bool = True

    @property
    def params(self) -> int:
        return 2 * self.c if self.affine else 0

    macs = 0


@attrs.frozen
class Linear:
    """``nn.Linear(c_in, c_out, bias=bias)``."""

    c_in: int
    c_out: int
    bias: bool = True

    @property
    def params(self) -> int:
        return self.c_in * self.c_out + (self.c_out if self.bias else 0)

    @property
    def macs(self) -> int:
        return self.c_in * self.c_out


Layer = Conv | BN | Linear


# ---- table ---------------------------------------------------------------------------------
@attrs.frozen(kw_only=True)
class OpCost:
    """The cost functions of one op; ``other`` holds further kinds, e.g. ``("latency", lut)``.

    >>> c = OpCost.from_layers(lambda call: [Conv(call.c_in, call.p("C"), 1, call.out_hw)])
    >>> c.params(OpCall(op="pw", params=(("C", 4),), in_channels=(2,)))
    8
    """

    params: CostFn
    macs: CostFn
    memory: CostFn = output_elements
    other: tuple[tuple[str, CostFn], ...] = ()

    def fn(self, kind: str) -> CostFn | None:
        if kind in KINDS:
            return getattr(self, kind)
        return dict(self.other).get(kind)

    @staticmethod
    def from_layers(layers: Callable[[OpCall], Sequence[Layer]]) -> OpCost:
        """Params and MACs summed over the reference layers ``layers(call)`` builds."""
        return OpCost(
            params=lambda call: sum(layer.params for layer in layers(call)),
            macs=lambda call: sum(layer.macs for layer in layers(call)),
        )


@attrs.frozen(eq=False)
class CostTable:
    """Op name → :class:`OpCost`. Immutable: extending gives a new table.

    >>> mine = DEFAULT.with_op("my_op", params=lambda c: 4 * c.c_in, macs=lambda c: 0)
    >>> "my_op" in mine, "my_op" in DEFAULT
    (True, False)
    """

    ops: Mapping[str, OpCost] = attrs.field(converter=lambda m: MappingProxyType(dict(m)))

    def __getitem__(self, name: str) -> OpCost:
        try:
            return self.ops[name]
        except KeyError:
            close = difflib.get_close_matches(name, sorted(self.ops), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise CostError(
                f"no cost model for op {name!r}{hint}; register one with "
                f"table.with_op({name!r}, params=..., macs=...) and pass table="
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self.ops

    def names(self) -> list[str]:
        return sorted(self.ops)

    def with_op(
        self,
        name: str,
        cost: OpCost | None = None,
        *,
        params: CostFn | None = None,
        macs: CostFn | None = None,
        memory: CostFn = output_elements,
        **other: CostFn,
    ) -> CostTable:
        """This table plus ``name``: an :class:`OpCost`, or its functions by keyword."""
        if cost is None:
            if params is None or macs is None:
                raise CostError(f"op {name!r}: give an OpCost, or both params= and macs=")
            cost = OpCost(params=params, macs=macs, memory=memory, other=tuple(other.items()))
        return self.extended({name: cost})

    def extended(self, more: Mapping[str, OpCost] | CostTable) -> CostTable:
        """This table with the entries of ``more`` added (replacing same-named ones)."""
        extra = more.ops if isinstance(more, CostTable) else more
        return CostTable({**self.ops, **extra})


# ---- the stdlib ops (stdlib/nn.nas, darts_ops.nas, nas_bench_201.nas, mobile_ops.nas) -------
def _factorized_reduce(c: OpCall) -> list[Layer]:
    """DARTS FactorizedReduce: ReLU, two 1x1 stride-2 convs to C/2 each, concat, BN(C)."""
    half = c.p("C") // 2
    return [
        Conv(c.c_in, half, 1, c.out_hw),
        Conv(c.c_in, half, 1, c.out_hw),
        BN(c.p("C"), c.bn_affine),
    ]


def _skip_connect(c: OpCall) -> list[Layer]:
    """DARTS: Identity at stride 1, FactorizedReduce at stride 2."""
    return [] if c.p("stride", 1) == 1 else _factorized_reduce(c)


def _sep_conv(k: int) -> Callable[[OpCall], list[Layer]]:
    """DARTS SepConv: [ReLU, dw kxk stride, 1x1 C_in->C_in, BN(C_in)] then the same at stride 1
    ending in 1x1 C_in->C, BN(C)."""

    def layers(c: OpCall) -> list[Layer]:
        ci, co, hw = c.c_in, c.p("C"), c.out_hw
        return [
            Conv(ci, ci, k, hw, groups=ci), Conv(ci, ci, 1, hw), BN(ci, c.bn_affine),
            Conv(ci, ci, k, hw, groups=ci), Conv(ci, co, 1, hw), BN(co, c.bn_affine),
        ]  # fmt: skip

    return layers


def _dil_conv(k: int) -> Callable[[OpCall], list[Layer]]:
    """DARTS DilConv: ReLU, dw kxk dilation 2 with the stride, 1x1 C_in->C, BN(C)."""

    def layers(c: OpCall) -> list[Layer]:
        ci, co, hw = c.c_in, c.p("C"), c.out_hw
        return [Conv(ci, ci, k, hw, groups=ci), Conv(ci, co, 1, hw), BN(co, c.bn_affine)]

    return layers


def _conv_7x1_1x7(c: OpCall) -> list[Layer]:
    """DARTS conv_7x1_1x7: ReLU, conv (1,7) stride (1,s) C_in->C_in, conv (7,1) stride (s,1)
    C_in->C, BN(C)."""
    ci, co, (ho, wo) = c.c_in, c.p("C"), c.out_hw
    mid = (c.hw_in[0], wo)
    return [Conv(ci, ci, (1, 7), mid), Conv(ci, co, (7, 1), (ho, wo)), BN(co, c.bn_affine)]


def _conv_bn(k: int | None = None) -> Callable[[OpCall], list[Layer]]:
    """conv k x k C_in->C without bias, then BN(C): relu_conv_bn, nor_conv_kxk, conv_bn_act."""

    def layers(c: OpCall) -> list[Layer]:
        kk = c.p("k", 1) if k is None else k
        return [Conv(c.c_in, c.p("C"), kk, c.out_hw), BN(c.p("C"), c.bn_affine)]

    return layers


def _auxiliary_head_cifar(c: OpCall) -> list[Layer]:
    """DARTS AuxiliaryHeadCIFAR: ReLU, AvgPool(5, stride 3), conv 1x1 C->128, BN(128), ReLU,
    conv 2x2 128->768, BN(768), ReLU, Linear(768, classes) (8x8 input -> 2x2 -> 1x1)."""
    (h, w), aff = c.hw_in, c.bn_affine
    pooled = (max(0, (h - 5) // 3 + 1), max(0, (w - 5) // 3 + 1))
    out = (max(0, pooled[0] - 1), max(0, pooled[1] - 1))
    return [
        Conv(c.c_in, 128, 1, pooled), BN(128, aff),
        Conv(128, 768, 2, out), BN(768, aff), Linear(768, c.p("classes")),
    ]  # fmt: skip


def se_channels(hidden: int) -> int:
    """Squeeze width of the mbconv SE block: ``max(1, hidden // 4)`` (an assumption: SE with
    reduction 4 on the expanded width, both 1x1 convs with bias, as in MnasNet/ProxylessNAS)."""
    return max(1, hidden // 4)


def _mbconv(c: OpCall) -> list[Layer]:
    """MobileNetV2 inverted residual (Sandler et al.): [1x1 C_in->e*C_in, BN, act] when e != 1;
    dw kxk with the stride, BN, act; optional SE; 1x1 e*C_in->C, BN. The residual adds nothing."""
    ci, co, k, e, aff = c.c_in, c.p("C"), c.p("k", 3), c.p("e", 6), c.bn_affine
    hidden = e * ci
    out: list[Layer] = []
    if e != 1:
        out += [Conv(ci, hidden, 1, c.hw_in), BN(hidden, aff)]
    out += [Conv(hidden, hidden, k, c.out_hw, groups=hidden), BN(hidden, aff)]
    if c.p("se", False):
        r = se_channels(hidden)
        out += [Conv(hidden, r, 1, (1, 1), bias=True), Conv(r, hidden, 1, (1, 1), bias=True)]
    return out + [Conv(hidden, co, 1, c.out_hw), BN(co, aff)]


def _conv2d(c: OpCall) -> list[Layer]:
    return [Conv(c.c_in, c.p("C"), c.p("k", 3), c.out_hw, c.p("groups", 1), c.p("bias", False))]


def _batch_norm(c: OpCall) -> list[Layer]:
    """The ``batch_norm`` op follows its own ``affine`` parameter, not ``bn_affine``."""
    return [BN(c.c_in, bool(c.p("affine", True)))]


def _linear(c: OpCall) -> list[Layer]:
    return [Linear(c.c_in, c.p("out"), bool(c.p("bias", True)))]


_ZERO = ("relu", "relu6", "hswish", "sigmoid", "dropout", "max_pool", "avg_pool",
         "global_avg_pool", "upsample", "none", "max_pool_3x3", "avg_pool_3x3")  # fmt: skip
_LAYERS: dict[str, Callable[[OpCall], Sequence[Layer]]] = {
    **{name: (lambda c: []) for name in _ZERO},
    "conv2d": _conv2d,
    "batch_norm": _batch_norm,
    "linear": _linear,
    "skip_connect": _skip_connect,
    "factorized_reduce": _factorized_reduce,
    "relu_conv_bn": _conv_bn(),
    **{f"sep_conv_{k}x{k}": _sep_conv(k) for k in (3, 5, 7)},
    **{f"dil_conv_{k}x{k}": _dil_conv(k) for k in (3, 5)},
    "conv_7x1_1x7": _conv_7x1_1x7,
    "auxiliary_head_cifar": _auxiliary_head_cifar,
    "nor_conv_1x1": _conv_bn(1),
    "nor_conv_3x3": _conv_bn(3),
    "mbconv": _mbconv,
    "conv_bn_act": _conv_bn(),
}

#: The cost models of every stdlib op; extend it with :meth:`CostTable.with_op`.
DEFAULT = CostTable({name: OpCost.from_layers(f) for name, f in _LAYERS.items()})


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


def _concrete(ty: TensorType, env: Mapping[str, Any]) -> tuple[int, int, Layout]:
    return evaluate(ty.channels, env), evaluate(ty.stride, env), ty.layout


def _spatial(stride: int, layout: Layout, hw: tuple[int, int]) -> tuple[int, int]:
    if layout is Layout.VECTOR:
        return (1, 1)
    return (-(-hw[0] // stride), -(-hw[1] // stride))


def _elements(ty: TensorType, env: Mapping[str, Any], hw: tuple[int, int]) -> int:
    c, s, layout = _concrete(ty, env)
    h, w = _spatial(s, layout, hw)
    return c * h * w


def _op_call(g: Graph, rec: Node, name: str, params: tuple, env, setup: _Setup) -> OpCall:
    ins = [_concrete(g[i].type, env) for i in g.inputs(rec.id)]
    c_out, s_out, layout = _concrete(rec.type, env)
    return OpCall(
        op=name,
        params=tuple((k, evaluate(v, env)) for k, v in params),
        in_channels=tuple(c for c, _, _ in ins),
        in_hw=tuple(_spatial(s, lay, setup.hw) for _, s, lay in ins),
        out_channels=c_out,
        out_hw=_spatial(s_out, layout, setup.hw),
        bn_affine=setup.bn_affine,
    )


def _table_cost(g: Graph, rec: Node, env: Mapping[str, Any], setup: _Setup) -> int:
    if isinstance(rec, Op):
        name, params = rec.op, rec.params
    else:
        name, params = "align", (("policy", rec.policy),)
    fn = setup.table[name].fn(setup.kind)
    if fn is None:
        raise CostError(f"op {name!r} has no {setup.kind!r} cost in this table")
    value = fn(_op_call(g, rec, name, params, env, setup))
    return value * setup.bytes_per_element if setup.kind == "memory" else value


def _node_cost(g: Graph, rec: Node, env: Mapping[str, Any], setup: _Setup) -> int:
    """The cost of one node once the value choices it mentions are fixed by ``env``.

    An ``InputChoice`` is costed as the merge it resolves to (only when it picks two or more).
    """
    try:
        if isinstance(rec, Op | Align):
            return _table_cost(g, rec, env, setup)
        if isinstance(rec, Input | Merge | InputChoice) and setup.kind == "memory":
            return _elements(rec.type, env, setup.hw) * setup.bytes_per_element
        return 0
    except KeyError as e:
        raise CostError(
            f"node %{rec.id} depends on value choice {e.args[0]!r}; use expected_cost"
        ) from None


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


# ---- conditions: DNF over decisions, and their probability ---------------------------------
# A variable is (label, None) — which option an op/value/repeat label takes, by index — or
# (label, j) — whether input j of an input choice is picked (0/1). A term maps variables to the
# set of values it allows; a condition is a set of terms (their disjunction).
Var = tuple[str, Any]
Term = frozenset[tuple[Var, frozenset[int]]]
Cond = frozenset[Term]
TRUE: Cond = frozenset({frozenset()})
FALSE: Cond = frozenset()
_PICKED = frozenset({1})


def _var_key(v: Var) -> tuple[str, int]:
    return (v[0], -1 if v[1] is None else v[1])


class _Conditions:
    """Conditions over independent decisions and their probabilities under ``probs``.

    Labels are independent; the picks of one input choice are independent Bernoulli events with
    the given inclusion probabilities. ``prob`` uses only ``+``, ``-`` and ``*`` on probabilities.
    """

    def __init__(self, options: Mapping[str, tuple[Any, ...]], probs: Mapping[str, Any]):
        self.options = options
        self.probs = probs
        self._memo: dict[Cond, Any] = {}

    def size(self, v: Var) -> int:
        return 2 if v[1] is not None else len(self.options[v[0]])

    # -- building --------------------------------------------------------------------------
    def atom(self, a: Atom) -> Cond:
        if a.test == "has":
            return self.term({(a.label, a.value): _PICKED})
        opts = self.options[a.label]
        return self.term({(a.label, None): frozenset(i for i, o in enumerate(opts) if a.holds(o))})

    def term(self, allowed: Mapping[Var, frozenset[int]]) -> Cond:
        return self.normal([frozenset(allowed.items())])

    def of_guard(self, guard: Guard) -> Cond:
        out = FALSE
        for t in guard.terms:
            c = TRUE
            for a in sorted(t):
                c = self.and_(c, self.atom(a))
            out = self.or_(out, c)
        return out

    def and_(self, a: Cond, b: Cond) -> Cond:
        if a == TRUE or not b:
            return b
        if b == TRUE or not a:
            return a
        return self.normal(t for x in a for y in b if (t := self._conj(x, y)) is not None)

    def or_(self, a: Cond, b: Cond) -> Cond:
        return self.normal(a | b)

    def _conj(self, t: Term, u: Term) -> Term | None:
        d = dict(t)
        for v, s in u:
            s = d[v] & s if v in d else s
            if not s:
                return None
            d[v] = s
        return frozenset(d.items())

    # -- simplifying -----------------------------------------------------------------------
    def normal(self, terms: Iterable[Term]) -> Cond:
        """Drop unconstrained variables and empty terms, absorb, merge terms differing in one
        variable (``x in A | x in B == x in A|B``) until nothing changes."""
        ts: set[Term] = set()
        for t in terms:
            if any(not s for _, s in t):
                continue
            ts.add(frozenset((v, s) for v, s in t if len(s) < self.size(v)))
        while True:
            ts = _absorb(ts)
            merged = self._merge_once(ts)
            if merged is None:
                return frozenset(ts)
            ts = merged

    def _merge_once(self, ts: set[Term]) -> set[Term] | None:
        seen: dict[tuple[Var, Term], Term] = {}
        for t in sorted(ts, key=_term_key):
            for v, s in t:
                rest = t - {(v, s)}
                other = seen.setdefault((v, rest), t)
                if other is not t:
                    union = s | dict(other)[v]
                    new = rest if len(union) == self.size(v) else rest | {(v, union)}
                    return (ts - {t, other}) | {new}
        return None

    # -- probability -----------------------------------------------------------------------
    def mass(self, v: Var, values: frozenset[int]) -> Any:
        label, j = v
        if j is None:
            return sum(self.probs[label][i] for i in sorted(values))
        p = self.probs[label][j]
        return p if values == _PICKED else 1 - p

    def prob(self, c: Cond) -> Any:
        """P(c) by splitting into independent parts and branching on the commonest variable."""
        if c not in self._memo:
            self._memo[c] = self._prob(c)
        return self._memo[c]

    def _prob(self, c: Cond) -> Any:
        if not c:
            return 0
        if TRUE <= c:
            return 1
        if len(c) == 1:
            (t,) = c
            return functools.reduce(operator.mul, (self.mass(v, s) for v, s in sorted(t)), 1)
        parts = _independent_parts(c)
        if len(parts) > 1:
            miss = functools.reduce(operator.mul, (1 - self.prob(p) for p in parts), 1)
            return 1 - miss
        counts: dict[Var, int] = {}
        for t in c:
            for v, _ in t:
                counts[v] = counts.get(v, 0) + 1
        var = max(sorted(counts, key=_var_key), key=lambda v: counts[v])
        branches: dict[Cond, set[int]] = {}
        for value in range(self.size(var)):
            branches.setdefault(self._restrict(c, var, value), set()).add(value)
        total: Any = 0
        for rest, values in branches.items():
            if rest:
                total = total + self.mass(var, frozenset(values)) * self.prob(rest)
        return total

    def _restrict(self, c: Cond, var: Var, value: int) -> Cond:
        out = []
        for t in c:
            d = dict(t)
            if var not in d:
                out.append(t)
            elif value in d[var]:
                out.append(t - {(var, d[var])})
        return self.normal(out)


def _term_key(t: Term) -> list:
    return sorted((_var_key(v), sorted(s)) for v, s in t)


def _absorb(ts: set[Term]) -> set[Term]:
    """Drop every term that implies another (``a | a&b == a``)."""
    kept: list[tuple[Term, dict]] = []
    for t in sorted(ts, key=lambda t: (len(t), _term_key(t))):
        dt = dict(t)
        if not any(all(v in dt and dt[v] <= s for v, s in k) for k, _ in kept):
            kept.append((t, dt))
    return {t for t, _ in kept}


def _independent_parts(c: Cond) -> list[Cond]:
    """Groups of terms that share no variable (their events are independent)."""
    groups: list[tuple[set[Var], set[Term]]] = []
    for t in sorted(c, key=_term_key):
        vs, ts = {v for v, _ in t}, {t}
        for g in [g for g in groups if g[0] & vs]:
            groups.remove(g)
            vs |= g[0]
            ts |= g[1]
        groups.append((vs, ts))
    return [frozenset(ts) for _, ts in groups]


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


def _edge(cs: _Conditions, user: Node, slot: int) -> Cond:
    """When the edge into ``slot`` of ``user`` is taken, given that ``user`` is."""
    if isinstance(user, OpChoice | RepeatChoice):
        return cs.term({(user.label, None): frozenset({slot})})
    if isinstance(user, InputChoice):
        return cs.term({(user.label, slot): _PICKED})
    return TRUE


def _liveness(g: Graph, cs: _Conditions) -> dict[int, Cond]:
    """Node id → when the node is in the resolved network: its guard holds and an output uses
    it through taken edges (``live(n) = guard(n) & OR_(u, slot) edge(u, slot) & live(u)``)."""
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
    return live


def _merges(cs: _Conditions, rec: InputChoice) -> Cond:
    """When an input choice resolves to a ``Merge`` node: it picks at least two inputs."""
    if rec.k_min >= 2:
        return TRUE
    if rec.k_max < 2:
        return FALSE
    pairs = itertools.combinations(range(rec.n), 2)
    return cs.normal(
        frozenset({((rec.label, i), _PICKED), ((rec.label, j), _PICKED)}) for i, j in pairs
    )


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
    inclusion probability of each input (picks independent). Every label needs one, active or
    not (:func:`one_hot` fills inactive ones).

    ``E = sum_n P(n in network) * cost(n)`` (DenseNAS eq. 5–7), over op nodes, merges and, for
    memory, inputs and input choices that merge two or more picks. A node is in the network
    when its guard holds and an output uses it through taken edges (what ``Space.resolve``
    keeps). Guards are DNFs over atoms: ``eq`` contributes ``probs[label][index]``, ``has`` the
    inclusion probability, ``ge`` the mass of depths at least the value; ``P`` of a DNF is
    exact under independence (Shannon expansion on shared variables). A node whose cost depends
    on value choices is summed over their values: ``sum_v P(n in network, V = v) * cost_v(n)``.

    Only ``+``, ``-`` and ``*`` touch the probabilities, so torch tensors give a differentiable
    result; with 0/1 integers (:func:`one_hot`) the result is the exact cost of that
    architecture.
    """
    g = _graph_of(graph)
    setup = _setup(kind, input_size, table, bn_affine, bytes_per_element)
    options = label_options(g)
    _check_probs(options, probs)
    return _expected(g, setup, options, probs)


def _expected(g: Graph, setup: _Setup, options, probs) -> Any:
    cs = _Conditions(options, probs)
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
            hit = next(
                i
                for i, o in enumerate(opts)
                if o == d and isinstance(o, bool) == isinstance(d, bool)
            )
            out[rec.label] = tuple(int(i == hit) for i in range(len(opts)))
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


__all__ = [
    "BN",
    "DEFAULT",
    "KINDS",
    "Conv",
    "CostError",
    "CostTable",
    "Linear",
    "OpCall",
    "OpCost",
    "cost",
    "expected_cost",
    "label_options",
    "node_costs",
    "one_hot",
    "output_elements",
    "se_channels",
    "unit_cost",
]
