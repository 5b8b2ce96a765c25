"""The graph container: its fast paths (topological order, copying, renumbering) agree with
networkx' public API, and copies share nothing mutable."""

import gc

import attrs
import networkx as nx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from nasc.ir.gcpause import gc_paused
from nasc.ir.graph import Graph
from nasc.ir.nodes import Input, Op, Output
from nasc.ir.types import TensorType

import nasc
from nasc.testing import spaces

T = TensorType.image(4)


@st.composite
def dags(draw) -> Graph:
    """A random DAG of ops over one input, built in a shuffled id order (ids are not
    topological), with repeated inputs (parallel edges of a multigraph)."""
    g = Graph()
    nodes = [g.add(Input, type=T, name="x")]
    for _ in range(draw(st.integers(1, 12))):
        ins = draw(st.lists(st.sampled_from(nodes), min_size=1, max_size=3))
        nodes.append(g.add(Op, ins, op="add", params=(), type=T))
    g.add(Output, [nodes[-1]], type=T, name="y")
    # relabel through networkx' public API so that ids stop following the order of creation
    perm = draw(st.permutations(range(len(g))))
    h = Graph()
    h._g = nx.relabel_nodes(g.nx, dict(enumerate(perm)))
    for n, data in h.nx.nodes.items():
        data["rec"] = attrs.evolve(data["rec"], id=n)
    h._next = len(perm)
    return h


@given(dags())
def test_topological_order_is_networkx_lexicographical_order(g):
    assert g.topo_order() == list(nx.lexicographical_topological_sort(g.nx))


@given(dags(), st.data())
def test_topological_order_of_a_subset_follows_its_own_edges(g, data):
    subset = data.draw(st.sets(st.sampled_from(sorted(g.nx.nodes))))
    assert g.topo_sorted(subset) == list(nx.lexicographical_topological_sort(g.nx.subgraph(subset)))


@given(dags())
def test_copy_is_the_same_multigraph_and_shares_no_adjacency(g):
    c = g.copy()
    assert nx.utils.graphs_equal(c.nx, g.nx)
    assert sorted(c.nx.edges(keys=True, data=True)) == sorted(g.nx.edges(keys=True, data=True))
    assert all(c.inputs(n) == g.inputs(n) and c.users(n) == g.users(n) for n in g.nx.nodes)
    before = nx.MultiDiGraph(g.nx)
    y = next(r.id for r in c.nodes_of(Output))
    x = next(r.id for r in c.nodes_of(Input))
    c.set_inputs(y, [x, x])
    assert c.inputs(y) == [x, x]
    assert nx.utils.graphs_equal(g.nx, before)  # the original is untouched


@given(spaces())
def test_renumbering_keeps_the_structure_in_topological_ids(space):
    g = space.graph
    mapping: dict[int, int] = {}
    r = g.renumbered(mapping)
    assert r.topo_order() == list(range(len(g)))
    assert nx.is_isomorphic(r.nx, g.nx)
    for old, new in mapping.items():
        assert r[new].id == new
        assert [mapping[i] for i in g.inputs(old)] == r.inputs(new)
    rebuilt = nx.MultiDiGraph()  # through networkx' public API
    rebuilt.add_nodes_from((n, {"rec": r[n]}) for n in range(len(g)))
    rebuilt.add_edges_from((u, v, s, {"slot": s}) for u, v, s in r.nx.edges(data="slot"))
    assert nx.utils.graphs_equal(rebuilt, r.nx)
    assert dict(rebuilt.pred) == dict(r.nx.pred) and dict(rebuilt.succ) == dict(r.nx.succ)


def test_a_cycle_is_reported_not_looped_on():
    g = Graph()
    x = g.add(Input, type=T, name="x")
    a = g.add(Op, [x], op="add", params=(), type=T)
    b = g.add(Op, [a], op="add", params=(), type=T)
    g.set_inputs(a, [b])
    with pytest.raises(nx.NetworkXUnfeasible):
        g.topo_order()


def test_gc_pause_nests_and_restores_the_collector():
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer pause still holds
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()  # a caller's own choice is left alone
    finally:
        gc.enable()


def test_loading_compiling_and_passes_leave_the_collector_on():
    nasc.compile(nasc.load("nas_bench_201", N=1, C=8), method="darts", device="meta")
    assert gc.isenabled()
