"""HR-NAS resource-aware fine-grained search on a compiled supernet (Ding et al., CVPR 2021,
§3.3, eq. 6–7, §4.1).

``nasc.compile(space, method="hrnas")`` relaxes every search unit with an importance factor
(:mod:`nasc.ir.passes.importance`): the BN scale after each depthwise conv (a channel) and of the
transformer projector's BN (a token). Those factors are ordinary BN weights of the supernet, so
they train with the weights; this module holds the rest of the method:

* :func:`importance_factors` — label → the factors of its units;
* :func:`resource_penalty` — eq. 7's ``sum_i Delta_i |alpha_i|`` (add ``lambda *`` it to the task
  loss), ``Delta_i`` from eq. 6 (:func:`nasc.ir.passes.importance.unit_deltas`);
* :func:`derive` — the kept count of each unit label (``|alpha| > eps``), an architecture of the
  space: ``nasc.instantiate(space, derive(net))`` builds the searched network from scratch;
* :func:`shrink` — one step of progressive shrinking: a new, smaller supernet whose IR really
  lacks the removed channels and tokens (:func:`nasc.ir.passes.shrink.shrink`), its weights
  sliced from the old one; it computes what the old one computes (units at or below ``eps``
  are masked there);
* :func:`instantiate` — the shrunk discrete network (an fx ``GraphModule`` of plain PyTorch)
  with the supernet's kept weights.

>>> import nasc, torch
>>> space = nasc.load("hrnas", widths=[[4]], blocks=[[1]], stem=[4, 4], head=[8], last=8,
...                   classes=3, r=1, tokens=2)
>>> net = nasc.compile(space, method="hrnas")
>>> with torch.no_grad():
...     importance_factors(net)["par0.0.0.n"][0] = 0.0     # one token of one block dies
>>> derive(net)["par0.0.0.n"], derive(net)["par0.0.0.c3"]
(1, 4)
>>> small = shrink(net)                                     # its IR has one token there
"""

from __future__ import annotations

from typing import Any

import torch
from nasc.backends.torch.hrnas_ops import KERNELS, LightweightTransformer, MixConv
from nasc.ir.graph import Graph
from nasc.ir.nodes import Op
from nasc.ir.passes.importance import EPS, derive_units, unit_deltas, unit_ops
from nasc.ir.passes.shrink import shrink as shrink_graph
from torch import fx, nn

__all__ = ["derive", "importance_factors", "instantiate", "rebuilt", "resource_penalty",
           "shrink"]


def _eps(net: Any, eps: float | None) -> float:
    if eps is not None:
        return float(eps)
    found = {float(dict(r.params)["eps"]) for r in unit_ops(net.graph)}
    if len(found) > 1:
        raise ValueError(
            f"the supernet's ops were relaxed with several eps {sorted(found)}; pass eps="
        )
    return found.pop() if found else EPS


def _factors_of(module: nn.Module, rec: Op) -> dict[str, torch.Tensor]:
    """Label → the importance factors (BN scales) of ``rec``'s units, in module order."""
    params = dict(rec.params)
    out: dict[str, torch.Tensor] = {}
    for p, lab in params["units"]:
        if isinstance(module, MixConv):
            k = dict((name, k) for k, name in KERNELS)[p]
            bns = dict(zip(module.kernels, module.depthwise_bns()))
            out[lab] = bns[k].weight if k in bns else _none(module)
        elif isinstance(module, LightweightTransformer):
            out[lab] = module.input_norm.weight
        else:  # a transformer with no token left
            out[lab] = _none(module)
    return out


def _device(module: nn.Module) -> torch.device:
    return next((p.device for p in module.parameters()), torch.device("cpu"))


def _none(module: nn.Module) -> torch.Tensor:
    """No factors, on ``module``'s device."""
    return torch.zeros(0, device=_device(module))


def importance_factors(net: Any) -> dict[str, torch.Tensor]:
    """Label → the importance factors of its units (live parameters: differentiable)."""
    out: dict[str, torch.Tensor] = {}
    for rec in unit_ops(net.graph):
        out.update(_factors_of(net.ops[str(rec.id)], rec))
    return out


def resource_penalty(
    net: Any,
    *,
    kind: str = "macs",
    input_size: int | tuple[int, int] = (224, 224),
    normalize: bool = True,
    eps: float | None = None,
) -> torch.Tensor:
    """HR-NAS eq. 7's penalty ``sum_i Delta_i |alpha_i|`` over every search unit (the loss is
    ``L_task + lambda * penalty``). ``Delta_i`` is eq. 6 at the current remaining counts: the
    ``kind`` cost one unit adds (a channel of a ``k x k`` branch: its 1x1, depthwise and 1x1 MACs;
    a token: ``O_T(n') - O_T(n' - 1)``, ``n'`` the tokens with ``|alpha| > eps``). With
    ``normalize`` the ``Delta`` s are divided by their mean over all units, as the authors'
    ``utils/prune.py`` does, so ``lambda`` does not depend on the network's size.
    """
    eps = _eps(net, eps)
    factors = importance_factors(net)
    counts = {lab: int((f.detach().abs() > eps).sum()) for lab, f in factors.items()}
    deltas = unit_deltas(net.graph, kind=kind, input_size=input_size, counts=counts)
    units = sum(f.numel() for f in factors.values())
    scale = 1.0
    if normalize and units:
        scale = units / sum(deltas[lab] * f.numel() for lab, f in factors.items())
    terms = [deltas[lab] * scale * f.abs().sum() for lab, f in factors.items() if f.numel()]
    if not terms:
        return torch.zeros((), device=_device(net))
    return torch.stack(terms).sum()


def derive(net: Any, *, eps: float | None = None) -> dict[str, int]:
    """HR-NAS threshold derivation: label → how many of its units have ``|alpha| > eps``."""
    out = _kept(net, _eps(net, eps))
    out.update({lab: 0 for lab in getattr(net, "hrnas_removed", ())})  # shrunk away earlier
    return out


def _kept(net: Any, eps: float) -> dict[str, int]:
    """Kept counts of the unit labels still in ``net``'s graph."""
    factors = {lab: f.detach().cpu().tolist() for lab, f in importance_factors(net).items()}
    return derive_units(net.graph, factors, eps=eps)


def _kept_states(net: Any, g: Graph, eps: float) -> dict[int, dict[str, torch.Tensor]]:
    """Node id → the state its module has in the shrunk graph ``g`` (unit ops sliced)."""
    out = {}
    for rec in g.nodes_of(Op):
        old = net.ops[str(rec.id)]
        if dict(net.graph[rec.id].params).get("units") and hasattr(old, "kept_state_dict"):
            out[rec.id] = old.kept_state_dict(eps)
        else:
            out[rec.id] = old.state_dict()
    return out


def shrink(net: Any, *, eps: float | None = None) -> Any:
    """One progressive-shrinking step (HR-NAS §3.3): a new supernet without the units whose
    factor is at most ``eps``, inheriting the kept weights; it computes what ``net`` computes."""
    eps = _eps(net, eps)
    g = shrink_graph(net.graph, kept=_kept(net, eps))
    new = rebuilt(net, g)
    for nid, state in _kept_states(net, g, eps).items():
        new.ops[str(nid)].load_state_dict(state)
    return new


def rebuilt(net: Any, g: Graph) -> Any:
    """A fresh supernet of the shrunk graph ``g`` with ``net``'s settings (weights freshly
    initialised): what a shrinking step or a resumed run builds before loading weights."""
    from nasc.backends.torch.library import default_library
    from nasc.backends.torch.supernet import Supernet

    new = Supernet(g, getattr(net, "library", None) or default_library(), affine=net.affine,
                   search=net.search, name=net.space_name, channels_last=net.channels_last,
                   device=_device(net))
    for attr in ("method", "space", "derivation"):
        if hasattr(net, attr):
            setattr(new, attr, getattr(net, attr))
    # labels whose op left the graph (a transformer without tokens): their count stays 0
    left = {lab for r in unit_ops(g) for _, lab in dict(r.params)["units"]}
    gone = {lab for r in unit_ops(net.graph) for _, lab in dict(r.params)["units"]} - left
    new.hrnas_removed = frozenset(getattr(net, "hrnas_removed", frozenset()) | gone)
    return new.train(net.training)


def instantiate(net: Any, *, eps: float | None = None, library: Any = None) -> fx.GraphModule:
    """The searched network: the shrunk graph without importance marks, lowered to plain
    PyTorch, with the supernet's kept weights (equal to ``net`` in eval mode)."""
    from nasc.lowering.fx import lower

    eps = _eps(net, eps)
    g = shrink_graph(net.graph, kept=_kept(net, eps), final=True)
    names: dict[int, str] = {}
    model = lower(
        g,
        library=library,
        affine=net.affine,
        search=net.search,
        name=net.space_name,
        module_names=names,
    )
    for nid, state in _kept_states(net, g, eps).items():
        getattr(model, names[nid]).load_state_dict(state)
    return model
