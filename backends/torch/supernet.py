"""Supernets: a relaxed IR graph run by PyTorch, in one of three explicit modes.

* ``relax()`` — every mixture computes ``sum_k w_k o_k`` over its computed candidates with
  ``w = softmax(alpha)`` (DARTS eq. 2), or the Gumbel-softmax ``softmax((alpha + g) / tau)``
  with an optional hard straight-through one-hot (GDAS; SNAS); input mixtures sum their inputs
  (DARTS zero form) or weigh them by ``softmax(beta)`` (PC-DARTS; DCNAS eq. 3–4).
* ``sample(seed, step)`` — only the drawn candidates and inputs run (SPOS; ProxylessNAS binary
  gates; DCNAS eq. 5–6); a draw is fixed by (seed, step, label), so every process of a
  distributed run draws the same paths.
* ``fix(arch)`` — exactly the network of one architecture.

Only what the mode needs is computed: the nodes that reach an output through the active
candidates. Zero candidates are never computed; their weight stays in the normalisation.

Each mode is planned once (:mod:`nasc.backends.torch.plan`): ``relax()``, ``sample()`` and
``fix()`` only set the mode, the first forward in it builds an immutable plan, and every
forward runs that plan with its per-call values in locals, so forwards are re-entrant.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from nasc.backends.torch.construct import build_ops
from nasc.backends.torch.library import OpLibrary
from nasc.backends.torch.mixture import split_bn_tail
from nasc.backends.torch.plan import (
    Env,
    InputMix,
    Plan,
    SupernetError,
    build_plan,
    outgoing_shares,
    run,
)
from nasc.ir.derive import derive
from nasc.ir.graph import Graph
from nasc.ir.nodes import Input, InputMixture, Mixture
from nasc.ir.passes.relax import outgoing_edges
from nasc.ir.passes.sample import draw
from nasc.ir.resolve import zero_source
from torch import nn


class Supernet(nn.Module):
    """A relaxed graph as a trainable module; see the module docstring for the modes."""

    def __init__(self, g: Graph, library: OpLibrary, *, affine: bool, search: bool,
                 name: str = "supernet", channels_last: bool = True,
                 fuse_bn_tail: bool = True, device: torch.device | str | None = None) -> None:
        super().__init__()
        if g.choice_nodes():
            kinds = sorted({type(r).__name__ for r in g.choice_nodes()})
            raise SupernetError(
                f"the graph still has unrelaxed choices ({', '.join(kinds)}); relax it first"
            )
        self.graph = g
        self.space_name = name
        self.affine, self.search = affine, search
        self.ops = build_ops(g, library, affine=affine, search=search, device=device,
                              channels_last=channels_last)
        # one parameter vector per label, initialised as in DARTS (1e-3 * N(0, 1))
        self.alpha = nn.ParameterList()
        self.labels: list[str] = []
        self._index: dict[str, int] = {}
        for rec in g.relaxed_nodes():
            if isinstance(rec, InputMixture) and rec.weighting == "zero":
                continue  # the DARTS form: the decision lives in the inputs' own mixtures
            if rec.label not in self._index:
                self._index[rec.label] = len(self.labels)
                self.labels.append(rec.label)
                self.alpha.append(
                    nn.Parameter(1e-3 * torch.randn(len(rec.options), device=device)))
        self._fuse_bn_tail = fuse_bn_tail
        self._tails = {
            nid: t for nid, m in self.ops.items() if (t := split_bn_tail(m)) is not None
        }
        self._zero_src = {
            r.id: zero_source(g, r) for r in g.nodes_of(Mixture) if not all(r.computed)
        }
        self.channels_last = channels_last
        self._outgoing = outgoing_edges(g)  # the graph is fixed: group the edges once
        self._outgoing_index = [[(self._index[g[nid].label], j) for nid, j in outs]
                                for outs in self._outgoing]
        self._inputs = [r.name for r in g.nodes_of(Input)]
        self._mode: tuple[str, Any] = ("relax", None)
        self._plan: Plan | None = None  # the current mode's
        self._relax_plans: dict[bool, Plan] = {}  # per fuse_bn_tail: relaxing never changes
        self.tau = 1.0
        # DCNAS eq. 5: when set, the temperature of every input mixture (annealed per epoch)
        self.input_tau: float | None = None
        self.plan()

    @property
    def fuse_bn_tail(self) -> bool:
        """Whether relaxed mixtures fuse their candidates' affine-free BN tails."""
        return self._fuse_bn_tail

    @fuse_bn_tail.setter
    def fuse_bn_tail(self, value: bool) -> None:
        self._fuse_bn_tail = bool(value)
        self._plan = None
        self.plan()

    # ---- parameters and modes ------------------------------------------------------------------
    def arch_parameters(self) -> Iterator[nn.Parameter]:
        """The architecture parameters: one vector per label (alpha or beta)."""
        return iter(self.alpha)

    def weight_parameters(self) -> Iterator[nn.Parameter]:
        """Every other parameter (the candidates' weights)."""
        return iter(self.ops.parameters())

    def _set_mode(self, mode: str, data: Any) -> Supernet:
        """Enter a mode and plan it now (a missing decision is an error here, and a forward
        compiled by ``torch.compile`` finds the plan ready)."""
        self._mode, self._plan = (mode, data), None
        self.plan()
        return self

    def relax(self) -> Supernet:
        return self._set_mode("relax", None)

    def sample(self, seed: int, step: int = 0, paths: int | None = None) -> Supernet:
        weights = self.weights_by_label()
        if self.input_tau is not None:  # draw from softmax(beta / input_tau)
            for rec in self.graph.nodes_of(InputMixture):
                if rec.paths and rec.label in self._index:
                    weights[rec.label] = [b * rec.tau / self.input_tau
                                          for b in weights[rec.label]]
        return self._set_mode("sample", draw(self.graph, weights, seed=seed, step=step,
                                             paths=paths))

    @property
    def drawn(self) -> dict[str, tuple[int, ...]]:
        """The options and inputs drawn per label in sample mode (empty otherwise)."""
        return dict(self._mode[1]) if self._mode[0] == "sample" else {}

    def fix(self, arch: Mapping[str, Any]) -> Supernet:
        return self._set_mode("fix", dict(arch))

    @property
    def mode(self) -> str:
        return self._mode[0]

    def set_temperature(self, tau: float) -> None:
        if not tau > 0:
            raise SupernetError("the temperature must be positive")
        self.tau = float(tau)

    def set_input_temperature(self, tau: float | None) -> None:
        """The temperature of the input mixtures' ``softmax(beta / tau)`` and sampling (DCNAS
        eq. 5), overriding the compiled one; ``None`` restores it."""
        if tau is not None and not tau > 0:
            raise SupernetError("the temperature must be positive")
        self.input_tau = None if tau is None else float(tau)

    def weights_by_label(self) -> dict[str, list[float]]:
        """Current architecture parameters per label (zero-form input mixtures get uniform)."""
        out = {lab: a.detach().cpu().tolist() for lab, a in zip(self.labels, self.alpha)}
        for rec in self.graph.nodes_of(InputMixture):
            out.setdefault(rec.label, [0.0] * rec.n)
        return out

    def probabilities(self, space_graph: Graph) -> dict[str, Any]:
        """Per label of the *space*, the probability of each option (a tensor, differentiable):
        op and repeat choices ``softmax(alpha)`` (a zero candidate's mass is dropped: it costs
        nothing); input choices the inclusion probability of each input: 1 in the DARTS zero
        form (every input is summed), ``p_j`` with edge weights (DenseNAS eq. 6)."""
        from nasc.ir.decisions import label_specs

        specs = label_specs(space_graph)
        mixtures = {r.label: r for r in self.graph.relaxed_nodes()}
        shares = self._outgoing_shares()
        probs: dict[str, Any] = {}
        for lab, spec in specs.items():
            rec = mixtures.get(lab)
            if rec is None:
                raise SupernetError(f"label {lab!r} is not relaxed in this supernet")
            if isinstance(rec, InputMixture):
                if rec.weighting == "zero":
                    probs[lab] = torch.ones(rec.n)
                elif rec.normalize == "outgoing":
                    probs[lab] = torch.stack(shares[lab])
                else:
                    probs[lab] = F.softmax(self.alpha[self._index[lab]] / (self.input_tau
                                                                           or rec.tau), dim=-1)
                continue
            w = F.softmax(self.alpha[self._index[lab]], dim=-1)
            probs[lab] = torch.stack([w[rec.options.index(o)] for o in spec.options])
        return probs

    def _outgoing_shares(self) -> dict[str, list[torch.Tensor]]:
        """DenseNAS eq. 3: beta normalised over the edges leaving each source."""
        shares = outgoing_shares(list(self.alpha), self._outgoing_index)
        return {self.labels[i]: list(p) for i, p in shares.items()}

    def expected_cost(self, kind: str = "params", *, input_size: Any = (32, 32),
                      table: Any = None) -> torch.Tensor:
        """The expected cost of the sampled network, differentiable in the architecture
        parameters (DenseNAS eq. 5–7): ``sum over ops of P(op runs) * cost(op)``."""
        from nasc.ir.cost import DEFAULT, expected_cost

        g = self.space.graph
        return expected_cost(g, kind, self.probabilities(g), input_size=input_size,
                             table=table or DEFAULT, bn_affine=self.affine)

    def derive(self, *, method: str | None = None) -> dict[str, Any]:
        """Decisions from the current architecture parameters (see :mod:`nasc.ir.derive`), by
        ``method`` or else the compiling recipe's derivation (DenseNAS: Viterbi, DCNAS:
        breadth-first from the output; others: per label). Search units relaxed with importance
        factors (HR-NAS) are decided by threshold: the count of units with ``|alpha| > eps``
        (HR-NAS eq. 7, :func:`nasc.search.hrnas.derive`)."""
        from nasc.ir.passes.importance import unit_ops

        method = method or getattr(self, "derivation", None) or "auto"
        decisions = derive(self.graph, self.weights_by_label(), method=method)
        if unit_ops(self.graph) or getattr(self, "hrnas_removed", None):
            from nasc.search.hrnas import derive as kept_units

            decisions.update(kept_units(self))
        return decisions

    # ---- running -------------------------------------------------------------------------------
    # (not under @torch.compiler.disable: that decorator imports torch._dynamo, and with it
    # triton, on every CPU run; a compiled forward finds the plan built by the mode setter)
    def plan(self) -> Plan:
        """The current mode's execution plan (built when the mode is set; relaxing again
        reuses the relaxed one)."""
        plan = self._plan
        if plan is None:
            mode, data = self._mode
            fuse = self._fuse_bn_tail
            plan = self._relax_plans.get(fuse) if mode == "relax" else None
            if plan is None:
                plan = build_plan(self.graph, mode=mode, data=data, label_index=self._index,
                                  zero_src=self._zero_src, tails=self._tails, fuse=fuse)
                if mode == "relax":
                    self._relax_plans[fuse] = plan
            self._plan = plan
        return plan

    def forward(self, *args: torch.Tensor, **kwargs: torch.Tensor) -> Any:
        # read once: a mode set meanwhile (another thread, a hook) changes the next forward
        plan = self._plan
        return self.run(plan if plan is not None else self.plan(), *args, **kwargs)

    def _env(self) -> Env:
        return Env(self.ops._modules, self._tails, list(self.alpha), self._outgoing_index,
                   training=self.training, tau=self.tau, input_tau=self.input_tau)

    def _input_mixture(self, rec: InputMixture, ins: list[int],
                       values: Mapping[int, torch.Tensor]) -> torch.Tensor:
        """One relaxed input mixture on given input values (what its plan step computes)."""
        step = InputMix(out=0, ins=(), label=self._index[rec.label], tau=rec.tau,
                        concat=rec.merge == "concat", outgoing=rec.normalize == "outgoing")
        return step(self._env(), [values[i] for i in ins])

    def run(self, plan: Plan, *args: torch.Tensor, **kwargs: torch.Tensor) -> Any:
        """Run ``plan`` (from :meth:`plan`, in any mode) on the inputs, whatever the current
        mode: threads that each hold their own plan share one supernet safely."""
        feeds = dict(zip(self._inputs, args))
        feeds.update(kwargs)
        return run(plan, self._env(), feeds, self.channels_last)
