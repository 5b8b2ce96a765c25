"""A search run's settings, declared once with their checks, and its configuration.

Every numeric argument of ``nasc search`` and ``nasc train`` (:data:`ARGUMENTS`), every search
setting (:data:`RUN_SETTINGS`; the recipes' own are :data:`nasc.search.recipes.SETTINGS`,
checked by :func:`nasc.search.recipes.recipe`) and every space parameter given with ``-D``/``-R``
or stored in an architecture file (:func:`check_space_params`) is checked here, before anything
runs: a value that could only make the run meaningless (``--epochs -1``, ``--batch 0``,
``trials=0``, ``drop_path=nan``) is an error naming the setting and what it takes.

A run's configuration (:func:`config`) is a plain dict (it is stored in the checkpoint and
compared on ``--resume``); :func:`search_space` and :func:`retrain_space` elaborate its spaces.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import Any

import attrs
from nasc.dsl.diagnostics import NasError
from nasc.search import recipes
from nasc.search.data import Splits

import nasc
from nasc import methods

_HRNAS_SCENES = {"task": "segmentation", "stem": [8, 8], "widths": [[8], [8, 16], [8, 16, 24]],
                 "blocks": [[1], [1, 1], [1, 1, 1]], "head": [8, 16, 24], "last": 24, "r": 1,
                 "tokens": 4, "s": 4, "d": 16}

#: Sensible defaults per data set: sizes of the search and retrain networks and budgets.
DEFAULTS: dict[str, dict[str, Any]] = {
    "digits": {
        # 8x8 images: two reductions leave 2x2 maps
        "spaces": {
            "darts": {"search": {"C": 8, "layers": 5}, "retrain": {"C": 16, "layers": 5}},
            "nas_bench_201": {"search": {"C": 8, "N": 1}, "retrain": {"C": 16, "N": 2}},
            # 8x8 images: stages at 8x8, 4x4, 2x2 (the space reads 3-channel images)
            "proxylessnas": {
                "search": {"stem": 8, "first": 8, "stages": [[16, 2, 1], [24, 2, 2], [32, 2, 2]],
                           "last": 64},
                "retrain": {"stem": 16, "first": 16,
                            "stages": [[24, 2, 1], [32, 2, 2], [48, 2, 2]], "last": 128}},
            # blocks at strides 1, 2, 4 of the 8x8 input, m = 3 connections
            "densenas": {
                "search": {"stem": 8, "widths": [8, 8, 16, 16, 24, 24],
                           "strides": [1, 1, 2, 2, 4, 4], "stages": [0, 1, 2, 2, 3, 3],
                           "layers": [0, 1, 1, 1, 1, 0], "last": 64, "m": 3},
                "retrain": {"stem": 16, "widths": [16, 16, 24, 24, 32, 32],
                            "strides": [1, 1, 2, 2, 4, 4], "stages": [0, 1, 2, 2, 3, 3],
                            "layers": [0, 1, 1, 1, 1, 0], "last": 128, "m": 3}},
        },
        "epochs": 8,
        "retrain_epochs": 25,
        "batch": 64,
    },
    "digit-scenes": {
        # 64x64 scenes: DCNAS' four scales at 16x16 .. 2x2; HR-NAS' five modules, tiny widths
        "spaces": {
            "dcnas": {"search": {"L": 2, "F": 8}, "retrain": {"L": 2, "F": 16}},
            "hrnas": {"search": _HRNAS_SCENES, "retrain": _HRNAS_SCENES},
        },
        "epochs": 4, "retrain_epochs": 10, "batch": 16},
}


# ---- checks ------------------------------------------------------------------------------------
Check = Callable[[str, Any], None]


def integer(low: int | None = None, high: int | None = None) -> Check:
    """An integer (not a bool) of at least ``low`` and at most ``high``."""

    def check(name: str, v: Any) -> None:
        if (isinstance(v, bool) or not isinstance(v, int) or (low is not None and v < low)
                or (high is not None and v > high)):
            span = (f" in [{low}, {high}]" if high is not None
                    else f" >= {low}" if low is not None else "")
            raise NasError(f"{name} must be an integer{span}, got {v!r}")

    return check


def number(low: float = 0.0, high: float = math.inf) -> Check:
    """A finite number in ``[low, high]``."""

    def check(name: str, v: Any) -> None:
        ok = not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v)
        if not ok or not low <= v <= high:
            span = f">= {low}" if high == math.inf else f"in [{low}, {high}]"
            raise NasError(f"{name} must be a finite number {span}, got {v!r}")

    return check


def flag(name: str, v: Any) -> None:
    if not isinstance(v, bool):
        raise NasError(f"{name} must be true or false, got {v!r}")


def optional(check: Check) -> Check:
    return lambda name, v: None if v is None else check(name, v)


def one_of(*allowed: Any) -> Check:
    def check(name: str, v: Any) -> None:
        if isinstance(v, bool) or v not in allowed:
            raise NasError(f"{name} must be one of {', '.join(map(str, allowed))}, got {v!r}")

    return check


@attrs.frozen
class Setting:
    """A declared setting: its default, its check and what it means."""

    default: Any
    check: Check
    help: str


#: ``search(...)`` / ``train_architecture(...)`` arguments (``None``: the data set's default).
ARGUMENTS: dict[str, Setting] = {
    "epochs": Setting(None, optional(integer(1)), "search epochs"),
    "retrain_epochs": Setting(None, optional(integer(1)), "retraining epochs"),
    "batch": Setting(None, optional(integer(1)), "batch size"),
    "seed": Setting(0, integer(0, 2**32 - 1), "the run's seed"),
    "order": Setting(1, one_of(1, 2), "DARTS first or second order"),
    "checkpoint_every": Setting(None, optional(integer(1)), "steps between checkpoints"),
}

#: Multi-trial and evolutionary settings (overridable through ``search(..., **settings)``).
RUN_SETTINGS: dict[str, Setting] = {
    "trials": Setting(8, integer(1), "random / evolution: architectures trained"),
    "trial_epochs": Setting(2, integer(1), "... for this many epochs each"),
    "population": Setting(4, integer(1), "regularised evolution's population (Real: P)"),
    "sample": Setting(2, integer(1), "... and tournament size (S)"),
    "spos_population": Setting(20, integer(1), "SPOS' evolutionary search (paper: 50)"),
    "spos_generations": Setting(5, integer(1), "(paper: 20)"),
    "spos_topk": Setting(5, integer(1), "(paper: 10)"),
    "spos_mutation": Setting(0.1, number(0.0, 1.0), "SPOS: probability of redrawing a decision"),
    "calibration_batches": Setting(4, integer(1), "BN re-calibration batches (SPOS, HR-NAS)"),
    # also run random search at the same budget (trials x trial_epochs = search epochs of
    # trainA), retrain its best the same way and report it next to the method
    "compare_random": Setting(False, flag, "also run random search at the same budget"),
}

#: Every search setting and its default: :data:`RUN_SETTINGS` and each paper's recipe settings
#: (:data:`nasc.search.recipes.SETTINGS`: cost weight and table, warm-up, temperatures, ...).
SETTINGS: dict[str, Any] = {**{k: s.default for k, s in RUN_SETTINGS.items()},
                            **recipes.SETTINGS}

#: The multi-trial methods (no supernet).
MULTI_TRIAL: tuple[str, ...] = tuple(methods.names(supernet=False))


def check_arguments(**values: Any) -> None:
    """Each of ``values`` (names of :data:`ARGUMENTS`) passes its declared check."""
    for name, v in values.items():
        ARGUMENTS[name].check(name, v)


def check_settings(settings: Mapping[str, Any]) -> None:
    """Unknown settings and settings of :data:`RUN_SETTINGS` that fail their check."""
    unknown = set(settings) - set(SETTINGS)
    if unknown:
        raise NasError(f"unknown search setting {sorted(unknown)[0]!r}; known: "
                       f"{', '.join(sorted(SETTINGS))}")
    for name, v in settings.items():
        if name in RUN_SETTINGS:
            RUN_SETTINGS[name].check(name, v)


def check_space_params(params: Mapping[str, Any], where: str) -> None:
    """Space parameters are sizes, counts, rates and names: every number in them (lists
    included) must be finite and not negative."""

    def walk(name: str, v: Any) -> None:
        if isinstance(v, bool) or isinstance(v, str) or v is None:
            return
        if isinstance(v, (list, tuple)):
            for i, item in enumerate(v):
                walk(f"{name}[{i}]", item)
            return
        if isinstance(v, (int, float)) and not (math.isfinite(v) and v >= 0):
            raise NasError(f"{where}: space parameter {name} must be a finite number >= 0, "
                           f"got {v!r}")

    for name, v in params.items():
        walk(name, v)


# ---- the run's configuration -------------------------------------------------------------------
def _sizes(space: str, data: str, which: str) -> dict[str, Any]:
    cfg = DEFAULTS.get(data, DEFAULTS["digits"])
    return dict(cfg["spaces"].get(space, {}).get(which, {}))


def config(space: str, method: str, splits: Splits, *, epochs, retrain_epochs, seed, batch,
           space_params, retrain_params, order, checkpoint_every, settings) -> dict[str, Any]:
    """The run's configuration, every setting checked (the arguments are checked by
    :func:`check_arguments` before the data is loaded)."""
    m = methods.get(method)
    if order == 2 and not m.darts_family:
        raise NasError(f"second-order architecture gradients need a DARTS-family method, "
                       f"not {method!r}")
    check_settings(settings)
    check_space_params(space_params or {}, "-D")
    check_space_params(retrain_params or {}, "-R")
    recipes.recipe(method, settings, epochs=1, input_size=(1, 1))  # its settings apply
    base = DEFAULTS.get(splits.name, DEFAULTS["digits"])
    return {
        "space": space,
        "method": method,
        "order": order,
        "data": splits.name,
        "seed": seed,
        "epochs": base["epochs"] if epochs is None else epochs,
        "retrain_epochs": base["retrain_epochs"] if retrain_epochs is None else retrain_epochs,
        "batch": base["batch"] if batch is None else batch,
        "common": common_params(space, splits),
        "search_sizes": _sizes(space, splits.name, "search"),
        "retrain_sizes": {**_sizes(space, splits.name, "retrain"), **(retrain_params or {})},
        "space_params": dict(space_params or {}),
        "checkpoint_every": checkpoint_every,
        "settings": {**SETTINGS, **settings},
    }


def differences(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    """The keys two configurations disagree on (``checkpoint_every`` may change on resume)."""
    return [k for k in sorted(set(a) | set(b))
            if k != "checkpoint_every" and json.dumps(a.get(k), sort_keys=True, default=str)
            != json.dumps(b.get(k), sort_keys=True, default=str)]


def search_space(cfg: Mapping[str, Any]) -> nasc.Space:
    """The search network's space of a run configuration."""
    return nasc.load(cfg["space"], **{**cfg["common"], **cfg["search_sizes"],
                                      **cfg["space_params"]})


def retrain_space(cfg: Mapping[str, Any]) -> nasc.Space:
    """The retrained network's space of a run configuration."""
    return nasc.load(cfg["space"], **{**cfg["common"], **cfg["retrain_sizes"]})


def _declared(space: str) -> list[str] | None:
    """The parameters ``space`` (a stdlib name or a .nas file) declares, read from its
    declaration without elaborating it (``None`` when it cannot be read here)."""
    from nasc.dsl import ast
    from nasc.dsl.files import read_regular
    from nasc.dsl.parser import MAX_FILE_BYTES, parse_module

    from nasc import stdlib
    from nasc.space import locate

    where = locate(space)
    path = stdlib.path_of(where) if isinstance(where, str) else where
    try:
        module = parse_module(read_regular(path, MAX_FILE_BYTES), file=str(path))
    except (OSError, TypeError, NasError):
        return None  # nasc.load reports it
    defs = [i for i in module.items if isinstance(i, ast.SpaceDef)]
    named = [d for d in defs if d.name == space] or defs
    return [p.name for p in named[0].params] if len(named) == 1 else None


def common_params(space: str, splits: Splits) -> dict[str, Any]:
    """The data's class count and input channels, for the spaces that declare them; a space
    with a fixed input (no ``in_channels``) is checked against the data."""
    declared = _declared(space)
    common = {"classes": splits.classes, "in_channels": splits.in_channels}
    if declared is None:
        return common
    out = {k: v for k, v in common.items() if k in declared}
    if "in_channels" not in declared:
        from nasc.ir.nodes import Input

        try:
            fixed = [r.type.channels for r in nasc.load(space, **out).graph.nodes_of(Input)]
        except NasError:
            return out  # it needs other parameters: the run's own load checks them
        if fixed and fixed[0] != splits.in_channels:
            raise NasError(f"space {space!r} reads {fixed[0]}-channel images and has no "
                           f"in_channels parameter; the data {splits.name!r} has "
                           f"{splits.in_channels} channel(s)")
    return out


__all__ = ["ARGUMENTS", "DEFAULTS", "MULTI_TRIAL", "RUN_SETTINGS", "SETTINGS", "Setting",
           "check_arguments", "check_settings", "check_space_params", "common_params", "config",
           "differences", "retrain_space", "search_space"]
