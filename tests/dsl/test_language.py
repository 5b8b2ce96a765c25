"""The semantics of each language construct, one small space per test."""

from pathlib import Path

import pytest
from nasc.ir.nodes import Align, InputChoice, Merge, Op, OpChoice, RepeatChoice

import nasc

PRELUDE = """
op f(x: image, C: int, stride: int = 1) -> image(C, x.stride * stride)
op g(x: image, C: int, stride: int = 1) -> image(C, x.stride * stride)
"""


def space(body: str, **params) -> nasc.Space:
    return nasc.parse(PRELUDE + body, file="t.nas", **params)


def ops(s: nasc.Space) -> list[str]:
    return [r.op for r in s.graph.nodes_of(Op)]


def test_loops_conditionals_and_arithmetic_build_a_chain():
    s = space("""
space s(n: int = 4) {
    input x: image(3)
    for i in 0..n {
        if i % 2 == 0 { x = f(x, 8 * (i + 1)) } else if i == 1 { x = g(x, 16) } else { x = f(x, 7) }
    }
    output x
}""")
    assert ops(s) == ["f", "g", "f", "f"]
    assert [r.param("C") for r in s.graph.nodes_of(Op)] == [8, 16, 24, 7]


def test_lists_comprehensions_slices_and_tuple_assignment():
    s = space("""
space s() {
    input x: image(3)
    let widths = [w * 2 for w in [4, 8, 16, 32] if w > 4]
    let a, b = widths[0], widths[-1]
    a, b = b, a
    for i, w in enumerate(widths[1:]) { x = f(x, w + i) }
    output y = f(x, a + b)
}""")
    assert [r.param("C") for r in s.graph.nodes_of(Op)] == [32, 65, 80]


def test_blocks_take_typed_parameters_with_defaults():
    s = space("""
block pair(x, C: int, twice: bool = true) {
    let y = f(x, C)
    return twice ? g(y, C) : y
}
space s() { input x: image(3) output pair(pair(x, 8), C=4, twice=false) }""")
    assert ops(s) == ["f", "g", "f"]


def test_op_choice_candidates_may_be_ops_blocks_and_bound_calls():
    s = space("""
block two(x, C: int, stride: int = 1) { return g(f(x, C), C, stride) }
space s() {
    input x: image(3)
    output choose [f[C=8], two[C=8], g[C=8]] @"op" (x, stride=2)
}""")
    (c,) = s.graph.nodes_of(OpChoice)
    assert c.options == ("f[C=8]", "two[C=8]", "g[C=8]")
    assert s.count() == 3


def test_optional_is_a_choice_between_skip_and_the_block():
    s = space("""space s() { input x: image(8) output optional f @"o" (x, 8) }""")
    assert s.choices()["o"].options == ("skip", "f")
    skip = s.resolve({"o": "skip"})
    assert ops(skip) == []


def test_input_choice_merges_the_picked_inputs():
    s = space("""
space s() {
    input x: image(8)
    let xs = [f(x, 8), g(x, 8), f(g(x, 8), 8)]
    output sum(pick 2 of xs @"in")
}""")
    assert s.count() == 3
    (c,) = s.graph.nodes_of(InputChoice)
    assert (c.n, c.k_min, c.k_max, c.merge) == (3, 2, 2, "sum")
    resolved = s.resolve({"in": [0, 2]})
    assert [r.mode for r in resolved.graph.nodes_of(Merge)] == ["sum"]
    assert ops(resolved) == ["f", "g", "f"]


def test_pick_some_and_ranges():
    s = space("""
space s() {
    input x: image(8)
    let xs = [f(x, 8), g(x, 8), f(x, 8), g(x, 8)]
    output sum(pick some of xs @"a") + sum(pick 1..3 of xs @"b")
}""")
    assert s.choices()["a"].k == (1, 4)
    assert s.choices()["b"].k == (1, 2)
    assert s.count() == 15 * 10


def test_concat_of_a_pick_multiplies_channels():
    s = space("""
space s() {
    input x: image(8)
    output concat([f(h, 4) for h in pick 2 of [x, f(x, 8), g(x, 8)] @"in"])
}""")
    (out,) = [r for r in s.graph if type(r).__name__ == "Output"]
    assert out.type.channels == 8


def test_nested_choices_count_conditionally():
    s = space("""
block inner(x, C: int) { return choose [f, g] @"inner" (x, C) }
space s() { input x: image(8) output choose [f, inner] @"outer" (x, 8) }""")
    assert s.count() == 3  # f, or inner with f or g
    assert {a.to_json() for a in s.enumerate()} == {
        a.to_json()
        for a in [
            nasc.Architecture({"outer": "f"}, space="s", params={}),
            nasc.Architecture({"outer": "inner", "inner": "f"}, space="s", params={}),
            nasc.Architecture({"outer": "inner", "inner": "g"}, space="s", params={}),
        ]
    }


def test_one_label_in_several_places_is_one_decision():
    s = space("""
block cell(x) { return choose [f, g] @"shared" (x, 8) }
space s() { input x: image(8) output cell(cell(cell(x))) }""")
    assert s.count() == 2
    assert len(s.graph.nodes_of(OpChoice)) == 3


def test_templated_labels_make_one_decision_per_iteration():
    s = space("""
space s() {
    input x: image(8)
    for i in 0..3 { x = choose [f, g] @"layer{i}" (x, 8) }
    output x
}""")
    assert sorted(s.choices()) == ["layer0", "layer1", "layer2"]
    assert s.count() == 8


def test_value_choice_is_symbolic_until_resolved():
    s = space("""
space s() {
    input x: image(3)
    let w = choose {16, 24, 32} @"w"
    output f(f(x, w), 2 * w)
}""")
    last = s.graph.nodes_of(Op)[-1]
    assert str(last.type) == "image[C=(2 * w), s=1]"
    resolved = s.resolve({"w": 24})
    assert [r.param("C") for r in resolved.graph.nodes_of(Op)] == [24, 48]


def test_repeat_choice_carries_tensors_through_depths():
    s = space("""
space s() {
    input x: image(8)
    repeat {0..3} @"d" as j { x = choose [f, g] @"l{j}" (x, 8) }
    output x
}""")
    (r,) = s.graph.nodes_of(RepeatChoice)
    assert r.depths == (0, 1, 2)
    assert s.count() == 1 + 2 + 4
    assert ops(s.resolve({"d": 0})) == []
    assert ops(s.resolve({"d": 2, "l0": "g", "l1": "f"})) == ["g", "f"]


def test_align_inserts_an_align_node_only_when_types_differ():
    s = space("""
space s() {
    input x: image(8)
    let y = f(x, 16, stride=2)
    output sum([align(x, channels=16, stride=2, policy="dcnas"), y, align(y, channels=16)])
}""")
    (a,) = s.graph.nodes_of(Align)
    assert a.policy == "dcnas" and str(a.type) == "image[C=16, s=2]"


def test_imports_by_path_and_alias(tmp_path: Path):
    (tmp_path / "lib.nas").write_text(
        "op h(x: image, C: int) -> image(C, x.stride)\nlet WIDTH = 12\n"
    )
    (tmp_path / "main.nas").write_text(
        'import "lib.nas" as lib\nimport nn\n'
        "space main() { input x: image(3) output relu(lib.h(x, lib.WIDTH)) }\n"
    )
    s = nasc.load(str(tmp_path / "main.nas"))
    assert ops(s) == ["h", "relu"]
    assert s.graph.nodes_of(Op)[0].param("C") == 12


def test_ops_declared_from_python():
    spec = nasc.declare_op("op my_op(x: image, C: int) -> image(C, x.stride)")
    s = nasc.parse(
        "space s() { input x: image(3) output my_op(x, 5) }", file="t.nas", ops=[spec]
    )
    assert ops(s) == ["my_op"]
    assert "op my_op" in s.to_nas()


def test_space_parameters_override_defaults_and_are_recorded():
    s = nasc.load("darts", C=8, layers=5)
    assert s.params["C"] == 8 and s.params["layers"] == 5
    arch = s.sample(0)
    assert arch.space == "darts" and arch.params["C"] == 8


def test_requirements_are_checked_per_call():
    with pytest.raises(nasc.NasError, match="pooling keeps the channel count"):
        nasc.parse(
            "import darts_ops\nspace s() { input x: image(8) output max_pool_3x3(x, 16) }",
            file="t.nas",
        )


def test_no_python_is_evaluated():
    with pytest.raises(nasc.NasError):
        nasc.parse('space s() { input x: image(3) output __import__("os").system("true") }')
