"""The verifier's rule 6: a guard names labels of the graph, with tests and values that fit them."""

import nasc
import pytest
from nasc.ir.text import parse_graph
from nasc.ir.verify import IRError, verify

SPACE = """import nn
space t() {
    input x: image(3)
    let a = choose [relu, batch_norm] @"a" (x)
    output sum(pick 1 of [x, a] @"in")
}
"""


def _printed() -> str:
    return str(nasc.parse(SPACE))


def test_the_elaborated_space_verifies():
    verify(parse_graph(_printed()))


@pytest.mark.parametrize(
    "guard, complaint",
    [
        ("@'a' == \"gelu\"", "outside the options of 'a'"),  # a value that is not an option
        ("@'b' == \"relu\"", "unknown label 'b'"),  # a label the graph does not have
        ("@'in' == 0", "outside the options of 'in'"),  # an input choice tested with ==
        ("@'in' ∋ 2", "outside the options of 'in'"),  # an input index beyond its n = 2
    ],
)
def test_a_guard_outside_its_decisions_domain_is_refused(guard, complaint):
    text = _printed().replace("when @'a' == \"relu\"", f"when {guard}")
    assert guard in text
    with pytest.raises(IRError, match=complaint):
        verify(parse_graph(text))
