"""Properties of the relaxation pass and of derivation, over random spaces and the stdlib."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nasc.ir.derive import derive
from nasc.ir.nodes import Align, InputChoice, InputMixture, Mixture, Op, OpChoice, ValueChoice
from nasc.ir.passes import (
    Pass,
    PassError,
    PassManager,
    cse,
    insert_alignment,
    registered,
    relax,
)
from nasc.ir.passes.relax import ZERO
from nasc.ir.printer import format_node
from nasc.ir.resolve import resolve_graph
from nasc.ir.verify import verify

import nasc
from nasc.testing import architectures, pipelines, spaces

HIGH, LOW = 12.0, 0.0


def _zero_form_applies(g) -> bool:
    return all(isinstance(g[i], OpChoice) for r in g.nodes_of(InputChoice) for i in g.inputs(r.id))


def one_hot_weights(relaxed, arch) -> dict[str, list[float]]:
    """Raw parameters that encode ``arch``: the chosen option high, the rest low; an edge op
    that feeds an unpicked input is high on ``none`` so the edge is weak."""
    weights: dict[str, list[float]] = {}
    for r in relaxed.nodes_of(Mixture):
        if r.label in arch:
            weights[r.label] = [HIGH if o == arch[r.label] else LOW for o in r.options]
        else:
            weights[r.label] = [HIGH if o == ZERO else LOW for o in r.options]
    for r in relaxed.nodes_of(InputMixture):
        picked = arch.get(r.label, ())
        weights[r.label] = [HIGH if j in picked else LOW for j in range(r.n)]
    for r in relaxed.nodes_of(ValueChoice):
        weights[r.label] = [HIGH if v == arch.get(r.label) else LOW for v in r.values]
    return weights


@settings(max_examples=100)
@given(spaces(), st.sampled_from(["softmax", "gumbel"]))
def test_relax_output_verifies(space, weighting):
    edge = None if _zero_form_applies(space.graph) else "inputs"
    verify(relax(space.graph, weighting=weighting, edge_weights=edge))


@settings(max_examples=100)
@given(st.data())
def test_relaxing_then_deriving_with_one_hot_weights_returns_the_architecture(data):
    space = data.draw(spaces())
    arch = data.draw(architectures(space))
    # (with "outgoing" normalisation a source with one edge has weight 1 whatever beta is, so
    # only a whole-path decoder such as Viterbi can recover a pick; see the DenseNAS tests)
    edge = None if _zero_form_applies(space.graph) else "inputs"
    relaxed = relax(space.graph, edge_weights=edge)
    assert space.canonical(derive(relaxed, one_hot_weights(relaxed, arch))) == arch


@settings(max_examples=50)
@given(spaces())
def test_relax_is_pure(space):
    before = str(space.graph)
    relax(space.graph, edge_weights="inputs")
    assert str(space.graph) == before


def test_darts_relaxation_adds_the_zero_op_to_edges_and_keeps_one_parameter_per_label():
    space = nasc.load("darts")
    relaxed = PassManager([registered("relax")], verify_each=True).run(space.graph)
    mixtures = relaxed.nodes_of(Mixture)
    assert len({m.label for m in mixtures}) == 28
    assert all(m.options[-1] == "none" and m.computed[-1] is False for m in mixtures)
    assert len(mixtures) == 8 * 14 and len(relaxed.nodes_of(InputMixture)) == 8 * 4


def test_darts_derivation_from_weights_keeps_top_two_inputs():
    space = nasc.load("darts", layers=3)
    relaxed = relax(space.graph)
    arch = space.sample(7)
    derived = space.canonical(derive(relaxed, one_hot_weights(relaxed, arch)))
    assert derived == arch


def test_nas_bench_201_existing_none_is_not_computed():
    relaxed = relax(nasc.load("nas_bench_201", N=1).graph)
    m = relaxed.nodes_of(Mixture)[0]
    assert m.options[0] == "none" and m.computed[0] is False
    assert len(relaxed.inputs(m.id)) == 4


@settings(max_examples=100)
@given(spaces())
def test_alignment_is_idempotent_and_leaves_every_edge_type_correct(space):
    once = insert_alignment(space.graph)
    verify(once)
    assert not once.nodes_of(Align)
    assert str(insert_alignment(once)) == str(once)


def test_alignment_says_where_no_aligner_reaches_the_type():
    space = nasc.parse(
        "import nn\nspace s() {\n    input x: image(3)\n    let y = conv2d(x, 8, stride=2)\n"
        '    output sum([x, align(y, channels=3, stride=1, policy="darts")])\n}\n',
        file="up.nas",
    )
    with pytest.raises(PassError, match=r"up.nas:5:20: policy 'darts' cannot align"):
        insert_alignment(space.graph)


def test_dcnas_alignment_layer_shapes():
    space = nasc.parse(
        "import nn\nspace s() {\n    input x: image(3)\n    let a = conv2d(x, 8, stride=4)\n"
        "    let b = conv2d(a, 16, stride=4)\n"
        "    output sum([align(a, channels=16, stride=16), b, align(align(b, channels=8, "
        "stride=4), channels=16, stride=16)])\n}\n",
        file="dc.nas",
    )
    g = insert_alignment(space.graph)
    ops = [
        (r.op, r.param("stride") if r.op == "conv_bn_act" else r.param("factor"))
        for r in g.nodes_of(Op)
        if r.op in ("conv_bn_act", "upsample")
    ]
    # down 4x: two strided 3x3 convs; up 4x: bilinear upsample then a 1x1 conv; down again
    assert ops == [
        ("conv_bn_act", 2),
        ("conv_bn_act", 2),
        ("upsample", 4),
        ("conv_bn_act", 1),
        ("conv_bn_act", 2),
        ("conv_bn_act", 2),
    ]


@settings(max_examples=60)
@given(st.data())
def test_cse_preserves_every_architecture_and_is_idempotent(data):
    space = data.draw(spaces())
    pure = ["fa"]  # treat fa as weight-free to exercise merging in random spaces
    merged = cse(space.graph, pure_ops=pure)
    verify(merged)
    assert str(cse(merged, pure_ops=pure)) == str(merged)
    arch = data.draw(architectures(space))
    # resolving commutes with CSE: the chosen network is the same computation
    assert structure(resolve_graph(merged, arch)) == structure(
        cse(resolve_graph(space.graph, arch), pure_ops=pure)
    )


def structure(g) -> list[str]:
    """What each output computes, independent of node numbering."""
    memo: dict[int, str] = {}

    def sig(n: int) -> str:
        if n not in memo:
            rec = g[n]
            head = format_node(g, rec, locations=False).split(" = ", 1)[1].split("(")[0]
            args = ",".join(sig(i) for i in g.inputs(n))
            memo[n] = f"{head}:{rec.type}:{getattr(rec, 'params', '')}({args})"
        return memo[n]

    return sorted(sig(r.id) for r in g if type(r).__name__ == "Output")


def test_cse_computes_the_darts_relu_once_per_state():
    g = nasc.load("darts", layers=3).graph
    relus = lambda g: [r for r in g.nodes_of(Op) if r.op == "relu"]  # noqa: E731
    assert len(relus(g)) == 3 * 14 * 4
    merged = cse(g)
    verify(merged)
    # one ReLU per state that edges read: the two cell inputs and three of the four nodes
    assert len(relus(merged)) == 3 * 5
    guard = str(relus(merged)[0].guard)
    for op in ("sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5"):
        assert op in guard


@settings(max_examples=80)
@given(spaces(), pipelines())
def test_every_pass_output_verifies(space, passes):
    PassManager(passes, verify_each=True).run(space.graph)


@settings(max_examples=40)
@given(spaces(), pipelines())
def test_printing_after_any_pipeline_is_deterministic(space, passes):
    a = PassManager(passes).run(space.graph)
    b = PassManager(passes).run(nasc.parse(space.to_nas(), file="random.nas").graph)
    assert format_graph(a) == format_graph(b)


def format_graph(g) -> str:
    return "\n".join(format_node(g, r, locations=False) for r in g)


DENSE = """
op blk(x: image, C: int, stride: int = 1) -> image(C, x.stride * stride)
op head(x: image, C: int, stride: int = 1) -> image(C, x.stride * stride)
space dense() {
    input x: image(3)
    let blocks = [blk(x, 8)]
    for j in 1..5 {
        # the head layer belongs to the edge, so it sits inside the pick
        blocks += blk(sum([head(h, 8) for h in pick 1 of blocks[max(0, j - 3):j] @"b{j}.in"]), 8)
    }
    output blocks[4]
}
"""


def test_viterbi_follows_the_most_probable_path_not_the_locally_best_edge():
    import math

    space = nasc.parse(DENSE, file="dense.nas")
    g = relax(space.graph, edge_weights="outgoing")
    preds = {1: [0], 2: [0, 1], 3: [0, 1, 2], 4: [1, 2, 3]}  # block j reads blocks preds[j]
    w = {"b1.in": [0.0], "b2.in": [0.0, 5.0], "b3.in": [0.0, 0.0, 0.0], "b4.in": [0.0, 0.0, 3.0]}
    # p(i -> j): beta normalised over the edges leaving block i (DenseNAS eq. 3)
    out_edges = {
        i: [(j, w[f"b{j}.in"][preds[j].index(i)]) for j in preds if i in preds[j]] for i in range(4)
    }
    p = {}
    for i, edges in out_edges.items():
        z = sum(math.exp(b) for _, b in edges)
        for j, b in edges:
            p[i, j] = math.exp(b) / z

    def best_path(j):  # brute force over every path from block 0 to block j
        if j == 0:
            return 1.0, None
        return max((best_path(i)[0] * p[i, j], i) for i in preds[j])

    expected = {f"b{j}.in": (preds[j].index(best_path(j)[1]),) for j in preds}
    path = derive(g, w, method="viterbi")
    local = derive(g, w)
    assert path == expected
    assert path["b2.in"] == (0,) and local["b2.in"] == (1,)  # the strong edge B1->B2 costs a hop


def test_a_pipeline_is_checked_before_any_pass_runs():
    """``sample`` needs a relaxed graph: a pipeline that samples an unrelaxed space fails up
    front, naming the pass, before the earlier passes do any work; after ``relax`` it applies."""
    ran = []

    def spy(g):
        ran.append("spy")
        return g

    spy_pass = Pass(name="spy", fn=spy)
    space = nasc.load("nas_bench_201")
    with pytest.raises(PassError, match=r"pass 'sample' needs a graph that is \['relaxed'\]"):
        PassManager([spy_pass, registered("sample")]).run(space.graph)
    assert ran == []
    PassManager([spy_pass, registered("relax"), registered("sample")]).run(space.graph)
    assert ran == ["spy"]
