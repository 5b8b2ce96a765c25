"""The search methods nasc knows: one :class:`Method` record per method, registered once.

Everything that makes a method what it is lives in its record: the passes ``nasc.compile`` runs
and their settings, the supernet's settings, the Gumbel temperature schedule, how the supernet
derives an architecture, and what the search loop (:mod:`nasc.search`) does differently from a
first-order DARTS step. ``nasc.compile`` reads :attr:`Method.compile`; the search loop reads the
other fields (its steps in :mod:`nasc.search.steps`, its recipes in :mod:`nasc.search.recipes`,
its phases in :mod:`nasc.search.phases`). Nothing else compares method names. This module
imports neither torch nor the search loop.

>>> from nasc.methods import get
>>> get("gdas").temperatures
(10.0, 0.1, 'linear')
>>> get("spos").after_search, get("random").search
('evolve', 'trials')

How to add a method (say OFA, BigNAS, AutoFormer or FBNet):

1. Add one ``Method(...)`` to :data:`REGISTRY`, citing the paper. ``compile`` is the pass
   recipe as ``nasc.compile`` options (see :func:`nasc.compile` for each option), or ``None``
   for a method without a supernet (a multi-trial search). An FBNet record, for instance, is
   ``compile={"weighting": "gumbel", "hard": False, "tau": 5.0, "zero": False,
   "edge_weights": "inputs"}``, ``temperatures=(5.0, 0.2, "exponential")``,
   ``cost="densenas"`` with its ``recipe`` defaults: no new code at all.
2. Only what is really new needs code, behind a new value of one field: a new pass (register it
   in :mod:`nasc.ir.passes` and name its option in ``compile``), a new cost term
   (``cost``: :func:`nasc.search.recipes.arch_loss`), a new kind of architecture step
   (``arch_step``: :func:`nasc.search.steps.train_step`), a new weight step (OFA's progressive
   shrinking, BigNAS' sandwich rule: a new field, say ``weight_step``, read in the same
   function), or a new phase after
   the supernet's training (``after_search``: :mod:`nasc.search.phases`; SPOS' ``"evolve"``
   is what OFA and BigNAS would reuse). The search loop dispatches on these values, never on the
   method's name.
3. Recipe settings the method takes go into ``recipe`` with their defaults (they must be
   declared in :data:`nasc.search.recipes.SETTINGS`); ``nasc search --method NAME`` then takes
   them, checks them and writes them into the report.
4. Add the method to the test that runs the README flow for every method
   (``tests/search/test_methods.py``) with its stdlib space.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from typing import Any

import attrs

from nasc.dsl.diagnostics import NasError


def _frozen_mapping(value: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    return None if value is None else types.MappingProxyType(dict(value))


def _one_of(*allowed: Any):
    def check(inst: Any, attribute: attrs.Attribute, value: Any) -> None:
        if value not in allowed:
            raise ValueError(f"Method.{attribute.name} must be one of {allowed}, got {value!r}")

    return check


@attrs.frozen(kw_only=True)
class Method:
    """One search method: what ``nasc.compile`` builds and what the search loop runs."""

    #: the name of ``nasc.compile(space, method=NAME)`` and ``nasc search --method NAME``
    name: str
    #: the paper (authors, venue) and the sections the record follows
    paper: str
    #: ``nasc.compile``'s recipe (its options: passes and their settings, the supernet's
    #: derivation); ``None``: no supernet (a multi-trial method, :mod:`nasc.search.multitrial`)
    compile: Mapping[str, Any] | None = attrs.field(default=None, converter=_frozen_mapping)
    #: DARTS' search network: affine-free BN inside the cells, the supernet in search mode,
    #: second-order architecture gradients allowed (DARTS eq. 7-8)
    darts_family: bool = False
    #: the Gumbel temperature per search epoch: (start, end, "linear" | "exponential")
    temperatures: tuple[float, float, str] | None = None
    #: the search loop's recipe settings that apply (keys of nasc.search.recipes.SETTINGS) and
    #: the method's defaults for them
    recipe: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_mapping)
    #: the architecture step: "gradient" (DARTS' bilevel step on a trainB batch), "two_path"
    #: (two sampled paths and eq. 9's rebalancing: ProxylessNAS, DenseNAS), "none" (SPOS: the
    #: weights alone; HR-NAS: its importance factors are weights)
    arch_step: str = attrs.field(default="gradient",
                                 validator=_one_of("gradient", "two_path", "none"))
    #: the cost term of the architecture or weight loss (nasc.search.recipes): "proxyless"
    #: (lambda (E - ref) / ref), "densenas" (eq. 8), "hrnas" (eq. 7 on the weights), None
    cost: str | None = attrs.field(default=None,
                                   validator=_one_of(None, "proxyless", "densenas", "hrnas"))
    #: the search phase: "supernet" (one-shot) or "trials" (train sampled networks)
    search: str = attrs.field(default="supernet", validator=_one_of("supernet", "trials"))
    #: after the supernet's training: "derive" (its derivation) or "evolve" (an evolutionary
    #: search over sub-architectures scored with inherited weights, SPOS §3.3)
    after_search: str = attrs.field(default="derive", validator=_one_of("derive", "evolve"))

    @property
    def supernet(self) -> bool:
        """Whether the method trains a supernet (``nasc.compile`` builds one for it)."""
        return self.compile is not None


_BILEVEL = {"weighting": "softmax", "zero": True, "edge_weights": None}

#: Every method, once. (The recipes' values are each paper's; see the comments.)
REGISTRY: tuple[Method, ...] = (
    # DARTS (Liu et al., ICLR 2019): softmax mixtures with a zero op, affine-free BN in cells.
    Method(name="darts", paper="Liu et al., DARTS, ICLR 2019, §2", compile=_BILEVEL,
           darts_family=True),
    # PC-DARTS (Xu et al., ICLR 2020): partial channels 1/4 with shuffle, edge normalisation.
    # The BN-tail fusion is on, as for DARTS: since the mixture runs as one autograd function
    # it is the fastest and leanest PC-DARTS step (bench/RESULTS.md, 0.83x the channels_last
    # naive step, 0.62x its saved bytes).
    Method(name="pc-darts", paper="Xu et al., PC-DARTS, ICLR 2020, §3",
           compile={**_BILEVEL, "edge_weights": "inputs", "partial_channels": 4},
           darts_family=True),
    # GDAS (Dong & Yang, CVPR 2019): hard Gumbel-softmax, straight-through; tau decays
    # linearly from 10 to 0.1 (§4).
    Method(name="gdas", paper="Dong & Yang, GDAS, CVPR 2019, §3.2, §4",
           compile={"weighting": "gumbel", "hard": True, "tau": 10.0, "zero": True,
                    "edge_weights": None},
           darts_family=True, temperatures=(10.0, 0.1, "linear")),
    # SNAS (Xie et al., ICLR 2019): soft Gumbel-softmax, tau annealed exponentially from 1.0
    # (§2.2; the end 0.33 as in public re-implementations: the paper gives no final value).
    Method(name="snas", paper="Xie et al., SNAS, ICLR 2019, §2.2",
           compile={"weighting": "gumbel", "hard": False, "tau": 1.0, "zero": True,
                    "edge_weights": None},
           darts_family=True, temperatures=(1.0, 0.33, "exponential")),
    # SPOS (Guo et al., ECCV 2020): uniform single paths for the weights, then evolution.
    Method(name="spos", paper="Guo et al., Single Path One-Shot, ECCV 2020, §3.2-3.3",
           compile={"weighting": "softmax", "zero": False, "edge_weights": "inputs",
                    "sampling": "uniform", "paths": 1},
           arch_step="none", after_search="evolve"),
    # ProxylessNAS (Cai et al., ICLR 2019): binary gates, 1 path per weight step, 2 per
    # architecture step, the expected-cost term (§3.2.1, §3.3.1).
    Method(name="proxyless", paper="Cai et al., ProxylessNAS, ICLR 2019, §3.2-3.3",
           compile={"weighting": "softmax", "zero": False, "edge_weights": "inputs",
                    "sampling": "binary_gate", "paths": 1},
           arch_step="two_path", cost="proxyless",
           recipe={"cost_weight": 0.1, "cost_table": None, "cost_target": None}),
    # DenseNAS (Fang et al., CVPR 2020): beta over each block's outgoing edges (eq. 3-4), one
    # path per layer sampled from the operation weights during weight training (§3.3.3);
    # weight-only warm-up (a fraction of the epochs, paper: 150 / 250), Viterbi derivation.
    Method(name="densenas", paper="Fang et al., DenseNAS, CVPR 2020, §3",
           compile={"weighting": "softmax", "zero": False, "edge_weights": "outgoing",
                    "sampling": "multinomial", "paths": 1, "derive": "viterbi"},
           arch_step="two_path", cost="densenas",
           recipe={"cost_weight": 0.1, "cost_base": 15.0, "cost_table": None,
                   "warmup_epochs": 0.6}),
    # DCNAS (Zhang et al., CVPR 2021): beta over a module's inputs with n sampled (eq. 3-6),
    # partial channels 1/4 with a fixed mask and no edge normalisation (eq. 7), BFS decoding;
    # the input temperature annealed 5 -> 0.5 (the paper gives no values).
    Method(name="dcnas", paper="Zhang et al., DCNAS, CVPR 2021, §3",
           compile={"weighting": "softmax", "zero": False, "edge_weights": "inputs",
                    "inputs": 2, "tau": 5.0, "partial_channels": 4, "fixed_mask": True,
                    "derive": "bfs"},
           recipe={"input_temperature": (5.0, 0.5)}),
    # HR-NAS (Ding et al., CVPR 2021): every search unit (MixConv channel, transformer token)
    # gets an importance factor, its BN scale; units with |factor| <= eps are removed
    # (§3.3, §4.1); one-level training with eq. 7's resource-aware L1, shrinking every 5 epochs.
    Method(name="hrnas", paper="Ding et al., HR-NAS, CVPR 2021, §3.3, §4.1",
           compile={"weighting": "softmax", "zero": False, "edge_weights": "inputs",
                    "alignment": "hrnas", "importance": True, "eps": 1e-3},
           arch_step="none", cost="hrnas", recipe={"cost_weight": 1e-4, "prune_every": 5}),
    # Random search (Li & Talwalkar, UAI 2019): trials drawn uniformly.
    Method(name="random", paper="Li & Talwalkar, Random Search and Reproducibility for NAS, "
           "UAI 2019", search="trials"),
    # Regularised (ageing) evolution (Real et al., AAAI 2019, Alg. 1).
    Method(name="evolution", paper="Real et al., Regularized Evolution, AAAI 2019, Alg. 1",
           search="trials"),
)

_BY_NAME: Mapping[str, Method] = types.MappingProxyType({m.name: m for m in REGISTRY})
assert len(_BY_NAME) == len(REGISTRY), "two methods share a name"


def names(*, supernet: bool | None = None) -> list[str]:
    """The methods' names (with ``supernet=True``/``False``: those that do / do not compile a
    supernet), in registry order."""
    return [m.name for m in REGISTRY if supernet is None or m.supernet == supernet]


def get(name: str, *, supernet: bool = False) -> Method:
    """The method called ``name``; with ``supernet=True`` it must be one ``nasc.compile``
    builds."""
    m = _BY_NAME.get(name)
    if m is None or (supernet and not m.supernet):
        known = names(supernet=True if supernet else None)
        raise NasError(f"unknown method {name!r}; known: {', '.join(sorted(known))}")
    return m


def compile_recipes() -> dict[str, dict[str, Any]]:
    """``nasc.METHODS``: each supernet method's ``nasc.compile`` recipe (a fresh copy)."""
    return {m.name: dict(m.compile) for m in REGISTRY if m.compile is not None}


__all__ = ["REGISTRY", "Method", "compile_recipes", "get", "names"]
