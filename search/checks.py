"""Checks before the first step: the search space, the retrain space and the data agree.

A run that can only fail at its end (the retrained network lacks a decision the search makes,
an auxiliary head that does not fit the images, a test split of other images) fails here, at
once: an architecture of the search space is taken into the retrain space, and the networks are
built on PyTorch's ``meta`` device (shapes only, no memory, no arithmetic) and run at every
split's shape, loss included.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

import torch
from nasc.dsl.diagnostics import NasError
from nasc.ir.decisions import DecisionError
from nasc.search import recipes
from nasc.search.data import Splits

import nasc


def _params(cfg: Mapping[str, Any], which: str) -> str:
    sizes = {**cfg[f"{which}_sizes"], **(cfg["space_params"] if which == "search" else {})}
    return ", ".join(f"{k}={v}" for k, v in sorted(sizes.items())) or "its defaults"


def check_run(cfg: Mapping[str, Any], sp: nasc.Space, rs: nasc.Space, splits: Splits) -> None:
    """The run's spaces and data against each other (see the module docstring)."""
    if not sp.specs:
        raise NasError(f"the search space {cfg['space']!r} ({_params(cfg, 'search')}) has no "
                       "choices: there is nothing to search")
    arch = sp.sample(random.Random(cfg["seed"]))
    try:
        retrained = rs.canonical(dict(arch))
    except (NasError, DecisionError) as e:
        raise NasError(
            f"the retrained network cannot take the searched architectures: {e}. The search "
            f"space ({_params(cfg, 'search')}) and the retrain space "
            f"({_params(cfg, 'retrain')}) must make the same decisions: give the retrained "
            "network the same structure (-R) or search one that has its decisions (-D)"
        ) from None
    check_network_runs(sp, arch, splits, what="the search network",
                       which=("train_a", "train_b"))
    check_network_runs(rs, retrained, splits, what="the retrained network")


def check_network_runs(space: nasc.Space, arch: Mapping[str, Any], splits: Splits, *,
                       what: str, which: tuple[str, ...] = ("train_a", "train_b", "test")
                       ) -> None:
    """``arch`` of ``space`` built on the meta device and run, loss included, on a batch of
    each split in ``which`` (their shapes only): a shape that does not fit is an error naming
    the split. A network whose ops cannot run on the meta device is not checked."""
    try:
        model = nasc.instantiate(space, arch, device="meta")
    except NotImplementedError:
        return
    main = recipes.main_output(space)
    seen: set[tuple[tuple[int, ...], tuple[int, ...]]] = set()
    for name in which:
        x, y = getattr(splits, name)
        key = (tuple(x.shape[1:]), tuple(y.shape[1:]))
        if key in seen:
            continue
        seen.add(key)
        xb = torch.empty(2, *x.shape[1:], dtype=x.dtype, device="meta")
        yb = torch.empty(2, *y.shape[1:], dtype=y.dtype, device="meta")
        try:
            with torch.no_grad():
                recipes.retrain_loss(model(xb), yb, main, 0.4)
        except NotImplementedError:
            return
        except (RuntimeError, ValueError, IndexError) as e:
            if "meta" in str(e).lower():  # an op that needs values: not checkable here
                return
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise NasError(f"{what} ({space.name}) cannot run on the data's {name} split "
                           f"(inputs {list(x.shape[1:])}, labels {list(y.shape[1:])}): "
                           f"{first}") from None


__all__ = ["check_network_runs", "check_run"]
