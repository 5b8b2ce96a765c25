"""Lowering a choice-free IR graph to a ``torch.fx.GraphModule``.

The fx graph is built through fx's Graph API (``placeholder``, ``call_module``,
``call_function``, ``output``), checked with ``graph.lint()``, and wrapped in a
``GraphModule`` whose ``.code`` is plain PyTorch: submodules for ops, ``operator.add`` for sums,
``torch.cat`` for concatenations. One output gives a tensor; several give a tuple in the order of
the space's ``output`` statements.
"""

from __future__ import annotations

import operator
import re

import torch
from nasc.backends.torch.library import OpCall, OpLibrary, default_library
from nasc.ir.graph import Graph
from nasc.ir.nodes import Align, Input, Merge, Op, Output
from nasc.ir.sym import Sym
from torch import fx, nn


class LoweringError(ValueError):
    """The graph cannot be lowered as it is (choices left, unaligned types, unknown ops)."""


def _module_name(rec: Op, used: set[str]) -> str:
    base = re.sub(r"\W", "_", f"{rec.op}_{rec.id}")
    name, i = base, 1
    while name in used:
        name, i = f"{base}_{i}", i + 1
    used.add(name)
    return name


def lower(
    g: Graph,
    *,
    library: OpLibrary | None = None,
    affine: bool = True,
    search: bool = False,
    name: str = "Network",
    module_names: dict[int, str] | None = None,
) -> fx.GraphModule:
    """The discrete network of a choice-free, aligned graph ``g`` as an fx ``GraphModule``.

    ``module_names``, when given, receives ``IR node id -> submodule name`` for every op.
    """
    library = library or default_library()
    if g.choice_nodes() or g.relaxed_nodes():
        raise LoweringError("the graph still has choices; resolve an architecture first")
    root = nn.Module()
    graph = fx.Graph()
    env: dict[int, fx.Node] = {}
    outputs: list[fx.Node] = []
    used: set[str] = set()
    for rec in g:
        ins = [env[i] for i in g.inputs(rec.id)]
        if isinstance(rec, Input):
            env[rec.id] = graph.placeholder(rec.name)
        elif isinstance(rec, Output):
            outputs.append(ins[0])
        elif isinstance(rec, Op):
            _check_concrete(rec)
            call = OpCall(
                op=rec.op, params=dict(rec.params),
                in_types=tuple(g[i].type for i in g.inputs(rec.id)), out_type=rec.type,
                affine=affine, search=search,
            )
            try:
                module = library.build(call)
            except KeyError as e:
                raise LoweringError(str(e.args[0])) from None
            mname = _module_name(rec, used)
            if module_names is not None:
                module_names[rec.id] = mname
            root.add_module(mname, module)
            env[rec.id] = graph.call_module(mname, tuple(ins))
        elif isinstance(rec, Merge):
            if rec.mode == "concat":
                env[rec.id] = graph.call_function(torch.cat, (ins,), {"dim": 1})
            else:
                acc = ins[0]
                for other in ins[1:]:
                    acc = graph.call_function(operator.add, (acc, other))
                env[rec.id] = acc
        elif isinstance(rec, Align):
            raise LoweringError("the graph has align nodes; run insert_alignment first")
        else:  # pragma: no cover - value choices were removed by resolution
            raise LoweringError(f"cannot lower {type(rec).__name__}")
    graph.output(outputs[0] if len(outputs) == 1 else tuple(outputs))
    graph.lint()
    return fx.GraphModule(root, graph, class_name=re.sub(r"\W", "_", name))


def _check_concrete(rec: Op) -> None:
    for k, v in rec.params:
        if isinstance(v, Sym):
            raise LoweringError(f"op {rec.op!r} parameter {k} is still symbolic ({v})")
