"""Pictures: the full IR graph and the decision overview that mirrors the papers' figures."""

import re

import pytest
from nasc.ir.dot import to_dot, to_overview_dot

import nasc


def edges(dot: str) -> list[tuple[str, str]]:
    return re.findall(r"^\s*(n\d+) -> (n\d+)", dot, re.M)


def labels(dot: str) -> dict[str, str]:
    return dict(re.findall(r'^\s*(n\d+) \[label="([^"]*)"', dot, re.M))


@pytest.mark.parametrize("L", [1, 2, 3])
def test_the_dcnas_overview_is_the_grid_of_fusion_modules_with_dense_connections(L):
    """DCNAS Fig. 1: every fusion module M(s, l) reads the mixture layers of all earlier
    layers (the stem, fixed, collapses into the input)."""
    dot = to_overview_dot(nasc.load("dcnas", L=L, F=8).graph, "dcnas")
    names = labels(dot)
    by_label = {v.split("\\n")[0]: k for k, v in names.items()}
    assert len(names) == 2 + 2 * 4 * L  # input, output, M(s,l).in and M(s,l).op
    into = {}
    for a, b in edges(dot):
        into.setdefault(b, set()).add(names[a].split("\\n")[0])
    for layer in range(1, L + 1):
        for s in range(4):
            want = {"x"} | {f"M{t}.{m}.op" for t in range(4) for m in range(1, layer)}
            assert into[by_label[f"M{s}.{layer}.in"]] == want
            assert into[by_label[f"M{s}.{layer}.op"]] == {f"M{s}.{layer}.in"}


def test_the_darts_overview_shows_each_cell_node_and_its_edges():
    dot = to_overview_dot(nasc.load("darts", layers=1, C=8).graph, "darts")
    names = [v.split("\\n")[0] for v in labels(dot).values()]
    # one (reduction) cell: four nodes, each an input choice over 2..5 states and an op per state
    assert sorted(n for n in names if n.endswith(".in")) == [f"reduce.n{i}.in" for i in range(4)]
    assert sum(n.startswith("reduce.n3.op") for n in names) == 5
    assert "2 of 5" in dot


def test_labels_break_lines_the_dot_way():
    dot = to_dot(nasc.load("nas_bench_201", N=1).graph)
    assert '\\nimage[C=3, s=1]"' in dot and "\\\\n" not in dot


def test_show_overview_writes_the_decision_picture(tmp_path, monkeypatch, capsys):
    import nasc.cli

    monkeypatch.setattr(nasc.cli.shutil, "which", lambda name: None)  # no Graphviz run
    out = tmp_path / "dcnas.dot"
    assert nasc.cli.main(["show", "dcnas", "-D", "L=2", "-D", "F=8", "--dot", str(out),
                          "--overview"]) == 0
    assert "(decisions)" in out.read_text()
