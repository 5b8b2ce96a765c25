"""Execution plans: what one forward of a supernet runs in one mode, built once.

A :class:`Plan` is an immutable list of steps over numbered value slots, built from the relaxed
graph and the mode's decisions (relax; one sample draw; one fixed architecture):

* only what the mode needs: the nodes that reach an output through the active candidates and
  inputs (a zero candidate is never computed; a chosen one becomes zeros of its shape);
* a fixed choice or a single uniformly drawn path is no step at all: its slot is the chosen
  candidate's slot;
* each mixture knows, once, which candidates it sums plainly and which affine-free BN tails it
  fuses (their bodies run alone, see :mod:`nasc.backends.torch.mixture`), and at which
  positions of its label's weight vector their weights are;
* each slot is released after its last reader, so a forward holds what autograd keeps and no
  more.

Running a plan (:func:`run`) keeps every per-call value in locals: the slots, the weights of
each label (``softmax(alpha)`` once per label and call, however many cells share the label) and
the DenseNAS outgoing shares. Nothing is written on the module but what training itself updates
(BN running statistics), so two forwards may interleave or run in two threads, and the loop is
straight-line Python over constants, the shape ``torch.compile`` captures as one graph.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import torch
import torch.nn.functional as F
from nasc.backends.torch import mixture as torch_mixture
from nasc.backends.triton import dispatch as kernels
from nasc.ir.graph import Graph
from nasc.ir.nodes import Input, InputMixture, Merge, Mixture, Op, Output, ValueChoice


class SupernetError(ValueError):
    """A supernet cannot run as asked (wrong mode, missing decisions, value choices left)."""


# ---- steps ---------------------------------------------------------------------------------
@attrs.frozen(kw_only=True)
class Step:
    """One call of a plan: reads ``ins``, writes ``out``, then frees the slots in ``free``."""

    out: int
    ins: tuple[int, ...]
    free: tuple[int, ...] = ()


@attrs.frozen(kw_only=True)
class Call(Step):
    """``ops[key](*ins)``; with ``body``, only the op's body (its BN tail is fused downstream)."""

    key: str
    body: bool = False

    def __call__(self, env: Env, xs: list[torch.Tensor]) -> torch.Tensor:
        if self.body:
            return env.tails[self.key][0](*xs)
        return env.ops[self.key](*xs)


@attrs.frozen(kw_only=True)
class Concat(Step):
    def __call__(self, env: Env, xs: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat(xs, dim=1) if len(xs) > 1 else xs[0]


@attrs.frozen(kw_only=True)
class Add(Step):
    def __call__(self, env: Env, xs: list[torch.Tensor]) -> torch.Tensor:
        return _sum(xs)


@attrs.frozen(kw_only=True)
class Zeros(Step):
    """A chosen zero candidate: zeros of the mixture's shape, ``ins[0]`` giving batch and size."""

    channels: int
    stride: int

    def __call__(self, env: Env, xs: list[torch.Tensor]) -> torch.Tensor:
        x, s = xs[0], self.stride
        return x.new_zeros(x.shape[0], self.channels, -(-x.shape[2] // s), -(-x.shape[3] // s))


@attrs.frozen(kw_only=True)
class Mix(Step):
    """DARTS eq. 2 over the computed candidates: the first ``len(plain)`` inputs summed with the
    weights at positions ``plain`` of the label's vector, the rest normalised by the BN tails of
    ``tails`` (op keys) with the weights at positions ``tail_pos``. ``gumbel``: the weights are
    a Gumbel-softmax draw of this node at the supernet's temperature when training (GDAS;
    SNAS), one-hot straight-through with ``hard``. ``renorm``: sampled paths, the weights
    renormalised over them (ProxylessNAS two-path)."""

    label: int
    plain: tuple[int, ...]
    tail_pos: tuple[int, ...] = ()
    tails: tuple[str, ...] = ()
    gumbel: bool = False
    hard: bool = False
    renorm: bool = False

    def __call__(self, env: Env, xs: list[torch.Tensor]) -> torch.Tensor:
        if self.gumbel and env.training:
            w = F.gumbel_softmax(env.alpha[self.label], tau=env.tau, hard=self.hard)
            wp = w[list(self.plain)] if self.plain else w[:0]
            wt = w[list(self.tail_pos)] if self.tail_pos else w[:0]
        else:
            wp, wt = env.take(self.label, self.plain), env.take(self.label, self.tail_pos)
        if self.renorm:
            return kernels.weighted_sum(wp / wp.sum(), xs)
        n = len(self.plain)
        return kernels.mixture(wp, xs[:n], wt, xs[n:], [env.tails[k][1] for k in self.tails],
                               env.training)


@attrs.frozen(kw_only=True)
class InputMix(Step):
    """An input mixture with edge weights: ``softmax(beta / tau)`` over the node's inputs
    (PC-DARTS; DCNAS eq. 3–4), or the DenseNAS outgoing shares (eq. 3–4) with ``outgoing``;
    ``chosen`` (sampled inputs, DCNAS eq. 5–6) renormalises over the drawn inputs."""

    label: int
    tau: float
    concat: bool
    outgoing: bool = False
    chosen: tuple[int, ...] | None = None

    def __call__(self, env: Env, xs: list[torch.Tensor]) -> torch.Tensor:
        if self.outgoing:
            p = env.shares()[self.label]
        else:
            p = env.weights(self.label, env.input_tau or self.tau)
        if self.chosen is not None:
            p = p[list(self.chosen)]
            p = p / p.sum()
        return kernels.weighted_concat(p, xs) if self.concat else kernels.weighted_sum(p, xs)


@attrs.frozen(kw_only=True)
class PartialSum(Step):
    """PC-DARTS: a node's edge-normalised sum (``softmax(beta / tau)``) of partial-channel
    merges, the merges (op keys ``merges``) fused into it: ``ins`` are the mixtures' outputs,
    then the edges' inputs. The merged full-width tensors are never materialised or kept
    (:func:`nasc.backends.torch.mixture.partial_sum`); on the Triton path each merge is the
    fused kernel and the sum the weighted-sum kernel."""

    label: int
    tau: float
    merges: tuple[str, ...]

    def __call__(self, env: Env, xs: list[torch.Tensor]) -> torch.Tensor:
        n = len(self.merges)
        mixes, srcs = xs[:n], xs[n:]
        mods = [env.ops[k] for k in self.merges]
        p = env.weights(self.label, env.input_tau or self.tau)
        first = mods[0]
        if kernels.use_triton(*xs) or any(
                (m.split, m.k, m.shuffle) != (first.split, first.k, first.shuffle)
                for m in mods):
            return kernels.weighted_sum(p, [m(a, b) for m, a, b in zip(mods, mixes, srcs)])
        byps = [m.mp(x[:, m.split :]) if m.mp is not None else x[:, m.split :]
                for m, x in zip(mods, srcs)]
        return torch_mixture.partial_sum(p, mixes, byps, first.split, first.k, first.shuffle)


@attrs.frozen(kw_only=True)
class Plan:
    """The steps of one mode; ``feeds`` are ``(input name, slot)``, ``outputs`` slots."""

    mode: str
    feeds: tuple[tuple[str, int], ...]
    steps: tuple[Step, ...]
    outputs: tuple[int, ...]
    slots: int

    def __str__(self) -> str:
        lines = [f"plan {self.mode}: {len(self.steps)} steps, {self.slots} slots"]
        lines += [f"  %{s} = input {n!r}" for n, s in self.feeds]
        for st in self.steps:
            args = ", ".join(f"%{i}" for i in st.ins)
            what = type(st).__name__.lower()
            extra = getattr(st, "key", "")
            lines.append(f"  %{st.out} = {what}{'[' + extra + ']' if extra else ''}({args})")
        lines.append("  return " + ", ".join(f"%{o}" for o in self.outputs))
        return "\n".join(lines)


# ---- running -------------------------------------------------------------------------------
class Env:
    """What one forward reads: the modules, the architecture parameters and the per-call
    settings, and the weights it computed so far (per call: never kept)."""

    def __init__(self, ops: Mapping[str, Any], tails: Mapping[str, tuple[Any, Any]],
                 alpha: Sequence[torch.Tensor], outgoing: Sequence[Sequence[tuple[int, int]]],
                 *, training: bool, tau: float, input_tau: float | None) -> None:
        self.ops, self.tails, self.alpha, self.outgoing = ops, tails, alpha, outgoing
        self.training, self.tau, self.input_tau = training, tau, input_tau
        self._w: dict[Any, torch.Tensor] = {}
        self._shares: dict[int, torch.Tensor] | None = None

    def weights(self, label: int, tau: float = 1.0) -> torch.Tensor:
        """``softmax(alpha / tau)`` of a label, once per call."""
        key = (label, tau)
        w = self._w.get(key)
        if w is None:
            a = self.alpha[label]
            w = self._w[key] = F.softmax(a if tau == 1.0 else a / tau, dim=-1)
        return w

    def take(self, label: int, positions: tuple[int, ...]) -> torch.Tensor:
        """The softmax weights at ``positions``, one gather per label and call."""
        key = (label, positions)
        w = self._w.get(key)
        if w is None:
            full = self.weights(label)
            lo = positions[0] if positions else 0
            if positions == tuple(range(lo, lo + len(positions))):
                w = full[lo : lo + len(positions)]  # a view, no copy
            else:
                w = full[list(positions)]
            self._w[key] = w
        return w

    def shares(self) -> dict[int, torch.Tensor]:
        """DenseNAS eq. 3: beta normalised over the edges leaving each source, per label."""
        if self._shares is None:
            self._shares = outgoing_shares(self.alpha, self.outgoing)
        return self._shares


def outgoing_shares(alpha: Sequence[torch.Tensor],
                    outgoing: Sequence[Sequence[tuple[int, int]]]) -> dict[int, torch.Tensor]:
    """Per label index, ``p_j`` of each input: ``softmax`` of beta over the edges leaving each
    source (DenseNAS eq. 3); ``outgoing`` lists per source its ``(label index, slot)``."""
    parts: dict[int, dict[int, torch.Tensor]] = {}
    for outs in outgoing:
        beta = torch.stack([alpha[lab][j] for lab, j in outs])
        for (lab, j), p in zip(outs, F.softmax(beta, dim=0)):
            parts.setdefault(lab, {})[j] = p
    return {lab: torch.stack([ps[j] for j in sorted(ps)]) for lab, ps in parts.items()}


def run(plan: Plan, env: Env, feeds: Mapping[str, torch.Tensor],
        channels_last: bool) -> Any:
    """Run ``plan``: the outputs (a tensor, or a tuple of them)."""
    vals: list[Any] = [None] * plan.slots
    for name, slot in plan.feeds:
        x = feeds[name]
        if channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        vals[slot] = x
    for st in plan.steps:
        vals[st.out] = st(env, [vals[i] for i in st.ins])
        for i in st.free:
            vals[i] = None
    outs = tuple(vals[o] for o in plan.outputs)
    return outs[0] if len(outs) == 1 else outs


def _sum(xs: Sequence[torch.Tensor]) -> torch.Tensor:
    out = xs[0]
    for x in xs[1:]:
        out = out + x
    return out


# ---- building ------------------------------------------------------------------------------
def active_slots(rec: Any, mode: str, data: Any) -> list[int] | None:
    """Which input slots of a mixture run in ``mode`` (``None``: all of them)."""
    if mode == "relax" or not isinstance(rec, (Mixture, InputMixture)):
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
        return [sum(rec.computed[:i]) for i in data.get(rec.label, ()) if rec.computed[i]]
    if mode == "fix" and rec.label not in data:
        raise SupernetError(f"fix(): no decision for active label {rec.label!r}")
    if mode == "fix" or rec.paths:
        return list(data.get(rec.label, ()))
    return None


def needed(g: Graph, mode: str, data: Any, zero_src: Mapping[int, int]) -> set[int]:
    """The nodes that reach an output through the active candidates and inputs."""
    out: set[int] = set()
    stack = [r.id for r in g.nodes_of(Output)]
    while stack:
        n = stack.pop()
        if n in out:
            continue
        out.add(n)
        ins = g.inputs(n)
        slots = active_slots(g[n], mode, data)
        stack.extend(ins if slots is None else [ins[s] for s in slots])
        if slots == [] and n in zero_src:
            stack.append(zero_src[n])  # a chosen zero candidate needs its shape
    return out


def fusable(g: Graph, tails: Mapping[str, Any]) -> frozenset[int]:
    """Candidate ops whose affine-free BN tail the reading mixture fuses: ops with such a tail
    that one mixture alone reads (a shared op keeps its BN)."""
    out = set()
    for key in tails:
        users = g.users(int(key))
        if len(users) == 1 and isinstance(g[users[0]], Mixture):
            out.add(int(key))
    return frozenset(out)


def partial_sums(g: Graph, need: set[int]) -> dict[int, list[int]]:
    """Input mixtures summing ``softmax(beta)``-weighted partial-channel merges that they alone
    read (PC-DARTS edge normalisation over partial-channel edges), with those merges: each
    becomes one :class:`PartialSum` step."""
    out = {}
    for rec in g.nodes_of(InputMixture):
        if (rec.id not in need or rec.weighting != "softmax" or rec.normalize != "inputs"
                or rec.merge != "sum" or rec.paths):
            continue
        ins = g.inputs(rec.id)
        if ins and all(isinstance(g[i], Op) and g[i].op == "partial_merge"
                       and g.users(i) == [rec.id] for i in ins):
            out[rec.id] = list(ins)
    return out


@attrs.define
class _Builder:
    g: Graph
    label_index: Mapping[str, int]
    fused: frozenset[int]
    slot: dict[int, int] = attrs.Factory(dict)  # node id -> slot
    steps: list[Step] = attrs.Factory(list)
    n: int = 0

    def new(self, nid: int) -> int:
        self.slot[nid] = self.n
        self.n += 1
        return self.n - 1

    def emit(self, cls: type[Step], nid: int, ins: Sequence[int], **kw: Any) -> None:
        self.steps.append(cls(out=self.new(nid), ins=tuple(self.slot[i] for i in ins), **kw))


def build_plan(g: Graph, *, mode: str, data: Any, label_index: Mapping[str, int],
               zero_src: Mapping[int, int], tails: Mapping[str, Any],
               fuse: bool) -> Plan:
    """The plan of ``mode`` (``relax``; ``sample`` with ``data`` the drawn options and inputs
    per label; ``fix`` with ``data`` the architecture)."""
    need = needed(g, mode, data, zero_src)
    b = _Builder(g, label_index, fusable(g, tails) & need if fuse and mode == "relax"
                 else frozenset())
    partial = partial_sums(g, need) if mode != "fix" else {}
    merged = {m for ms in partial.values() for m in ms}
    feeds, outputs = [], []
    for nid in g.topo_order():
        if nid not in need or nid in merged:
            continue
        rec, ins = g[nid], g.inputs(nid)
        if isinstance(rec, Input):
            feeds.append((rec.name, b.new(nid)))
        elif nid in partial:
            ms = partial[nid]
            b.emit(PartialSum, nid, [g.inputs(m)[0] for m in ms] + [g.inputs(m)[1] for m in ms],
                   label=label_index[rec.label], tau=rec.tau, merges=tuple(map(str, ms)))
        elif isinstance(rec, Op):
            b.emit(Call, nid, ins, key=str(nid), body=nid in b.fused)
        elif isinstance(rec, Merge):
            b.emit(Concat if rec.mode == "concat" else Add, nid, ins)
        elif isinstance(rec, Mixture):
            _mixture(b, rec, ins, mode, data, zero_src)
        elif isinstance(rec, InputMixture):
            _input_mixture(b, rec, ins, mode, data)
        elif isinstance(rec, Output):
            outputs.append(b.slot[ins[0]])
        elif isinstance(rec, ValueChoice):
            raise SupernetError(f"value choice {rec.label!r} is not supported in supernets")
    steps = _with_frees(b.steps, outputs)
    return Plan(mode=mode, feeds=tuple(feeds), steps=steps, outputs=tuple(outputs), slots=b.n)


def _mixture(b: _Builder, rec: Mixture, ins: list[int], mode: str, data: Any,
             zero_src: Mapping[int, int]) -> None:
    slots = active_slots(rec, mode, data)
    if slots == []:  # the zero candidate was chosen
        src = zero_src[rec.id]
        stride = int(rec.type.stride) // int(b.g[src].type.stride)
        b.emit(Zeros, rec.id, [src], channels=int(rec.type.channels), stride=stride)
        return
    if slots is not None and len(slots) == 1 and (mode == "fix" or rec.sampling == "uniform"):
        b.slot[rec.id] = b.slot[ins[slots[0]]]  # the chosen candidate itself: no step
        return
    live = [i for i, c in enumerate(rec.computed) if c]
    chosen = range(len(ins)) if slots is None else slots
    gumbel = dict(gumbel=rec.weighting == "gumbel", hard=rec.hard)
    lab = b.label_index[rec.label]
    if slots is not None:  # sampled paths
        b.emit(Mix, rec.id, [ins[s] for s in chosen], label=lab,
               plain=tuple(live[s] for s in chosen), renorm=True, **gumbel)
        return
    plain = [s for s in chosen if ins[s] not in b.fused]
    tails = [s for s in chosen if ins[s] in b.fused]
    b.emit(Mix, rec.id, [ins[s] for s in plain + tails], label=lab,
           plain=tuple(live[s] for s in plain), tail_pos=tuple(live[s] for s in tails),
           tails=tuple(str(ins[s]) for s in tails), **gumbel)


def _input_mixture(b: _Builder, rec: InputMixture, ins: list[int], mode: str,
                   data: Any) -> None:
    slots = active_slots(rec, mode, data)
    chosen = list(range(rec.n)) if slots is None else slots
    srcs = [ins[j] for j in chosen]
    if mode == "fix" or rec.weighting == "zero":
        if len(srcs) == 1:
            b.slot[rec.id] = b.slot[srcs[0]]
            return
        b.emit(Concat if rec.merge == "concat" else Add, rec.id, srcs)
        return
    b.emit(InputMix, rec.id, srcs, label=b.label_index[rec.label], tau=rec.tau,
           concat=rec.merge == "concat", outgoing=rec.normalize == "outgoing",
           chosen=None if slots is None else tuple(chosen))


def _with_frees(steps: list[Step], outputs: list[int]) -> tuple[Step, ...]:
    """Each step with the slots whose last reader it is (outputs are never freed)."""
    last: dict[int, int] = {}
    for i, st in enumerate(steps):
        for s in st.ins:
            last[s] = i
    keep = set(outputs)
    frees: dict[int, list[int]] = {}
    for s, i in last.items():
        if s not in keep:
            frees.setdefault(i, []).append(s)
    return tuple(attrs.evolve(st, free=tuple(sorted(set(frees.get(i, ())))))
                 for i, st in enumerate(steps))
