"""Printed IR is an interchange format: ``parse_graph`` reads back what ``print_graph`` wrote,
after any pass."""

import attrs
import pytest
from hypothesis import given, settings
from nasc.ir.passes import PassManager
from nasc.ir.printer import print_graph
from nasc.ir.text import IRSyntaxError, parse_graph
from nasc.ir.verify import verify

import nasc
from nasc.build import method_pipeline
from nasc.testing import pipelines, spaces


def assert_round_trips(g) -> None:
    text = print_graph(g)
    back = parse_graph(text)
    assert print_graph(back) == text
    verify(back)
    assert sorted(back.nx.nodes) == sorted(g.nx.nodes)
    for nid in g.nx.nodes:
        a, b = g[nid], back[nid]
        if a.loc is not None:  # the printer shows where a location starts, not where it ends
            a = attrs.evolve(a, loc=attrs.evolve(a.loc, end_line=None, end_col=None))
        assert a == b
        assert back.inputs(nid) == g.inputs(nid)


@settings(max_examples=40, deadline=None)
@given(spaces(), pipelines())
def test_printing_after_any_pass_round_trips(space, passes):
    g = space.graph
    assert_round_trips(g)
    for p in PassManager(passes).passes:
        g = p(g)
        assert_round_trips(g)


@pytest.mark.parametrize("name, params, method", [
    ("darts", dict(layers=2, C=8), "darts"),
    ("darts", dict(layers=2, C=8), "pc-darts"),
    ("darts", dict(layers=2, C=8), "gdas"),
    ("nas_bench_201", dict(N=1), "spos"),
    ("mobilenet_chain", {}, "proxyless"),
    ("dcnas", dict(L=2, F=8), "dcnas"),
])
def test_every_stage_of_a_stdlib_method_round_trips(name, params, method):
    g = nasc.load(name, **params).graph
    assert_round_trips(g)
    for p in method_pipeline(method):
        g = p(g)
        assert_round_trips(g)


def test_symbols_and_quoted_labels_round_trip():
    space = nasc.parse('''
        op conv(x: image, C: int, k: int = 3) -> image(C, x.stride)
        space s() {
            input x: image(3)
            let w = choose {8, 16} @"width: a|b & c"
            let y = choose [conv[k=3], conv[k=5]] @"odd # label == x" (x, 2 * w + 1)
            output y
        }
    ''')
    assert "@'width: a|b & c'" in print_graph(space.graph)
    assert_round_trips(space.graph)


@pytest.mark.parametrize("text, message", [
    ("%0: image[C=3, s=1] = input", "expected a quoted string"),
    ("%0: image[C=3, s=1] = input 'x'\n%1: image[C=3, s=1] = output 'y'(%7)",
     "%7 is used before it is defined"),
    ("%0: matrix[C=3] = input 'x'", "expected a type"),
    ("%0: image[C=3, s=1] = input 'x' extra", "unexpected text after the node"),
    ("%0: image[C=3, s=1] = input 'x'  # nowhere", "expected a source location"),
    ("%0: image[C=3, s=1] = input 'x'\n%0: image[C=3, s=1] = input 'y'", "defined twice"),
])
def test_malformed_text_is_reported_with_line_and_caret(text, message):
    with pytest.raises(IRSyntaxError, match=message) as e:
        parse_graph(text)
    assert "^" in str(e.value) and str(e.value).startswith("line ")
