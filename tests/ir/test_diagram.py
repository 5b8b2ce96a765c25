"""The paper's pictures as data (nasc.ir.diagram): each shared cell type once, with the nodes
c_{k-2}, c_{k-1}, 0..n-1, c_{k} and an edge per chosen op; the network where nothing is shared."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nasc
from nasc.ir.diagram import diagrams

# DARTS_V2 as published (quark0/darts, cnn/genotypes.py): (op, input) pairs, two per node;
# input 0 is c_{k-2}, 1 is c_{k-1}, j >= 2 the intermediate node j - 2
DARTS_V2_NORMAL = [("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0),
                   ("sep_conv_3x3", 1), ("sep_conv_3x3", 1), ("skip_connect", 0),
                   ("skip_connect", 0), ("dil_conv_3x3", 2)]
DARTS_V2_REDUCE = [("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2),
                   ("max_pool_3x3", 1), ("max_pool_3x3", 0), ("skip_connect", 2),
                   ("skip_connect", 2), ("max_pool_3x3", 1)]


def _name(j: int) -> str:
    return {0: "c_{k-2}", 1: "c_{k-1}"}.get(j, str(j - 2))


def _published(genotype) -> set[tuple[str, str, str]]:
    return {(_name(j), str(i // 2), op) for i, (op, j) in enumerate(genotype)}


@pytest.fixture(scope="module")
def darts():
    return nasc.load("darts", C=8, layers=5)


def test_darts_v2_draws_the_published_normal_and_reduction_cells(darts):
    arch = darts.canonical(nasc.Architecture.load("darts_v2"))
    normal, reduce = diagrams(darts.graph, dict(arch))  # nothing unshared: no network
    assert (normal.title, normal.kind, normal.instances) == ("normal cell (×3)", "cell", 3)
    assert reduce.title == "reduce cell (×2)"
    for d, genotype in ((normal, DARTS_V2_NORMAL), (reduce, DARTS_V2_REDUCE)):
        assert [n.text for n in d.nodes] == ["c_{k-2}", "c_{k-1}", "0", "1", "2", "3", "c_{k}"]
        assert [n.role for n in d.nodes] == ["input"] * 2 + ["node"] * 4 + ["output"]
        assert d.labelled_edges() == _published(genotype)
        flows = {(d.text(e.src), d.text(e.dst)) for e in d.edges if e.kind == "flow"}
        assert flows == {(str(i), "c_{k}") for i in range(4)}  # c_{k} = concat of the nodes


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**16))
def test_every_darts_architecture_is_read_back_from_its_diagram(darts, seed):
    arch = darts.sample(seed)
    normal, reduce = diagrams(darts.graph, dict(arch))
    for d, kind in ((normal, "normal"), (reduce, "reduce")):
        want = {(_name(j), str(i), arch[f"{kind}.n{i}.op{j}"])
                for i in range(4) for j in arch[f"{kind}.n{i}.in"]}
        assert d.labelled_edges() == want


def test_the_space_cell_has_every_candidate_edge(darts):
    normal, reduce = diagrams(darts.graph)
    assert len(normal.labelled_edges()) == 2 + 3 + 4 + 5  # node i reads every earlier state
    assert ("c_{k-2}", "3", "n3.op0 ×7") in normal.labelled_edges()
    assert ("2", "3", "n3.op4 ×7") in reduce.labelled_edges()


def test_nasnet_identity_edges_come_back_and_unused_nodes_feed_c_k():
    space = nasc.load("nasnet", N=1)
    arch = space.canonical(nasc.Architecture.load("nasnet_a"))
    normal, reduce = diagrams(space.graph, dict(arch))[:2]
    assert normal.title.startswith("normal cell") and reduce.title.startswith("reduce cell")
    edges = normal.labelled_edges()
    # NASNet-A's normal cell: block 2 adds an identity of c_{k-2}, block 4 one of c_{k-1}
    assert ("c_{k-2}", "2", "identity") in edges and ("c_{k-1}", "4", "identity") in edges
    assert sum(e.kind == "op" for e in normal.edges) == 10  # two inputs for each of 5 blocks


def test_nas_bench_201_is_one_cell_drawn_once():
    space = nasc.load("nas_bench_201", N=2)
    (cell,) = diagrams(space.graph)
    assert cell.instances == 3 * 2
    assert [n.text for n in cell.nodes] == ["c_{k-1}", "0", "1", "c_{k}"]
    assert {lab for *_, lab in cell.labelled_edges()} == {
        f"{lab} ×5" for lab in ("1<-0", "2<-0", "2<-1", "3<-0", "3<-1", "3<-2")}


def test_auto_deeplab_draws_its_cell_once_and_the_path_over_the_grid():
    space = nasc.load("auto_deeplab", L=3, F=4)
    arch = space.sample(3)
    cell, net = diagrams(space.graph, dict(arch))
    assert cell.kind == "cell" and cell.instances == 3
    blocks = [n for n in net.nodes if n.role == "block"]
    assert [n.text for n in blocks] == ["cell"] * 3  # one per layer on the chosen path
    assert all(n.stride in (4, 8, 16, 32) for n in blocks)


def test_unshared_spaces_get_the_network_of_their_decisions():
    space = nasc.load("proxylessnas")
    arch = space.canonical(nasc.Architecture.load("proxylessnas_gpu"))
    (net,) = diagrams(space.graph, dict(arch))
    blocks = [n for n in net.nodes if n.role == "block"]
    ops = [arch[lab] for lab in arch if space.specs[lab].kind == "op"]
    assert len(blocks) == sum(o != "zero" and not str(o).startswith("identity") for o in ops)
    assert all(n.text.startswith("mbconv k=") for n in blocks)
    assert [n.role for n in net.nodes][0] == "input" and net.nodes[-1].role == "output"
    # a chain: each block feeds the next
    assert len(net.edges) == len(net.nodes) - 1


def test_a_space_without_decisions_has_no_diagram():
    assert diagrams(nasc.load("mobilenet_v2").graph) == []
