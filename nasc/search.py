"""``nasc search``: find an architecture on real data, derive it, retrain it, report.

The gradient methods follow DARTS' bilevel scheme (first order): architecture parameters step on
a batch of ``train_b``, weights on a batch of ``train_a`` (DARTS §2.3; DCNAS §3.4 trainA/trainB);
sampling methods draw their paths per step from the run's seed. The derived architecture is
retrained from scratch on both training halves and evaluated on the held-out test split.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import torch
import torch.nn.functional as F

import nasc
from nasc.data import Splits, load_data

#: Sensible defaults per data set: sizes of the search and retrain networks and budgets.
DEFAULTS: dict[str, dict[str, Any]] = {
    "digits": {
        # 8x8 images: two reductions leave 2x2 maps
        "spaces": {
            "darts": {"search": {"C": 8, "layers": 5}, "retrain": {"C": 16, "layers": 5}},
            "nas_bench_201": {"search": {"C": 8, "N": 1}, "retrain": {"C": 16, "N": 2}},
        },
        "epochs": 8,
        "retrain_epochs": 25,
        "batch": 64,
    },
}


@attrs.frozen(kw_only=True)
class SearchResult:
    architecture: nasc.Architecture
    report: dict[str, Any]
    out: Path | None


def _batches(x, y, batch: int, gen: torch.Generator):
    perm = torch.randperm(len(y), generator=gen)
    for i in range(0, len(y), batch):
        idx = perm[i : i + batch]
        yield x[idx], y[idx]


def _accuracy(model, x, y, batch: int = 256) -> float:
    model.eval()
    with torch.no_grad():
        correct = sum(
            (model(x[i : i + batch]).argmax(1) == y[i : i + batch]).sum().item()
            for i in range(0, len(y), batch)
        )
    model.train()
    return correct / len(y)


def _atomic_save(obj: Any, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _write(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def search(
    space: str,
    *,
    method: str = "darts",
    data: str | Splits = "digits",
    epochs: int | None = None,
    retrain_epochs: int | None = None,
    seed: int = 0,
    out: str | Path | None = None,
    progress: bool = True,
    space_params: Mapping[str, Any] | None = None,
) -> SearchResult:
    """Search ``space`` with ``method`` on ``data``; retrain and evaluate the derived network."""
    from rich.progress import (
        BarColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    splits = load_data(data, seed) if isinstance(data, str) else data
    cfg = DEFAULTS.get(splits.name, DEFAULTS["digits"])
    epochs = cfg["epochs"] if epochs is None else epochs
    retrain_epochs = cfg["retrain_epochs"] if retrain_epochs is None else retrain_epochs
    batch = cfg["batch"]
    common = {"in_channels": splits.in_channels, "classes": splits.classes}
    sizes = cfg["spaces"].get(space, {"search": {}, "retrain": {}})
    sp = nasc.load(space, **{**common, **sizes["search"], **(space_params or {})})
    torch.manual_seed(seed)
    net = nasc.compile(sp, method=method)
    w_opt = torch.optim.SGD(net.weight_parameters(), lr=0.05, momentum=0.9, weight_decay=3e-4)
    a_opt = torch.optim.Adam(net.arch_parameters(), lr=6e-3, betas=(0.5, 0.999), weight_decay=1e-3)
    steps = epochs * math.ceil(len(splits.train_a[1]) / batch)
    w_sched = torch.optim.lr_scheduler.CosineAnnealingLR(w_opt, max(steps, 1), eta_min=1e-3)
    out_dir = Path(out) if out is not None else None
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        metrics_file = (out_dir / "metrics.jsonl").open("w")
    gen = torch.Generator().manual_seed(seed)
    sampling = any(getattr(r, "sampling", None) for r in net.graph.relaxed_nodes())
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
    )
    timings: dict[str, float] = {}
    history: list[dict[str, Any]] = []
    with Progress(*columns, disable=not progress) as bar:
        task = bar.add_task(f"search {space} ({method})", total=steps)
        t0 = time.perf_counter()
        step = 0
        for epoch in range(epochs):
            b_iter = _batches(*splits.train_b, batch, gen)
            losses = []
            for xa, ya in _batches(*splits.train_a, batch, gen):
                try:
                    xb, yb = next(b_iter)
                except StopIteration:
                    b_iter = _batches(*splits.train_b, batch, gen)
                    xb, yb = next(b_iter)
                if sampling:
                    net.sample(seed, step, paths=2)
                a_opt.zero_grad()
                F.cross_entropy(net(xb), yb).backward()
                a_opt.step()
                if sampling:
                    net.sample(seed, step)
                w_opt.zero_grad()
                loss = F.cross_entropy(net(xa), ya)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(list(net.weight_parameters()), 5.0)
                w_opt.step()
                w_sched.step()
                losses.append(loss.item())
                step += 1
                bar.advance(task)
            if sampling:
                net.relax()
            row = {
                "phase": "search",
                "epoch": epoch,
                "train_loss": sum(losses) / len(losses),
                "valid_accuracy": _accuracy(net, *splits.train_b),
                "alpha": {
                    lab: torch.softmax(a.detach(), -1).tolist()
                    for lab, a in zip(net.labels, net.alpha)
                },
            }
            history.append(row)
            if out_dir is not None:
                metrics_file.write(json.dumps(row) + "\n")
                metrics_file.flush()
                _atomic_save(
                    {"epoch": epoch, "supernet": net.state_dict()}, out_dir / "checkpoint.pt"
                )
        timings["search_s"] = time.perf_counter() - t0
        arch = sp.canonical(net.derive())
        retrain_space = nasc.load(space, **{**common, **sizes["retrain"]})
        arch = retrain_space.canonical(arch)
        torch.manual_seed(seed)
        model = nasc.instantiate(retrain_space, arch)
        x, y = splits.train
        r_steps = retrain_epochs * math.ceil(len(y) / batch)
        opt = torch.optim.SGD(
            model.parameters(), lr=0.05, momentum=0.9, weight_decay=3e-4, nesterov=True
        )
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(r_steps, 1))
        task = bar.add_task("retrain derived network", total=r_steps)
        t0 = time.perf_counter()
        for epoch in range(retrain_epochs):
            losses = []
            for xb, yb in _batches(x, y, batch, gen):
                opt.zero_grad()
                loss = F.cross_entropy(model(xb), yb)
                loss.backward()
                opt.step()
                sched.step()
                losses.append(loss.item())
                bar.advance(task)
            row = {"phase": "retrain", "epoch": epoch, "train_loss": sum(losses) / len(losses)}
            if out_dir is not None:
                metrics_file.write(json.dumps(row) + "\n")
                metrics_file.flush()
        timings["retrain_s"] = time.perf_counter() - t0
    test_acc = _accuracy(model, *splits.test)
    from nasc.ir.cost import cost

    hw = tuple(splits.test[0].shape[2:])
    resolved = retrain_space.resolve(arch)
    report = {
        "space": space,
        "method": method,
        "data": splits.name,
        "seed": seed,
        "search_epochs": epochs,
        "retrain_epochs": retrain_epochs,
        "search_valid_accuracy": history[-1]["valid_accuracy"] if history else None,
        "test_accuracy": test_acc,
        "parameters": sum(p.numel() for p in model.parameters()),
        "flops": cost(resolved.graph, "macs", input_size=hw),
        "timings": timings,
        "architecture": arch.to_dict(),
    }
    if out_dir is not None:
        metrics_file.close()
        _write(out_dir / "architecture.json", arch.to_json(indent=2) + "\n")
        _write(out_dir / "derived.nas", resolved.to_nas())
        _write(out_dir / "report.json", json.dumps(report, indent=2) + "\n")
        from nasc.ir.dot import to_dot

        _write(out_dir / "derived.dot", to_dot(resolved.graph, f"{space} derived"))
    return SearchResult(architecture=arch, report=report, out=out_dir)
