"""A run's pictures (nasc.search.pictures, nasc.search.diagrams): the paper's cell diagrams at
a readable size, the final-epoch heatmap beside the α curves, ``nasc show --overview``."""

import pytest

import nasc
from nasc.search.diagrams import draw, png_size
from nasc.search.pictures import alpha_evolution_png, final_weights, write_pictures

pytest.importorskip("matplotlib")


class Writer:
    active = True

    def __init__(self, d):
        self.d = d

    def text(self, name, s):
        (self.d / name).write_text(s)

    def path(self, name):
        return self.d / name


def _history(labels, n, epochs=3):
    return [{"epoch": e, "alpha": {lab: [(k + 1 + e * (k == i % n)) / (n * (n + 1) / 2 + e)
                                         for k in range(n)] for i, lab in enumerate(labels)}}
            for e in range(epochs)]


def test_derived_png_is_the_two_darts_cells_at_a_readable_size(tmp_path):
    space = nasc.load("darts", C=8, layers=5)
    arch = space.canonical(nasc.Architecture.load("darts_v2"))
    graph = space.resolve(arch).graph
    ops = [lab for lab, s in space.specs.items() if s.kind == "op"]
    options = {lab: list(space.specs[lab].options) for lab in ops}
    notes = write_pictures(Writer(tmp_path), _history(ops[:6], 8), graph, "darts derived",
                           options=options, space=space, arch=arch)
    assert notes == []
    w, h = png_size(tmp_path / "derived.png")
    # two cells side by side (the unrolled network was 1440x2530 for 8 cells)
    assert 1000 <= w <= 2600 and 250 <= h <= 900 and w > h
    w, h = png_size(tmp_path / "alpha.png")
    assert w <= 3000 and h <= 4000


def test_the_final_weights_tables_group_labels_by_their_options():
    rows = [{"epoch": 0, "alpha": {"a": [0.5, 0.5], "b": [0.2, 0.3, 0.5], "c": [0.9, 0.1]}}]
    tables = final_weights(rows, {"a": ["x", "y"], "b": ["x", "y"], "c": ["x", "y"]})
    assert tables == [(["x", "y"], ["a", "c"], [[0.5, 0.5], [0.9, 0.1]]),
                      (["x", "y", "none"], ["b"], [[0.2, 0.3, 0.5]])]


def test_alpha_png_has_the_heatmap_beside_the_curves(tmp_path):
    labels = [f"n{i}.op{j}" for i in range(3) for j in range(2)]
    assert alpha_evolution_png(_history(labels, 4), tmp_path / "a.png")
    with_map = png_size(tmp_path / "a.png")
    assert not alpha_evolution_png([], tmp_path / "b.png")
    # the heatmap column widens the figure beyond the 4 curve panels (3.2 in each, 100 dpi)
    assert with_map[0] > 4 * 320


def test_network_diagrams_stay_within_a_sane_size(tmp_path):
    from nasc.ir.diagram import diagrams

    space = nasc.load("dcnas", L=4, F=8)
    ds = diagrams(space.graph, dict(space.sample(0)))
    w, h = draw(ds, tmp_path / "net.png", title="dcnas")
    assert (w, h) == png_size(tmp_path / "net.png")
    assert 300 <= w <= 3200 and 200 <= h <= 1600


def test_show_overview_draws_each_cell_type_once(tmp_path, capsys):
    from nasc.cli import main

    out = tmp_path / "darts.dot"
    assert main(["show", "darts", "-D", "layers=5", "-D", "C=8", "--dot", str(out),
                 "--overview"]) == 0
    w, h = png_size(out.with_suffix(".png"))
    assert w <= 2600 and h <= 900  # was 16875x2401 for 8 cells side by side
    assert f"wrote {out.with_suffix('.png')} ({w}x{h} px)" in capsys.readouterr().out


def test_a_failing_diagram_falls_back_to_the_whole_network(tmp_path, monkeypatch):
    import nasc.search.diagrams

    def broken(*args, **kwargs):
        raise KeyError(7)

    monkeypatch.setattr(nasc.search.diagrams, "architecture_figure", broken)
    space = nasc.load("nas_bench_201", N=1, C=4)
    arch = space.sample(0)
    notes = write_pictures(Writer(tmp_path), [], space.resolve(arch).graph, "t", space=space,
                           arch=arch)
    assert any("cell diagram failed (KeyError: 7)" in n for n in notes)
    assert png_size(tmp_path / "derived.png")[1] > 0
