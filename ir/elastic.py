"""Elastic ops: which op nodes a value choice parametrises, and the calls they can make.

Once-for-All (Cai et al., 2020, §3.2), BigNAS (Yu et al., 2020) and AutoFormer (Chen et al.,
2021) share one weight per op across every value its value choices can take: the op is built
once at its *largest* call, and a smaller call runs on a slice of those weights. What is elastic
is derived from the IR alone: an :class:`~nasc.ir.nodes.Op` is elastic when a value-choice
symbol reaches one of its parameters or the channels of its input or output types. For each
such op, :func:`elastic_ops` lists the labels it depends on, every distinct call those labels
can make (concrete parameters and channel counts, the decisions enumerated exactly up to a
limit), and the largest call: every numeric field at its maximum over those calls. The backend
builds the largest call and checks that every other call fits inside it.

>>> import nasc
>>> space = nasc.parse('''import mobile_ops
... space s() {
...     input x: image(16)
...     output mbconv(x, 16, k=choose {3, 5, 7} @"k", e=choose {3, 6} @"e")
... }''')
>>> op = next(iter(elastic_ops(space.graph).values()))
>>> sorted(op.labels), len(op.calls), dict(op.largest.params)["k"], dict(op.largest.params)["e"]
(['e', 'k'], 6, 7, 6)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
from nasc.ir.graph import Graph
from nasc.ir.nodes import Op, ValueChoice
from nasc.ir.sym import assignments, evaluate, labels_of

#: The most assignments of one op's labels that are enumerated (a few value choices of a few
#: values each; a space that needs more is reported, not approximated).
CALL_LIMIT = 4096


class ElasticError(ValueError):
    """An op's value choices cannot share one weight (the message says which op and why)."""

    def __init__(self, message: str, loc: Any = None) -> None:
        super().__init__(message)
        self.loc = loc


@attrs.frozen(kw_only=True)
class Call:
    """One concrete call of an op: parameters, input channels and output channels."""

    params: tuple[tuple[str, Any], ...]
    in_channels: tuple[int, ...]
    out_channels: int


@attrs.frozen(kw_only=True)
class ElasticOp:
    """An op node whose call depends on value choices.

    ``calls`` maps each assignment of ``labels`` (sorted ``(label, value)`` pairs) to the
    call it makes; ``largest`` has every numeric field at its maximum over the calls, and each
    non-numeric field at its value in the first call (all calls must agree on the structure
    such fields decide: the backend checks).
    """

    id: int
    op: str
    labels: frozenset[str]
    calls: Mapping[tuple[tuple[str, Any], ...], Call]
    largest: Call

    def call(self, decisions: Mapping[str, Any]) -> Call:
        """The call this op makes under ``decisions`` (an architecture, or any mapping that
        decides every label of the op)."""
        key = tuple(sorted((lab, decisions[lab]) for lab in self.labels))
        return self.calls[key]


def elastic_ops(g: Graph, *, limit: int = CALL_LIMIT) -> dict[int, ElasticOp]:
    """Every elastic op of ``g`` by node id (see the module docstring)."""
    domains = {rec.label: tuple(rec.values) for rec in g.nodes_of(ValueChoice)}
    out: dict[int, ElasticOp] = {}
    for rec in g.nodes_of(Op):
        in_types = tuple(g[i].type for i in g.inputs(rec.id))
        fields = (rec.params, tuple(t.channels for t in in_types), rec.type.channels)
        labels = labels_of(tuple(v for _, v in rec.params)) | labels_of(fields[1]) | labels_of(
            fields[2])
        if not labels:
            continue
        envs = assignments(labels, domains, limit)
        if envs is None:
            raise ElasticError(
                f"op {rec.op!r} depends on {len(labels)} value choices "
                f"({', '.join(sorted(labels))}) with over {limit} combinations: too many calls "
                "to check one shared weight against", rec.loc)
        calls = {}
        for env in envs:
            calls[tuple(sorted(env.items()))] = Call(
                params=tuple((k, evaluate(v, env)) for k, v in rec.params),
                in_channels=tuple(int(evaluate(c, env)) for c in fields[1]),
                out_channels=int(evaluate(fields[2], env)))
        out[rec.id] = ElasticOp(id=rec.id, op=rec.op, labels=labels, calls=calls,
                                largest=_largest(list(calls.values())))
    return out


def _largest(calls: list[Call]) -> Call:
    first = calls[0]
    params = []
    for i, (name, value) in enumerate(first.params):
        values = [c.params[i][1] for c in calls]
        params.append((name, max(values) if all(_numeric(v) for v in values) else value))
    return Call(params=tuple(params),
                in_channels=tuple(max(c.in_channels[i] for c in calls)
                                  for i in range(len(first.in_channels))),
                out_channels=max(c.out_channels for c in calls))


def _numeric(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


__all__ = ["CALL_LIMIT", "Call", "ElasticError", "ElasticOp", "elastic_ops"]
