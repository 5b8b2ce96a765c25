"""The kernel-size batching pass (ir/passes/batch.py): where it applies, and its invariants."""

import itertools

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nasc.ir.cost import DEFAULT, CostError, OpCall, cost
from nasc.ir.cost.batch import padded_macs
from nasc.ir.graph import Graph
from nasc.ir.nodes import Input, Mixture, Op, Output
from nasc.ir.passes import PassError, PassManager, batch_kernels, registered
from nasc.ir.passes.batch import BATCHABLE, kernel_groups, unbatched
from nasc.ir.printer import print_graph
from nasc.ir.resolve import resolve_graph
from nasc.ir.text import parse_graph
from nasc.ir.types import TensorType
from nasc.ir.verify import verify

import nasc
from nasc.build import method_pipeline

# ---- random one-mixture spaces over batchable and non-batchable candidates -----------------
#: (op, kernel, reads relu(x) or x, other parameters): distinct candidate bodies.
POOL = (
    [("sep_conv", k, True, "") for k in (3, 5, 7)]
    + [("dil_conv", k, True, f", dilation={d}") for k in (3, 5) for d in (1, 2)]
    + [("sep_conv", k, False, "") for k in (3, 5)]
    + [("mbconv", k, False, f", e={e}") for k in (3, 5, 7) for e in (1, 3)]
    + [("max_pool_3x3", None, False, "")]
)


def _body(spec) -> str:
    op, k, relu, rest = spec
    x = "relu(x)" if relu else "x"
    kk = f", k={k}" if k else ""
    return f"{op}({x}, C{kk}, stride=stride{rest})"


def _source(first, second, stride) -> str:
    blocks = [f"block b{i}(x, C: int, stride: int = 1) {{ return {_body(POOL[i])} }}"
              for i in sorted(set(first) | set(second))]
    names = lambda idx: ", ".join(f"b{i}" for i in idx)  # noqa: E731
    return "\n".join([
        "import darts_ops", "import mobile_ops", *blocks,
        "space t(C: int = 4) {",
        "    input x: image(C)",
        f"    let a = choose [{names(first)}] @\"a\" (x, C, stride={stride})",
        f"    let b = choose [{names(second)}] @\"b\" (x, C, stride={stride})",
        "    output y = sum([a, b])",
        "}",
    ])


@st.composite
def batch_cases(draw):
    idx = st.lists(st.integers(0, len(POOL) - 1), min_size=1, max_size=5, unique=True)
    first, second = draw(idx), draw(idx)
    stride = draw(st.sampled_from([1, 2]))
    space = nasc.parse(_source(first, second, stride), file="batch.nas")
    passes = [registered("relax", zero=draw(st.booleans()), edge_weights=None), registered("cse")]
    sampled = draw(st.booleans())
    if sampled:
        passes.append(registered("sample", ops=draw(st.sampled_from(["uniform", "binary_gate"]))))
    g = PassManager(passes).run(space.graph)
    return space, g, (first, second), sampled


def _expected_batched(choices, sampled) -> int:
    """How many candidates the pass must batch: per mixture, groups of >= 2 candidates with
    one op, one input and the same parameters but the kernel size (none when sampled)."""
    if sampled:
        return 0
    total = 0
    for idx in choices:
        groups: dict[tuple, list[int]] = {}
        for i in idx:
            op, k, relu, rest = POOL[i]
            if op in BATCHABLE:
                groups.setdefault((op, relu, rest), []).append(k)
        total += sum(len(ks) for ks in groups.values() if len(ks) >= 2)
    return total


def _slices(g):
    return [r for r in g.nodes_of(Op) if unbatched(g, r) is not None]


def _same_network(a: Graph, b: Graph) -> bool:
    def node(rec):
        return (type(rec).__name__, getattr(rec, "op", None), getattr(rec, "params", None),
                getattr(rec, "mode", None), str(rec.type), str(rec.guard))

    return nx.is_isomorphic(a.nx, b.nx, node_match=lambda x, y: node(x["rec"]) == node(y["rec"]),
                            edge_match=lambda x, y: sorted(e["slot"] for e in x.values())
                            == sorted(e["slot"] for e in y.values()))


@settings(max_examples=20, deadline=None)
@given(batch_cases())
def test_batched_graph_verifies_and_batches_exactly_the_same_input_kernel_size_groups(case):
    space, g, choices, sampled = case
    out = PassManager([registered("batch_kernels")], verify_each=True).run(g)
    slices = _slices(out)
    assert len(slices) == _expected_batched(choices, sampled)
    for s in slices:
        batch, single = unbatched(out, s)
        siblings = [r for r in _slices(out) if unbatched(out, r)[0] == batch]
        ops = [unbatched(out, r)[1] for r in siblings]
        # one op, one input, parameters equal but for k, k distinct
        assert len({o.op for o in ops}) == 1
        assert len({tuple(p for p in o.params if p[0] != "k") for o in ops}) == 1
        assert len({o.param("k") for o in ops}) == len(ops) >= 2
        assert out.users(s.id) == [u for u in out.users(s.id) if isinstance(out[u], Mixture)]
        assert out[batch].type.channels == len(ops) * s.type.channels


@settings(max_examples=15, deadline=None)
@given(batch_cases())
def test_batching_is_idempotent(case):
    _, g, _, _ = case
    once = batch_kernels(g)
    assert str(batch_kernels(once)) == str(once)


@settings(max_examples=15, deadline=None)
@given(batch_cases())
def test_every_architecture_resolves_to_the_same_network_with_or_without_batching(case):
    _, g, _, _ = case
    out = batch_kernels(g)
    mixtures = {m.label: m.options for m in g.nodes_of(Mixture)}
    for a, b in itertools.product(mixtures["a"], mixtures["b"]):
        decisions = {"a": a, "b": b}
        provenance: dict[int, int] = {}
        resolved = resolve_graph(out, decisions, provenance=provenance)
        assert _same_network(resolved, resolve_graph(g, decisions)), decisions
        assert not any(r.op.endswith("_batch") or r.op == "channel_slice"
                       for r in resolved.nodes_of(Op))
        for rec in resolved.nodes_of(Op):  # a candidate's provenance is its batch
            src = out[provenance[rec.id]]
            if src.op.endswith("_batch"):
                assert rec.param("k") in src.param("ks")


@settings(max_examples=10, deadline=None)
@given(batch_cases())
def test_printing_a_batched_graph_round_trips(case):
    g = batch_kernels(case[1])
    text = print_graph(g)
    back = verify(parse_graph(text))
    assert print_graph(back) == text
    assert [r.params for r in back.nodes_of(Op)] == [r.params for r in g.nodes_of(Op)]


# ---- hand-built graphs: the conditions one by one --------------------------------------------
def _mixture_graph(*, extra_user: bool = False, sampling=None) -> Graph:
    g = Graph()
    t = TensorType.image(8)
    x = g.add(Input, type=t, name="x")
    r = g.add(Op, [x], type=t, op="relu")
    cands = [
        g.add(Op, [r], type=t, op="sep_conv", params=(("C", 8), ("k", 5), ("stride", 1))),
        g.add(Op, [r], type=t, op="sep_conv", params=(("C", 8), ("k", 3), ("stride", 1))),
        g.add(Op, [r], type=t, op="dil_conv",
              params=(("C", 8), ("k", 3), ("stride", 1), ("dilation", 2))),
        g.add(Op, [r], type=t, op="dil_conv",
              params=(("C", 8), ("k", 5), ("stride", 1), ("dilation", 1))),  # other dilation
        g.add(Op, [x], type=t, op="sep_conv", params=(("C", 8), ("k", 7), ("stride", 1))),
    ]
    opts = ("s5", "s3", "d3", "d5", "s7")
    m = g.add(Mixture, cands, type=t, label="m", options=opts, computed=(True,) * 5,
              sampling=sampling)
    g.add(Output, [m], type=t, name="y")
    if extra_user:
        g.add(Output, [cands[1]], type=t, name="z")
    return verify(g)


def test_only_same_input_kernel_size_only_candidates_are_batched():
    g = _mixture_graph()
    out = verify(batch_kernels(g))
    batches = [r for r in out.nodes_of(Op) if r.op.endswith("_batch")]
    assert [(b.op, b.param("ks")) for b in batches] == [("sep_conv_batch", (3, 5))]
    assert batches[0].type == TensorType.image(16)
    m = out.nodes_of(Mixture)[0]
    # the mixture's slots keep their candidates: s5 is the second block, s3 the first
    slots = [out[i] for i in out.inputs(m.id)]
    assert [s.op for s in slots] == ["channel_slice", "channel_slice", "dil_conv", "dil_conv",
                                     "sep_conv"]
    assert [(s.param("start"), s.param("stop")) for s in slots[:2]] == [(8, 16), (0, 8)]
    assert [unbatched(out, s)[1].param("k") for s in slots[:2]] == [5, 3]


def test_a_candidate_read_elsewhere_or_a_sampled_mixture_is_left_alone():
    for g in (_mixture_graph(extra_user=True), _mixture_graph(sampling="uniform")):
        assert str(batch_kernels(g)) == str(g.renumbered())
        assert kernel_groups(g, g.nodes_of(Mixture)[0]) == []


def test_unknown_ops_are_refused():
    with pytest.raises(PassError, match="cannot batch op 'conv2d'"):
        batch_kernels(_mixture_graph(), ops=["conv2d"])


# ---- the stdlib spaces and nasc.compile ------------------------------------------------------
def test_darts_batches_both_pairs_of_every_edge_and_only_when_asked():
    space = nasc.load("darts", C=4, layers=3)
    g = PassManager(method_pipeline("darts", batch_kernels=True), verify_each=True).run(
        space.graph)
    edges = len(g.nodes_of(Mixture))
    batches = [r for r in g.nodes_of(Op) if r.op.endswith("_batch")]
    assert sorted({(b.op, b.param("ks")) for b in batches}) == [
        ("dil_conv_batch", (3, 5)), ("sep_conv_batch", (3, 5))]
    assert len(batches) == 2 * edges
    assert "batch_kernels" not in [p.name for p in method_pipeline("darts")]
    # SPOS samples one path per step: a batch would run every candidate
    spos = PassManager(method_pipeline("spos", batch_kernels=True)).run(space.graph)
    assert not [r for r in spos.nodes_of(Op) if r.op.endswith("_batch")]


def test_dcnas_mbconv_candidates_batch_per_expansion_ratio():
    space = nasc.load("dcnas", L=2, F=8, classes=3)
    g = PassManager(method_pipeline("dcnas", batch_kernels=True), verify_each=True).run(
        space.graph)
    batches = [r for r in g.nodes_of(Op) if r.op == "mbconv_batch"]
    assert batches and {(b.param("ks"), b.param("e")) for b in batches} == {
        ((3, 5, 7), 3), ((3, 5, 7), 6)}


# ---- cost model ------------------------------------------------------------------------------
@pytest.mark.parametrize("op,params", [
    ("sep_conv", (("C", 8), ("stride", 2))),
    ("dil_conv", (("C", 8), ("stride", 1), ("dilation", 2))),
    ("mbconv", (("C", 8), ("e", 3), ("stride", 1), ("se", True), ("act", "hswish"))),
])
@pytest.mark.parametrize("bn_affine", [False, True])
def test_a_batch_costs_the_sum_of_its_candidates(op, params, bn_affine):
    ks = (3, 5, 7) if op != "dil_conv" else (3, 5)
    s = params[1][1] if params[1][0] == "stride" else 1
    hw = (16 // s, 16 // s)

    def call(name, p, channels):
        return OpCall(op=name, params=p, in_channels=(8,), in_hw=((16, 16),),
                      out_channels=channels, out_hw=hw, bn_affine=bn_affine)

    batch = call(f"{op}_batch", (("ks", ks), *params), 8 * len(ks))
    parts = [call(op, (("k", k), *params), 8) for k in ks]
    for kind in ("params", "macs", "memory"):
        assert DEFAULT[batch.op].fn(kind)(batch) == sum(DEFAULT[op].fn(kind)(p) for p in parts)
    # what runs: each depthwise kernel padded to the largest size
    dw_per_tap = hw[0] * hw[1] * (8 * (3 if op == "mbconv" else 1))
    n_dw = 2 if op == "sep_conv" else 1
    pad = sum(n_dw * dw_per_tap * (max(ks) ** 2 - k * k) for k in ks)
    assert padded_macs(batch) == DEFAULT[batch.op].macs(batch) + pad
    with pytest.raises(CostError, match="not a kernel-size batch"):
        padded_macs(parts[0])


def test_costing_a_batched_graph_equals_costing_the_candidates():
    g = _mixture_graph()
    out = batch_kernels(g)
    # a choice-free view: each graph with its mixture replaced by a concat of its inputs
    def flat(h):
        h = h.copy()
        m = h.nodes_of(Mixture)[0]
        ins = h.inputs(m.id)
        for o in h.nodes_of(Output):
            h.remove(o.id)
        for i in ins:
            h.add(Output, [i], type=h[i].type, name=f"o{i}")
        h.remove(m.id)
        return h

    views = DEFAULT.with_op("channel_slice", params=lambda c: 0, macs=lambda c: 0,
                            memory=lambda c: 0)  # a slice is a view of the batch's output
    for kind in ("params", "macs", "memory"):
        assert cost(flat(out), kind, table=views) == cost(flat(g), kind) > 0
