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
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from nasc.backends.torch.construct import build_ops
from nasc.backends.torch.library import OpLibrary
from nasc.backends.torch.mixture import split_bn_tail
from nasc.backends.triton import dispatch as kernels
from nasc.ir.derive import derive
from nasc.ir.graph import Graph
from nasc.ir.nodes import (
    Input,
    InputMixture,
    Merge,
    Mixture,
    Op,
    Output,
    ValueChoice,
)
from nasc.ir.passes.relax import outgoing_edges
from nasc.ir.passes.sample import draw
from nasc.ir.resolve import zero_source
from torch import nn


class SupernetError(ValueError):
    """A supernet cannot run as asked (wrong mode, missing decisions, value choices left)."""


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
        self.fuse_bn_tail = fuse_bn_tail
        self._tails = {
            nid: t for nid, m in self.ops.items() if (t := split_bn_tail(m)) is not None
        }
        self._zero_src = {
            r.id: zero_source(g, r) for r in g.nodes_of(Mixture) if not all(r.computed)
        }
        self.channels_last = channels_last
        self._outgoing = outgoing_edges(g)  # the graph is fixed: group the edges once
        self._order = g.topo_order()
        self._inputs = [r.name for r in g.nodes_of(Input)]
        self._mode: tuple[str, Any] = ("relax", None)
        self.tau = 1.0
        # DCNAS eq. 5: when set, the temperature of every input mixture (annealed per epoch)
        self.input_tau: float | None = None
        self._shares_now: dict[str, list[torch.Tensor]] | None = None

    # ---- parameters and modes ------------------------------------------------------------------
    def arch_parameters(self) -> Iterator[nn.Parameter]:
        """The architecture parameters: one vector per label (alpha or beta)."""
        return iter(self.alpha)

    def weight_parameters(self) -> Iterator[nn.Parameter]:
        """Every other parameter (the candidates' weights)."""
        return iter(self.ops.parameters())

    def relax(self) -> Supernet:
        self._mode = ("relax", None)
        return self

    def sample(self, seed: int, step: int = 0, paths: int | None = None) -> Supernet:
        weights = self.weights_by_label()
        if self.input_tau is not None:  # draw from softmax(beta / input_tau)
            for rec in self.graph.nodes_of(InputMixture):
                if rec.paths and rec.label in self._index:
                    weights[rec.label] = [b * rec.tau / self.input_tau
                                          for b in weights[rec.label]]
        self._mode = ("sample", draw(self.graph, weights, seed=seed, step=step, paths=paths))
        return self

    @property
    def drawn(self) -> dict[str, tuple[int, ...]]:
        """The options and inputs drawn per label in sample mode (empty otherwise)."""
        return dict(self._mode[1]) if self._mode[0] == "sample" else {}

    def fix(self, arch: Mapping[str, Any]) -> Supernet:
        self._mode = ("fix", dict(arch))
        return self

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
        g = self.graph
        nodes = [r for r in g.nodes_of(InputMixture) if r.normalize == "outgoing"]
        shares: dict[str, list[Any]] = {r.label: [None] * r.n for r in nodes}
        for outs in self._outgoing:
            beta = torch.stack([self.alpha[self._index[g[nid].label]][j] for nid, j in outs])
            for (nid, j), p in zip(outs, F.softmax(beta, dim=0)):
                shares[g[nid].label][j] = p
        return shares

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
    def forward(self, *args: torch.Tensor, **kwargs: torch.Tensor) -> Any:
        g = self.graph
        values: dict[int, torch.Tensor] = {}
        feeds = dict(zip(self._inputs, args))
        feeds.update(kwargs)
        if self.channels_last:
            feeds = {k: v.contiguous(memory_format=torch.channels_last) if v.dim() == 4 else v
                     for k, v in feeds.items()}
        needed = self._needed()
        fused = self._fused() if self.fuse_bn_tail and self._mode[0] == "relax" else set()
        self._fused_now = fused
        self._shares_now: dict[str, list[torch.Tensor]] | None = None  # once per forward
        outputs = []
        for nid in self._order:
            if nid not in needed:
                continue
            rec = g[nid]
            ins = g.inputs(nid)
            if isinstance(rec, Input):
                values[nid] = feeds[rec.name]
            elif isinstance(rec, Op):
                if nid in fused:  # its BN runs inside the mixture that reads it
                    values[nid] = self._tails[str(nid)][0](*(values[i] for i in ins))
                else:
                    values[nid] = self.ops[str(nid)](*(values[i] for i in ins))
            elif isinstance(rec, Merge):
                xs = [values[i] for i in ins]
                values[nid] = torch.cat(xs, dim=1) if rec.mode == "concat" else _sum(xs)
            elif isinstance(rec, Mixture):
                values[nid] = self._mixture(rec, ins, values)
            elif isinstance(rec, InputMixture):
                values[nid] = self._input_mixture(rec, ins, values)
            elif isinstance(rec, Output):
                outputs.append(values[ins[0]])
            elif isinstance(rec, ValueChoice):
                raise SupernetError(f"value choice {rec.label!r} is not supported in supernets")
        return outputs[0] if len(outputs) == 1 else tuple(outputs)

    def _active_slots(self, rec: Any) -> list[int] | None:
        """Which input slots run in the current mode (``None``: all)."""
        mode, data = self._mode
        if mode == "relax":
            return None
        if isinstance(rec, Mixture):
            if mode == "fix":
                choice = data.get(rec.label)
                if choice is None or choice not in rec.options:
                    raise SupernetError(f"fix(): no decision for active label {rec.label!r}")
                idx = rec.options.index(choice)
                return [sum(rec.computed[:idx])] if rec.computed[idx] else []
            if rec.sampling is None:
                return None
            picked = data.get(rec.label, ())
            return [sum(rec.computed[:i]) for i in picked if rec.computed[i]]
        if isinstance(rec, InputMixture):
            if mode == "fix":
                return list(data.get(rec.label, ()))
            if not rec.paths:
                return None
            return list(data.get(rec.label, ()))
        return None

    def _fused(self) -> set[int]:
        """Candidate ops whose affine-free BN tail the reading mixture fuses: ops with such a
        tail that only mixtures read (a shared op keeps its BN)."""
        g = self.graph
        out = set()
        for key in self._tails:
            nid = int(key)
            users = g.users(nid)
            if users and all(isinstance(g[u], Mixture) for u in users) and len(users) == 1:
                out.add(nid)
        return out

    def _needed(self) -> set[int]:
        g = self.graph
        needed: set[int] = set()
        stack = [r.id for r in g.nodes_of(Output)]
        while stack:
            n = stack.pop()
            if n in needed:
                continue
            needed.add(n)
            ins = g.inputs(n)
            slots = self._active_slots(g[n])
            stack.extend(ins if slots is None else [ins[s] for s in slots])
            if slots == [] and n in self._zero_src:
                stack.append(self._zero_src[n])  # a chosen zero candidate needs its shape
        return needed

    def _weights(self, rec: Any) -> torch.Tensor:
        alpha = self.alpha[self._index[rec.label]]
        if isinstance(rec, Mixture) and rec.weighting == "gumbel" and self.training:
            return F.gumbel_softmax(alpha, tau=self.tau, hard=rec.hard)
        tau = (self.input_tau or rec.tau) if isinstance(rec, InputMixture) else 1.0
        return F.softmax(alpha / tau, dim=-1)

    def _mixture(self, rec: Mixture, ins: list[int], values) -> torch.Tensor:
        slots = self._active_slots(rec)
        mode = self._mode[0]
        if mode == "fix":
            if not slots:  # the zero candidate was chosen
                x = values[self._zero_src[rec.id]]
                s = int(rec.type.stride) // int(self.graph[self._zero_src[rec.id]].type.stride)
                h, w = -(-x.shape[2] // s), -(-x.shape[3] // s)
                return x.new_zeros(x.shape[0], int(rec.type.channels), h, w)
            return values[ins[slots[0]]]
        w = self._weights(rec)
        live = [i for i, c in enumerate(rec.computed) if c]
        chosen = range(len(ins)) if slots is None else slots
        if slots is not None and len(slots) == 1 and rec.sampling == "uniform":
            return values[ins[slots[0]]]
        if slots is not None:  # sampled paths: renormalise over them (ProxylessNAS two-path)
            ws = w[[live[s] for s in chosen]]
            ws = ws / ws.sum()
            return kernels.weighted_sum(ws, [values[ins[s]] for s in chosen])
        # the plain candidates and the fused BN tails (see backends/triton/dispatch.py)
        plain = [s for s in chosen if ins[s] not in self._fused_now]
        tails = [s for s in chosen if ins[s] in self._fused_now]
        return kernels.mixture(
            w[[live[s] for s in plain]] if plain else w[:0], [values[ins[s]] for s in plain],
            torch.stack([w[live[s]] for s in tails]) if tails else w[:0],
            [values[ins[s]] for s in tails], [self._tails[str(ins[s])][1] for s in tails],
            self.training)

    def _input_mixture(self, rec: InputMixture, ins: list[int], values) -> torch.Tensor:
        slots = self._active_slots(rec)
        chosen = list(range(rec.n)) if slots is None else slots
        xs = [values[ins[j]] for j in chosen]
        if self._mode[0] == "fix" or rec.weighting == "zero":
            return torch.cat(xs, dim=1) if rec.merge == "concat" else _sum(xs)
        if rec.normalize == "outgoing":  # DenseNAS eq. 3-4: p_ij over the source's edges
            if self._shares_now is None:
                self._shares_now = self._outgoing_shares()
            p = torch.stack(self._shares_now[rec.label])
        else:
            p = self._weights(rec)
        if slots is not None:
            p = p[chosen] / p[chosen].sum()
        if rec.merge == "concat":
            return kernels.weighted_concat(p, xs)
        return kernels.weighted_sum(p, xs)


def _sum(xs: list[torch.Tensor]) -> torch.Tensor:
    out = xs[0]
    for x in xs[1:]:
        out = out + x
    return out
