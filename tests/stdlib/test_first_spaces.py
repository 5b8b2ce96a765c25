"""The first stdlib spaces: exact sizes from the papers and structure of the DARTS cell."""

import itertools
import math

import pytest
from nasc.ir.nodes import InputChoice, OpChoice, RepeatChoice, ValueChoice
from nasc.ir.printer import print_graph
from nasc.ir.verify import verify

import nasc
from nasc import stdlib


def test_nas_bench_201_has_15625_architectures():
    space = nasc.load("nas_bench_201")
    assert space.count() == 15_625 == 5**6


def test_nas_bench_201_uses_the_benchmark_op_names_and_edge_labels():
    choices = nasc.load("nas_bench_201").choices()
    assert set(choices) == {"1<-0", "2<-0", "2<-1", "3<-0", "3<-1", "3<-2"}
    for c in choices.values():
        assert c.kind == "op"
        assert c.options == ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")


def test_nas_bench_201_shares_one_cell_across_all_15_positions():
    space = nasc.load("nas_bench_201", N=5)
    per_label = [r for r in space.graph.nodes_of(OpChoice) if r.label == "1<-0"]
    assert len(per_label) == 15


def test_darts_count_is_180_times_7_to_the_8_squared():
    assert nasc.load("darts").count() == 1_076_746_950_455_072_400 == (180 * 7**8) ** 2


def test_darts_count_does_not_depend_on_network_size():
    assert nasc.load("darts", C=8, layers=5).count() == (180 * 7**8) ** 2


def test_darts_cell_structure():
    space = nasc.load("darts", layers=8)
    choices = space.choices()
    assert len(choices) == 2 * (4 + 14)
    for kind in ("normal", "reduce"):
        for i in range(4):
            c = choices[f"{kind}.n{i}.in"]
            assert c.kind == "input" and c.k == 2 and len(c.options) == i + 2
            for j in range(i + 2):
                op = choices[f"{kind}.n{i}.op{j}"]
                assert op.kind == "op" and len(op.options) == 7 and "none" not in op.options
    # 6 normal cells and 2 reduction cells share their labels
    normal = [r for r in space.graph.nodes_of(InputChoice) if r.label == "normal.n3.in"]
    reduce = [r for r in space.graph.nodes_of(InputChoice) if r.label == "reduce.n3.in"]
    assert (len(normal), len(reduce)) == (6, 2)


def test_darts_op_choice_exists_only_when_its_input_is_picked():
    spec = nasc.load("darts").choices()["normal.n2.op3"]
    assert str(spec.guard) == "normal.n2.in ∋ 3"


def test_darts_reduction_doubles_channels_and_halves_resolution():
    space = nasc.load("darts", C=16, layers=8)
    arch = space.sample(0)
    resolved = space.resolve(arch)
    out = [r for r in resolved.graph if getattr(r, "op", None) == "global_avg_pool"]
    assert str(out[0].type) == "vector[C=256]"  # 4 * 64 channels after two reductions
    cell_outputs = [r for r in resolved.graph if getattr(r, "mode", None) == "concat"]
    assert [r.type.stride for r in cell_outputs] == [1, 1, 2, 2, 2, 4, 4, 4]


def _chain_count(stages, kernels=3, expansions=2, head=2):
    per_layer = kernels * expansions
    total = head
    for _, depth, _ in stages:
        total *= sum(per_layer**d for d in range(1, depth + 1))
    return total


def test_mobilenet_chain_count_is_conditional():
    space = nasc.load("mobilenet_chain")
    stages = space.params["stages"]
    assert space.count() == _chain_count(stages) == 1554**5 * 6 * 2


@pytest.mark.parametrize("stages", [[[16, 2, 2]], [[16, 1, 2], [24, 1, 1]], [[8, 1, 1]]])
def test_mobilenet_chain_count_matches_brute_force(stages):
    space = nasc.load("mobilenet_chain", stages=stages)
    specs = space.specs
    labels = sorted(specs)
    # brute force: every assignment of every label, deduplicated by its active part
    seen = set()
    for values in itertools.product(*(specs[lab].options for lab in labels)):
        arch = space.canonical(dict(zip(labels, values)))
        seen.add(arch.to_json())
    assert len(seen) == space.count() == _chain_count(stages)


def test_mobilenet_chain_nests_expansion_inside_its_kernel():
    choices = nasc.load("mobilenet_chain", stages=[[16, 2, 2]]).choices()
    assert choices["s0.depth"].kind == "repeat" and choices["s0.depth"].options == (1, 2)
    assert choices["s0.b1.k5.e"].kind == "value"
    assert str(choices["s0.b1.k5.e"].guard) == "s0.b1 == 'mb_layer[k=5]' & s0.depth >= 2"


@pytest.mark.parametrize("name", ["darts", "nas_bench_201", "mobilenet_chain"])
def test_stdlib_spaces_verify_and_round_trip_through_to_nas(name):
    space = nasc.load(name)
    verify(space.graph)
    again = nasc.parse(space.to_nas(), file=f"{name}.nas")
    assert print_graph(again.graph, locations=False) == print_graph(space.graph, locations=False)


@pytest.mark.parametrize("name", ["darts", "nas_bench_201", "mobilenet_chain"])
def test_resolved_stdlib_spaces_round_trip(name):
    space = nasc.load(name)
    for seed in range(3):
        resolved = space.resolve(space.sample(seed))
        again = nasc.parse(resolved.to_nas(), file="resolved.nas")
        assert print_graph(again.graph, locations=False) == print_graph(
            resolved.graph, locations=False
        )


def test_every_stdlib_module_parses():
    from nasc.dsl.parser import parse_module

    for name in stdlib.names():
        parse_module(stdlib.path_of(name).read_bytes(), f"{name}.nas")


def test_value_choice_flows_into_channels_symbolically():
    space = nasc.load("mobilenet_chain", stages=[[16, 1, 2]])
    head = [r for r in space.graph.nodes_of(ValueChoice) if r.label == "head.width"]
    assert head and head[0].values == (1280, 1536)
    pooled = [r for r in space.graph if getattr(r, "op", None) == "global_avg_pool"][0]
    assert str(pooled.type) == "vector[C=head.width]"
    arch = dict(space.sample(0))
    arch["head.width"] = 1536
    resolved = space.resolve(arch)
    pooled = [r for r in resolved.graph if getattr(r, "op", None) == "global_avg_pool"][0]
    assert str(pooled.type) == "vector[C=1536]"


def test_repeat_choice_options_are_depths():
    space = nasc.load("mobilenet_chain")
    reps = space.graph.nodes_of(RepeatChoice)
    assert {r.depths for r in reps} == {(1, 2, 3, 4), (1,)}
    assert math.prod(1 for _ in reps) == 1
