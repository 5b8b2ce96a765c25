"""Drawing :mod:`nasc.ir.diagram` diagrams with matplotlib (no Graphviz): a cell as the DARTS
paper draws it (inputs ``c_{k-2}``, ``c_{k-1}`` on the left, the intermediate nodes each in
its own column, ``c_{k}`` on the right, each edge labelled with its op and coloured by it), the
network as
decisions on a grid of columns (data-flow rank) and rows (resolution: stride 1 on top).

``draw(diagrams, path)`` writes one PNG with every diagram; ``architecture_figure`` and
``space_figure`` give the diagrams of a run's architecture and of a space.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from nasc.ir.diagram import Diagram, diagrams

#: DARTS' figure colours (graphviz names there): inputs, intermediate nodes, output
FILL = {"input": "#b4eeb4", "node": "#add8e6", "output": "#eee8aa", "block": "#f5f5f5"}
DPI = 100
MAX_WIDTH_IN = 30.0


def _ranks(d: Diagram) -> dict[int, int]:
    """Longest-path rank of every node (inputs 0); ``d.nodes`` are in topological order."""
    ins: dict[int, list[int]] = {n.key: [] for n in d.nodes}
    for e in d.edges:
        ins[e.dst].append(e.src)
    rank: dict[int, int] = {}
    for n in d.nodes:
        rank[n.key] = 1 + max((rank[i] for i in ins[n.key]), default=-1)
    return rank


def _cell_layout(d: Diagram) -> dict[int, tuple[float, float]]:
    """Inputs stacked on the left, each intermediate node in its own column (in the order of
    the data flow), alternately above and below the middle, the output on the right."""
    inputs = [n.key for n in d.nodes if n.role == "input"]
    inner = [n.key for n in d.nodes if n.role == "node"]
    outputs = [n.key for n in d.nodes if n.role == "output"]
    pos = {}
    for j, k in enumerate(inputs):
        pos[k] = (0.0, 2.4 * ((len(inputs) - 1) / 2 - j))
    for j, k in enumerate(inner):
        pos[k] = (2.4 + 1.6 * j, 1.5 * (1 if j % 2 == 0 else -1))
    for j, k in enumerate(outputs):
        pos[k] = (2.4 + 1.6 * len(inner), 2.4 * ((len(outputs) - 1) / 2 - j))
    return pos


def _network_layout(d: Diagram) -> dict[int, tuple[float, float]]:
    """Columns by data-flow rank, one row per resolution (finest on top); nodes sharing a
    spot are stacked."""
    rank = _ranks(d)
    strides = {n.key: n.stride if isinstance(n.stride, int) and n.stride > 0 else None
               for n in d.nodes}
    levels = sorted({s for s in strides.values() if s is not None}) or [1]
    spots: dict[tuple[int, int], list[int]] = {}
    for n in d.nodes:
        s = strides[n.key]
        row = levels.index(s) if s is not None else 0
        spots.setdefault((rank[n.key], row), []).append(n.key)
    lines = {n.key: len(_wrap(n.text).splitlines()) + 1 for n in d.nodes}
    tall = [0.0] * len(levels)
    for (_, row), keys in spots.items():
        tall[row] = max(tall[row], sum(0.16 * lines[k] + 0.12 for k in keys))
    top = [0.0]
    for h in tall[:-1]:
        top.append(top[-1] - max(1.0, h + 0.4))
    pos = {}
    for (col, row), keys in spots.items():
        y = top[row]
        for k in keys:
            pos[k] = (1.0 * col, y)
            y -= 0.16 * lines[k] + 0.12
    return pos


def _colours(labels: Sequence[str]) -> dict[str, Any]:
    import matplotlib

    cmap = matplotlib.colormaps["tab10"]
    return {lab: cmap(i % 10) for i, lab in enumerate(sorted(set(labels)))}


def _draw_cell(ax, d: Diagram) -> None:
    pos = _cell_layout(d)
    colour = _colours([e.label for e in d.edges if e.kind == "op"])
    seen: dict[tuple[int, int], int] = {}
    placed: list[tuple[float, float]] = []
    for e in d.edges:
        (x0, y0), (x1, y1) = pos[e.src], pos[e.dst]
        twin = seen.get((e.src, e.dst), 0)
        seen[(e.src, e.dst)] = twin + 1
        rad = 0.12 + 0.3 * twin if e.kind == "op" else 0.0
        c = colour.get(e.label, "0.55")
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0), arrowprops={
            "arrowstyle": "-|>", "lw": 1.4 if e.kind == "op" else 0.9, "color": c,
            "linestyle": "-" if e.kind == "op" else "--", "shrinkA": 17, "shrinkB": 17,
            "connectionstyle": f"arc3,rad={rad}", "mutation_scale": 12})
        if e.label:
            mx, my = _label_spot((x0, y0), (x1, y1), rad, placed, pos.values())
            placed.append((mx, my))
            ax.text(mx, my, e.label, ha="center", va="center", fontsize=8, color=c,
                    bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none",
                          "alpha": 0.85})
    for n in d.nodes:
        x, y = pos[n.key]
        ax.text(x, y, _tex(n.text), ha="center", va="center", fontsize=11,
                bbox={"boxstyle": "circle,pad=0.3" if n.role == "node" else "round,pad=0.4",
                      "fc": FILL[n.role], "ec": "0.3", "lw": 0.8})
    _frame(ax, pos, d.title, pad=0.55)


def _label_spot(p0, p1, rad: float, placed, nodes) -> tuple[float, float]:
    """Where an edge's label goes: on the curve (arc3's quadratic Bézier), at the first of a
    few fractions along it whose spot keeps clear of the labels placed so far and the nodes."""
    (x0, y0), (x1, y1) = p0, p1
    cx, cy = (x0 + x1) / 2 + rad * (y1 - y0), (y0 + y1) / 2 - rad * (x1 - x0)
    spots = []
    for t in (0.45, 0.32, 0.58, 0.22, 0.68, 0.5, 0.38, 0.15, 0.78):
        x = (1 - t) ** 2 * x0 + 2 * t * (1 - t) * cx + t * t * x1
        y = (1 - t) ** 2 * y0 + 2 * t * (1 - t) * cy + t * t * y1
        clash = sum(abs(x - a) < 1.2 and abs(y - b) < 0.4 for a, b in placed)
        clash += sum(abs(x - a) < 0.95 and abs(y - b) < 0.45 for a, b in nodes)
        if clash == 0:
            return x, y
        spots.append((clash, t, x, y))
    _, _, x, y = min(spots)
    return x, y


def _tex(text: str) -> str:
    """``c_{k-2}`` as mathtext."""
    return f"${text}$" if text.startswith("c_{") else text


def _draw_network(ax, d: Diagram) -> None:
    pos = _network_layout(d)
    for e in d.edges:
        (x0, y0), (x1, y1) = pos[e.src], pos[e.dst]
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0), arrowprops={
            "arrowstyle": "-|>", "lw": 0.6, "color": "0.45", "alpha": 0.6, "shrinkA": 6,
            "shrinkB": 6, "mutation_scale": 7})
    for n in d.nodes:
        x, y = pos[n.key]
        text = _wrap(n.text.replace(", ", " "))
        if n.role == "block" and n.channels is not None:
            text += f"\n{n.channels}ch /{n.stride}"
        ax.text(x, y, text, ha="center", va="center", fontsize=6,
                bbox={"boxstyle": "round,pad=0.25", "fc": FILL[n.role], "ec": "0.4",
                      "lw": 0.5})
    left = min(x for x, _ in pos.values()) - 0.8
    rows: dict[int, float] = {}
    for n in d.nodes:
        if n.role == "block" and isinstance(n.stride, int):
            rows[n.stride] = max(rows.get(n.stride, -1e9), pos[n.key][1])
    for stride, y in rows.items():
        ax.text(left, y, f"/{stride}", fontsize=7, color="0.4", ha="right", va="center")
    _frame(ax, pos, d.title, pad=0.7)


def _wrap(text: str) -> str:
    """The op name on its first line, then two settings a line."""
    head, *rest = text.split(" ")
    lines = [head] + [" ".join(rest[i:i + 2]) for i in range(0, len(rest), 2)]
    return "\n".join(lines)


def _frame(ax, pos, title: str, pad: float) -> None:
    xs = [x for x, _ in pos.values()]
    ys = [y for _, y in pos.values()]
    ax.set_xlim(min(xs) - pad - 0.4, max(xs) + pad)
    ax.set_ylim(min(ys) - pad, max(ys) + pad)
    ax.set_title(title, fontsize=11)
    ax.axis("off")


def _size(d: Diagram) -> tuple[float, float]:
    """Figure inches for one diagram: about 1.25 in per cell column, 0.85 in per network
    column, capped at MAX_WIDTH_IN."""
    if d.kind == "cell":
        pos = _cell_layout(d)
        xs, ys = [p[0] for p in pos.values()], [p[1] for p in pos.values()]
        return (min(MAX_WIDTH_IN, 1.15 * (max(xs) - min(xs)) + 1.6),
                1.3 * (max(ys) - min(ys)) + 1.6)
    pos = _network_layout(d)
    xs, ys = [p[0] for p in pos.values()], [p[1] for p in pos.values()]
    chars = max(len(line) for n in d.nodes for line in _wrap(n.text).splitlines())
    column = max(0.85, 0.075 * chars)  # inches: the widest box fits
    return (min(MAX_WIDTH_IN, column * (max(xs) - min(xs)) + 2.5),
            0.7 * (max(ys) - min(ys)) + 1.6)


def draw(ds: Sequence[Diagram], path: Path, *, title: str = "") -> tuple[int, int]:
    """One PNG with the diagrams stacked (cells side by side in a row, the network below);
    returns its (width, height) in pixels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = [d for d in ds if d.kind == "cell"]
    nets = [d for d in ds if d.kind == "network"]
    rows = ([cells] if cells else []) + [[n] for n in nets]
    sizes = [[_size(d) for d in row] for row in rows]
    width = min(MAX_WIDTH_IN, max(sum(w for w, _ in row) for row in sizes))
    heights = [max(h for _, h in row) for row in sizes]
    fig = plt.figure(figsize=(width, sum(heights)))
    subs = fig.subfigures(len(rows), 1, height_ratios=heights, squeeze=False)[:, 0]
    for sub, row, size in zip(subs, rows, sizes):
        axes = sub.subplots(1, len(row), width_ratios=[w for w, _ in size], squeeze=False)[0]
        for ax, d in zip(axes, row):
            (_draw_cell if d.kind == "cell" else _draw_network)(ax, d)
            if title:
                ax.set_title(f"{title}: {d.title}", fontsize=11)
    fig.savefig(path, dpi=DPI, bbox_inches="tight", pad_inches=0.15)
    plt.close(fig)
    return png_size(path)


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG's header."""
    head = Path(path).read_bytes()[16:24]
    return int.from_bytes(head[:4], "big"), int.from_bytes(head[4:], "big")


def architecture_figure(space: Any, arch: Mapping[str, Any], path: Path, title: str = "") -> bool:
    """The diagrams of ``arch`` in ``space`` (a :class:`nasc.Space`); False when the space has
    no decision to draw."""
    ds = diagrams(space.graph, dict(space.canonical(arch)))
    if not ds:
        return False
    draw(ds, path, title=title)
    return True


def space_figure(space: Any, path: Path) -> bool:
    """The diagrams of a space: its cell types with every candidate edge, its network of
    unshared decisions; False when it has no decision."""
    ds = diagrams(space.graph)
    if not ds:
        return False
    draw(ds, path, title=f"{space.name} (search space)")
    return True


def space_picture(space: Any, path: Path) -> str:
    """``nasc show --overview``'s PNG: :func:`space_figure` when matplotlib is installed; the
    line to print."""
    from nasc.search.pictures import have_matplotlib

    if not have_matplotlib():
        return "(install matplotlib, pip install 'nasc[plot]', to also get a PNG picture)"
    if not space_figure(space, path):
        return f"(no decisions in {space.name}: no overview picture)"
    w, h = png_size(path)
    return f"wrote {path} ({w}x{h} px)"
