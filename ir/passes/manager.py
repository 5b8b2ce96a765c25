"""The pass manager: a checked pipeline of pure graph-to-graph passes.

>>> from nasc.ir.passes.relax import relax
>>> pm = PassManager([registered("relax")], verify_each=True)
>>> pm.names()
['relax']
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs
from nasc.ir.gcpause import gc_paused
from nasc.ir.graph import Graph
from nasc.ir.verify import verify


class PassError(ValueError):
    """A pass cannot apply to this graph (the message says why and where)."""


@attrs.frozen(kw_only=True)
class Pass:
    """A named pure function ``Graph -> Graph`` with its preconditions and effects.

    ``requires``: properties the input graph must have; ``provides``: properties the output
    has; ``removes``: properties the output no longer has. Options are bound with
    :meth:`with_options`.
    """

    name: str
    fn: Callable[..., Graph]
    requires: frozenset[str] = frozenset()
    provides: frozenset[str] = frozenset()
    removes: frozenset[str] = frozenset()
    options: tuple[tuple[str, Any], ...] = ()

    def with_options(self, **options: Any) -> Pass:
        return attrs.evolve(self, options=tuple(sorted({**dict(self.options), **options}.items())))

    def __call__(self, g: Graph) -> Graph:
        return self.fn(g, **dict(self.options))


_REGISTRY: dict[str, Pass] = {}


def register(p: Pass) -> Pass:
    """Make ``p`` available by name to pipelines (``passes=["relax", ...]``)."""
    _REGISTRY[p.name] = p
    return p


def registered(name: str, **options: Any) -> Pass:
    """The registered pass ``name``, with ``options`` bound."""
    if name not in _REGISTRY:
        raise PassError(f"no pass {name!r}; known: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name].with_options(**options)


def properties(g: Graph) -> set[str]:
    """What a graph is, as passes see it."""
    props = {"typed"}
    if any(type(r).__name__ != "ValueChoice" for r in g.choice_nodes()):
        props.add("choices")
    else:
        props.add("relaxed")  # no op, input or repeat choice is left unrelaxed
    if not any(type(r).__name__ == "Align" for r in g):
        props.add("aligned")
    return props


class PassManager:
    """Runs passes in order. Before the first pass runs, the whole pipeline is checked against
    the input graph's :func:`properties`, each pass's ``provides`` and ``removes`` carried
    forward (a pipeline that cannot apply fails before any work); each pass's requirements are
    checked again on the real graph it receives."""

    def __init__(self, passes: Sequence[Pass | str], *, verify_each: bool = False) -> None:
        self.passes = [registered(p) if isinstance(p, str) else p for p in passes]
        self.verify_each = verify_each

    def names(self) -> list[str]:
        return [p.name for p in self.passes]

    def check(self, have: set[str]) -> None:
        """Raise :class:`PassError` naming the first pass whose requirements the pipeline does
        not meet, starting from a graph with properties ``have``."""
        have = set(have)
        for i, p in enumerate(self.passes):
            missing = p.requires - have
            if missing:
                after = f" after {', '.join(self.names()[:i])}" if i else ""
                raise PassError(f"pass {p.name!r} needs a graph that is {sorted(missing)}, "
                                f"which the pipeline does not give it{after}")
            have = (have - p.removes) | p.provides

    def run(self, g: Graph) -> Graph:
        self.check(properties(g))
        with gc_paused():  # (passes copy whole graphs: see nasc.ir.gcpause)
            for p in self.passes:
                have = properties(g)
                missing = p.requires - have
                if missing:
                    raise PassError(f"pass {p.name!r} needs a graph that is {sorted(missing)}")
                g = p(g)
                if self.verify_each:
                    verify(g)
        return g
