"""Golden IR: each stdlib space (small size) after each pass, as committed text.

A change that alters what a space elaborates to, or what a pass does, shows up as a diff of
these files in review. Regenerate them with ``NASC_UPDATE_GOLDEN=1 python -m pytest
tests/ir/test_golden.py`` and read the diff before committing.
"""

import os
from pathlib import Path

import pytest
from nasc.ir.passes import cse, insert_alignment, partial_channels, relax
from nasc.ir.printer import print_graph

import nasc

GOLDEN = Path(__file__).resolve().parents[1] / "golden"

CASES = {
    "nas_bench_201.N1": lambda: nasc.load("nas_bench_201", N=1),
    "darts.layers2": lambda: nasc.load("darts", C=8, layers=2),
    "mobilenet_chain.small": lambda: nasc.load("mobilenet_chain", stages=[[16, 2, 2]]),
}
PIPELINES = {
    "elaborated": lambda g: g,
    "cse": lambda g: cse(insert_alignment(g)),
    "relaxed": lambda g: relax(cse(insert_alignment(g))),
    "pc": lambda g: partial_channels(relax(cse(insert_alignment(g)), edge_weights="inputs")),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("stage", sorted(PIPELINES))
def test_golden_ir(case, stage):
    if stage == "pc" and not case.startswith("darts"):
        pytest.skip("partial channels are a DARTS-family mechanism")
    g = PIPELINES[stage](CASES[case]().graph)
    text = print_graph(g) + "\n"
    path = GOLDEN / f"{case}.{stage}.ir"
    if os.environ.get("NASC_UPDATE_GOLDEN"):
        path.write_text(text)
    assert path.exists(), f"missing golden file {path.name}; run with NASC_UPDATE_GOLDEN=1"
    assert text == path.read_text()
