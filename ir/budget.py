"""Budgets: upper bounds on a network's costs, and drawing architectures within them.

A budget is written as the command line takes it, ``macs=300M,params=5M`` (also
``latency=20`` with a latency table from ``nasc profile``): each kind is a cost the IR cost
models compute (:func:`nasc.ir.cost.cost`), with an optional ``K``, ``M`` or ``G`` suffix
(10^3, 10^6, 10^9). A network fits when every cost is at most its bound. Budgets are checked on
the resolved IR, before any module is built or any candidate scored.

>>> b = Budget.parse("macs=300M, params=5.5M")
>>> b.limits
(('macs', 300000000.0), ('params', 5500000.0))
>>> str(b)
'macs<=300M, params<=5.5M'
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Mapping
from typing import Any

import attrs
from nasc.ir import decisions as dec
from nasc.ir.cost.model import cost
from nasc.ir.cost.stdlib import DEFAULT
from nasc.ir.cost.table import CostTable
from nasc.ir.graph import Graph
from nasc.ir.resolve import resolve_graph

_SUFFIX = {"": 1.0, "K": 1e3, "M": 1e6, "G": 1e9}
_ITEM = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"
                   r"\s*([KMG]?)\s*$")

#: Draws tried before :func:`sample_within` reports that nothing fits.
TRIES = 1000


class BudgetError(ValueError):
    """A budget that cannot be read, or one that no drawn network fits."""


@attrs.frozen
class Budget:
    """Bounds ``(kind, at most)``, one per cost kind, in the order given."""

    limits: tuple[tuple[str, float], ...]

    @staticmethod
    def parse(spec: str | Mapping[str, Any] | Budget) -> Budget:
        """From ``"macs=300M,params=5M"`` or ``{"macs": 300e6}``."""
        if isinstance(spec, Budget):
            return spec
        if isinstance(spec, Mapping):
            items = [(str(k), v) for k, v in spec.items()]
        else:
            items = []
            for part in str(spec).split(","):
                m = _ITEM.match(part)
                if m is None:
                    raise BudgetError(f"budget {part.strip()!r}: expected kind=number with an "
                                      "optional K, M or G suffix, e.g. macs=300M")
                items.append((m.group(1), float(m.group(2)) * _SUFFIX[m.group(3)]))
        limits = []
        for kind, v in items:
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) \
                    or v <= 0:
                raise BudgetError(f"budget {kind}: the bound must be a positive number, got {v!r}")
            if kind in dict(limits):
                raise BudgetError(f"budget {kind} is given twice")
            limits.append((kind, float(v)))
        if not limits:
            raise BudgetError("an empty budget")
        return Budget(tuple(limits))

    def costs(self, graph: Graph, *, input_size: Any = (32, 32),
              table: CostTable = DEFAULT) -> dict[str, int | float]:
        """The budget's kinds of cost of a choice-free ``graph``."""
        return {kind: cost(graph, kind, input_size=input_size, table=table)
                for kind, _ in self.limits}

    def admits(self, costs: Mapping[str, int | float]) -> bool:
        return all(costs[kind] <= bound for kind, bound in self.limits)

    def __str__(self) -> str:
        return ", ".join(f"{kind}<={_short(bound)}" for kind, bound in self.limits)


def _short(v: float) -> str:
    for suffix, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if v >= scale:
            return f"{v / scale:g}{suffix}"
    return f"{v:g}"


def sample_within(graph: Graph, specs: Mapping[str, dec.LabelSpec], budget: Budget,
                  rng: random.Random, *, input_size: Any = (32, 32), table: CostTable = DEFAULT,
                  tries: int = TRIES) -> tuple[dict[str, Any], dict[str, int | float]]:
    """Decisions drawn uniformly until the resolved network fits ``budget`` (rejection
    sampling: every fitting network keeps its uniform probability), with its costs. After
    ``tries`` draws that do not fit, :class:`BudgetError` names the smallest costs seen."""
    smallest: dict[str, int | float] | None = None
    for _ in range(tries):
        decisions = dec.sample(specs, rng)
        costs = budget.costs(resolve_graph(graph, decisions), input_size=input_size, table=table)
        if budget.admits(costs):
            return decisions, costs
        if smallest is None or _below(costs, smallest, budget):
            smallest = costs
    seen = ", ".join(f"{k}={_short(float(v))}" for k, v in (smallest or {}).items())
    raise BudgetError(f"no network within the budget ({budget}) in {tries} draws; the "
                      f"smallest drawn has {seen}")


def _below(a: Mapping[str, float], b: Mapping[str, float], budget: Budget) -> bool:
    """Whether ``a`` exceeds the budget by less than ``b`` (the largest relative excess)."""
    def excess(c):
        return max(c[k] / bound for k, bound in budget.limits)
    return excess(a) < excess(b)


__all__ = ["Budget", "BudgetError", "TRIES", "sample_within"]
