"""Budgets: parsing, and drawing architectures within one (``Space.sample(budget=...)``)."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nasc.ir.budget import Budget, BudgetError
from nasc.ir.cost import cost

import nasc


def test_budgets_read_as_the_command_line_writes_them():
    assert Budget.parse("macs=300M").limits == (("macs", 300e6),)
    assert Budget.parse("params=5.5M,macs=1G").limits == (("params", 5.5e6), ("macs", 1e9))
    assert Budget.parse({"latency": 20}).limits == (("latency", 20.0),)
    assert Budget.parse("params = 250K").limits == (("params", 250e3),)
    for bad, why in [("macs", "expected kind=number"), ("macs=-1", "expected kind=number"),
                     ("macs=0", "positive"), ("macs=1,macs=2", "given twice"),
                     ("macs=3X", "expected kind=number"), ("", "expected kind=number")]:
        with pytest.raises(BudgetError, match=why):
            Budget.parse(bad)
    with pytest.raises(BudgetError, match="positive"):
        Budget.parse({"macs": float("nan")})


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), bound=st.sampled_from([200e6, 300e6, 400e6]))
def test_every_network_drawn_within_a_budget_fits_it(seed, bound):
    space = nasc.load("ofa_mbv3")
    arch = space.sample(seed, budget={"macs": bound}, input_size=224)
    macs = cost(space.resolve(arch).graph, "macs", input_size=224)
    assert macs <= bound
    # the same seed, the same network
    assert space.sample(seed, budget={"macs": bound}, input_size=224) == arch


def test_a_budget_that_nothing_fits_says_so():
    space = nasc.load("ofa_mbv3")
    with pytest.raises(nasc.NasError, match=r"no network within the budget \(macs<=1M\).*"
                                            r"the smallest drawn has macs="):
        space.sample(0, budget="macs=1M", input_size=224)
