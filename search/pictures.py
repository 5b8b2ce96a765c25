"""Pictures of a run: the α/β evolution over epochs and the derived architecture.

PNGs need matplotlib (``pip install nasc[plot]``); without it they are skipped with a note.
The derived architecture's DOT file is always written; its PNG comes from Graphviz's ``dot``
when installed, else from a plain matplotlib drawing of the graph in topological layers.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from pathlib import Path
from typing import Any

from nasc.ir.dot import to_dot


def have_matplotlib() -> bool:
    return importlib.util.find_spec("matplotlib") is not None


def alpha_evolution_png(history: list[dict[str, Any]], path: Path, *, per_figure: int = 48,
                        options: dict[str, list[str]] | None = None) -> bool:
    """One panel per label (the first ``per_figure`` labels): each option's softmax weight per
    epoch, on the panel's own scale, named by ``options`` (label -> option names; a relaxed
    mixture's extra last option is its zero candidate, ``none``); beside them, the final
    epoch's weights of every label as heatmaps (labels x options, one per set of option
    names, :func:`final_weights`). Returns False when matplotlib is missing or there is
    nothing to draw."""
    rows = [r for r in history if r.get("alpha")]
    if not rows or not have_matplotlib():
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(rows[0]["alpha"])[:per_figure]
    cols = min(4, len(labels))
    nrows = -(-len(labels) // cols)
    tables = final_weights(rows, options)
    heat_rows = sum(len(t[1]) for t in tables)
    heat_w = 1.6 + 0.45 * max(len(t[0]) for t in tables)
    fig = plt.figure(figsize=(3.2 * cols + heat_w, max(2.4 * nrows, 0.2 * heat_rows + 1.2)))
    left, right = fig.subfigures(1, 2, width_ratios=[3.2 * cols, heat_w])
    axes = left.subplots(nrows, cols, squeeze=False)
    left.subplots_adjust(left=0.07, right=0.98, bottom=0.5 / (2.4 * nrows),
                         top=1 - 0.35 / (2.4 * nrows), hspace=0.45, wspace=0.3)
    epochs = [r["epoch"] for r in rows]
    for ax, lab in zip(axes.flat, labels):
        series = list(zip(*[r["alpha"][lab] for r in rows]))
        names = _names((options or {}).get(lab), len(series))
        for name, ys in zip(names, series):
            ax.plot(epochs, ys, marker="o", markersize=2, label=name)
        ax.set_title(lab, fontsize=8)
        ax.legend(fontsize=5, ncol=2, loc="best", frameon=False)
        ax.tick_params(labelsize=6)
    for ax in list(axes.flat)[len(labels):]:
        ax.axis("off")
    left.supxlabel("epoch", fontsize=8)
    left.supylabel("softmax weight", fontsize=8)
    _heatmaps(right, tables, epochs[-1])
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def final_weights(rows: list[dict[str, Any]], options: dict[str, list[str]] | None = None
                  ) -> list[tuple[list[str], list[str], list[list[float]]]]:
    """The last epoch's softmax weights as tables ``(option names, labels, weights)``, one
    per distinct list of option names, labels in their order in the history."""
    last = rows[-1]["alpha"]
    tables: dict[tuple[str, ...], tuple[list[str], list[list[float]]]] = {}
    for lab, ws in last.items():
        names = tuple(_names((options or {}).get(lab), len(ws)))
        labs, vals = tables.setdefault(names, ([], []))
        labs.append(lab)
        vals.append([float(w) for w in ws])
    return [(list(k), labs, vals) for k, (labs, vals) in tables.items()]


def _heatmaps(fig: Any, tables, epoch: Any) -> None:
    axes = fig.subplots(len(tables), 1, squeeze=False,
                        height_ratios=[len(t[1]) + 2 for t in tables])[:, 0]
    fig.subplots_adjust(left=0.4, right=0.92, bottom=0.08, top=0.95, hspace=0.6)
    for ax, (names, labs, vals) in zip(axes, tables):
        im = ax.imshow(vals, aspect="auto", cmap="viridis", vmin=0.0,
                       vmax=max(max(v) for v in vals))
        ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=6)
        ax.set_yticks(range(len(labs)), labs, fontsize=6)
        best = [max(range(len(v)), key=v.__getitem__) for v in vals]
        ax.scatter(best, range(len(labs)), marker="o", s=6, c="white")  # the argmax per row
        fig.colorbar(im, ax=ax, fraction=0.05, pad=0.02).ax.tick_params(labelsize=6)
    axes[0].set_title(f"final weights (epoch {epoch}; dot: largest)", fontsize=8)


def _names(given: list[str] | None, n: int) -> list[str]:
    if given is not None and len(given) == n:
        return list(given)
    if given is not None and len(given) == n - 1:
        return [*given, "none"]
    return [str(k) for k in range(n)]


def architecture_png(graph: Any, dot_path: Path, path: Path) -> str | None:
    """The derived graph as a PNG: Graphviz when installed, else matplotlib. Returns the tool
    used, or None when neither is available."""
    dot = shutil.which("dot")
    if dot is not None:
        subprocess.run([dot, "-Tpng", str(dot_path), "-o", str(path)], check=True, timeout=300)
        return "graphviz"
    if not have_matplotlib():
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from nasc.ir.nodes import Input, Merge, Op, Output

    depth: dict[int, int] = {}
    for nid in graph.topo_order():
        ins = graph.inputs(nid)
        depth[nid] = 1 + max((depth[i] for i in ins), default=-1)
    layers: dict[int, list[int]] = {}
    for nid, d in depth.items():
        layers.setdefault(d, []).append(nid)
    pos = {nid: (j - (len(ns) - 1) / 2, -d) for d, ns in layers.items()
           for j, nid in enumerate(ns)}
    width = max(len(ns) for ns in layers.values())
    fig, ax = plt.subplots(figsize=(max(4, 1.6 * width), max(4, 0.55 * len(layers))))
    for nid in depth:
        for i in graph.inputs(nid):
            (x0, y0), (x1, y1) = pos[i], pos[nid]
            ax.annotate("", xy=(x1, y1 + 0.15), xytext=(x0, y0 - 0.15),
                        arrowprops={"arrowstyle": "->", "lw": 0.5, "color": "0.4"})
    for nid, (x, y) in pos.items():
        rec = graph[nid]
        if isinstance(rec, Input | Output):
            text = rec.name
        elif isinstance(rec, Op):
            text = rec.op
        elif isinstance(rec, Merge):
            text = rec.mode
        else:
            text = type(rec).__name__.lower()
        ax.text(x, y, text, ha="center", va="center", fontsize=6,
                bbox={"boxstyle": "round", "fc": "white", "ec": "0.5", "lw": 0.5})
    ax.set_xlim(-width / 2 - 0.5, width / 2 + 0.5)
    ax.set_ylim(-len(layers), 1)
    ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return "matplotlib"


def write_pictures(writer: Any, history: list[dict[str, Any]], graph: Any, title: str,
                   options: dict[str, list[str]] | None = None, *, space: Any = None,
                   arch: Any = None) -> list[str]:
    """Write ``derived.dot`` (always), ``derived.png`` and ``alpha.png``; the notes to print.

    With the searched ``space`` and the derived ``arch``, ``derived.png`` draws the paper's
    diagrams (:mod:`nasc.ir.diagram`: each shared cell type once, the network of unshared
    decisions); otherwise, or for a space without decisions, the whole network ``graph``."""
    notes: list[str] = []
    if not writer.active:
        return notes
    writer.text("derived.dot", to_dot(graph, title))
    if not have_matplotlib():
        notes.append("matplotlib is not installed: no PNG pictures (pip install 'nasc[plot]')")
    elif not alpha_evolution_png(history, writer.path("alpha.png"), options=options):
        notes.append("no architecture parameters were trained: no alpha.png")
    if have_matplotlib() and space is not None and arch is not None:
        from nasc.search.diagrams import architecture_figure

        try:
            if architecture_figure(space, arch, writer.path("derived.png"), title=title):
                return notes
        except Exception as e:  # noqa: BLE001 - a picture must not lose a finished run
            notes.append(f"derived.png: the cell diagram failed ({type(e).__name__}: {e}); "
                         "drew the whole network instead (a bug in nasc.ir.diagram)")
    if architecture_png(graph, writer.path("derived.dot"), writer.path("derived.png")) is None:
        notes.append("neither Graphviz nor matplotlib is installed: no derived.png")
    return notes
