"""Checks over symbolic values: a value choice is fine where it is used when every decision of
the choices it depends on is (up to :data:`~nasc.dsl.limits.CHECKED_ASSIGNMENTS` of them)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from nasc.dsl.diagnostics import NasError
from nasc.dsl.limits import CHECKED_ASSIGNMENTS
from nasc.dsl.values import show
from nasc.ir.location import SourceLoc
from nasc.ir.sym import Sym, sampled_assignments


def assignments(labels: Iterable[str], domains: Mapping[str, tuple]) -> list[dict[str, Any]]:
    """The decisions to check ``labels`` under (all, or a fixed-seed sample)."""
    return sampled_assignments(labels, domains, CHECKED_ASSIGNMENTS)


def when(env: Mapping[str, Any]) -> str:
    """``env`` as the end of an error message: ``a=1, b="x"``."""
    return ", ".join(f"{k}={show(val)}" for k, val in env.items())


def value_at(v: Sym, env: Mapping[str, Any], error: Callable[..., NasError], loc: SourceLoc):
    """``v`` under the decisions ``env``; a division by zero there is the user's error."""
    try:
        return v.evaluate(env)
    except ZeroDivisionError:
        raise error(f"division by zero when {when(env)}", loc) from None


__all__ = ["assignments", "value_at", "when"]
