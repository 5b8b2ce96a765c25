"""Each paper's search recipe on top of the bilevel loop of :mod:`nasc.search`.

:func:`recipe` turns a method and the user's settings into a :class:`Recipe`; the search loop
asks it, per epoch and per step, what the paper does differently from first-order DARTS:

* **ProxylessNAS** (Cai et al., ICLR 2019, §3.2.1 and §3.3.1): binary gates, one path per
  weight step; per architecture step two paths drawn from ``softmax(alpha)``, the other paths
  masked "as if they do not exist", and after the update the sampled parameters shifted by the
  rebalancing bias so that the unsampled paths keep their probabilities (:func:`rebalance_sampled`,
  the bias of DenseNAS eq. 9). The architecture loss adds the expected cost (§3.3.1:
  ``L_CE + lambda_2 E[LAT]``, ``E[LAT] = sum_i sum_j p_j^i F(o_j^i)``), as the authors' code's
  ``add#linear`` form ``lambda (E - ref) / ref`` (:func:`proxyless_cost_loss`), ``ref`` the
  target cost or, by default, the expected cost of the uniform distribution.
* **DenseNAS** (Fang et al., CVPR 2020, §3.3): weights only for the warm-up epochs (one path
  sampled per layer from the operation weights; the paper: 150 of 250 epochs), then alternating
  architecture and weight steps; the architecture step samples two operations per layer and
  rebalances them (eq. 9), and its loss is ``L_CE + lambda log_tau(latency)`` (eq. 8,
  :func:`densenas_cost_loss`; ``lambda = 0.1``, ``tau = 15`` as the authors' code's defaults,
  the paper gives none). Latency from a look-up table (``cost_table``, written by ``nasc
  profile``) or, without one, multiply-adds as the proxy. Derivation: Viterbi (the compiled
  supernet's default).
* **DCNAS** (Zhang et al., CVPR 2021, §3.3): ``n`` inputs per fusion module sampled without
  replacement from ``softmax(beta / tau)`` (eq. 5–6) with ``tau`` annealed from a high to a
  small non-zero value over the epochs (:func:`input_temperature`; the paper gives no values:
  5 → 0.5 exponentially here), partial channels 1/4 and BFS decoding (the compiled supernet's).
* **HR-NAS** (Ding et al., CVPR 2021, §3.3, §4.1): one-level training of weights and importance
  factors with the resource-aware L1 of eq. 7 added to the task loss (:func:`hrnas.
  resource_penalty <nasc.search.hrnas.resource_penalty>`); every ``prune_every`` epochs (paper: 5)
  the
  units with ``|alpha| <= eps`` are removed (:func:`nasc.search.hrnas.shrink`) and the BN statistics
  re-calibrated (:func:`shrink_step`); the architecture is :func:`nasc.search.hrnas.derive`'s.
* **DARTS evaluation** (Liu et al., ICLR 2019, §3.2; ``cnn/train.py``): when retraining, drop
  path grows linearly to the space's ``drop_path`` (``set_drop_path(model, epoch / epochs)``)
  and an auxiliary head's loss is added with weight 0.4 (:func:`retrain_loss`).

Every setting is overridable (:data:`SETTINGS`, passed as ``nasc.search.search(...,
cost_weight=..., cost_table=...)``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import torch
import torch.nn.functional as F
from nasc.dsl.diagnostics import NasError
from nasc.ir.passes.sample import rebalance
from nasc.search.strategies import recalibrate_bn, temperature
from nasc.search.training import loss_fn, match
from torch import nn

from nasc import methods

#: Recipe settings (``None``: the method's default from :data:`DEFAULTS`).
SETTINGS: dict[str, Any] = {
    "cost_weight": None,  # lambda: ProxylessNAS' lambda_2, DenseNAS eq. 8, HR-NAS eq. 7
    "cost_table": None,  # a latency look-up table (nasc profile -o lut.json); else MACs
    "cost_target": None,  # ProxylessNAS: the reference cost (default: the uniform expectation)
    "cost_base": None,  # DenseNAS eq. 8: tau, the base of the logarithm
    "warmup_epochs": None,  # DenseNAS: weight-only epochs first
    "input_temperature": None,  # DCNAS eq. 5: [start, end] of the annealed tau
    "prune_every": None,  # HR-NAS: shrink every this many epochs
    "auxiliary_weight": 0.4,  # retraining: the auxiliary head's loss weight (DARTS: 0.4)
}

#: Each method's recipe defaults (the records' ``recipe``, :data:`nasc.methods.REGISTRY`); a
#: setting a method does not list does not apply to it.
DEFAULTS: dict[str, dict[str, Any]] = {m.name: dict(m.recipe) for m in methods.REGISTRY
                                       if m.recipe}


@attrs.frozen(kw_only=True)
class Recipe:
    """What a method's search does beyond a first-order DARTS step (see the module docstring)."""

    method: str
    two_path: bool = False
    cost: str | None = None  # "proxyless" | "densenas" | "hrnas"
    cost_weight: float = 0.0
    cost_kind: str = "macs"
    cost_table: str | None = None
    cost_target: float | None = None
    cost_base: float = 15.0
    warmup_epochs: int = 0
    input_temperature: tuple[float, float] | None = None
    prune_every: int = 0
    auxiliary_weight: float = 0.4
    input_size: tuple[int, int] = (32, 32)

    @property
    def arch_free(self) -> bool:
        """Whether the method takes no architecture steps (SPOS; HR-NAS: its factors are
        weights)."""
        return methods.get(self.method).arch_step == "none"

    def arch_active(self, epoch: int) -> bool:
        """Whether architecture steps run in ``epoch`` (not during DenseNAS' warm-up)."""
        return not self.arch_free and epoch >= self.warmup_epochs

    def temperature(self, epoch: int, epochs: int) -> float | None:
        """DCNAS' input-sampling temperature of ``epoch``."""
        if self.input_temperature is None:
            return None
        return input_temperature(epoch, epochs, self.input_temperature)

    def table(self) -> Any:
        """The cost table (the latency look-up table when one is given)."""
        if self.cost_table is None:
            return None
        from nasc.ir.cost.latency import LatencyTable
        from nasc.ir.cost.table import CostError

        try:
            return LatencyTable.load(self.cost_table)
        except CostError as e:
            raise NasError(str(e)) from None

    def prunes_after(self, epoch: int, epochs: int) -> bool:
        """HR-NAS: whether the units at or below ``eps`` are removed after ``epoch``."""
        return bool(self.prune_every) and (epoch + 1) % self.prune_every == 0 and (
            epoch + 1 < epochs)


def recipe(method: str, settings: Mapping[str, Any], *, epochs: int,
           input_size: tuple[int, int]) -> Recipe:
    """The recipe of ``method`` with ``settings`` (keys of :data:`SETTINGS`) overriding its
    defaults; a setting that does not apply to the method is an error."""
    defaults = dict(methods.get(method).recipe)
    given = {k: v for k, v in settings.items() if k in SETTINGS and v is not None
             and v != SETTINGS[k]}
    for key in given:
        if key not in defaults and key != "auxiliary_weight":
            users = sorted(m for m, d in DEFAULTS.items() if key in d)
            raise NasError(f"setting {key!r} does not apply to method {method!r} (it is for "
                           f"{', '.join(users)})")
    s = {**defaults, **given}
    aux = _positive(settings.get("auxiliary_weight", SETTINGS["auxiliary_weight"]),
                    "auxiliary_weight", zero=True)
    common = {"method": method, "auxiliary_weight": aux, "input_size": tuple(input_size)}
    m = methods.get(method)
    if m.cost in ("proxyless", "densenas"):
        weight = _positive(s["cost_weight"], "cost_weight", zero=True)
        table = s.get("cost_table")
        if table is not None and not Path(table).is_file():
            raise NasError(f"no latency table {str(table)!r} (write one with nasc profile "
                           "SPACE -o lut.json)")
        warm = s.get("warmup_epochs", 0)
        if isinstance(warm, float) and 0 <= warm < 1:
            warm = int(round(warm * epochs))
        if isinstance(warm, bool) or not isinstance(warm, int) or warm < 0:
            raise NasError(f"warmup_epochs must be a non-negative integer, got {warm!r}")
        target = s.get("cost_target")
        base = float(s.get("cost_base") or 15.0)
        if not 1 < base < math.inf:
            raise NasError(f"cost_base (the tau of log_tau, DenseNAS eq. 8) must be > 1, got "
                           f"{base}")
        return Recipe(two_path=m.arch_step == "two_path", cost=m.cost, cost_weight=weight,
                      cost_kind="latency" if table else "macs",
                      cost_table=None if table is None else str(table),
                      cost_target=None if target is None else _positive(target, "cost_target"),
                      cost_base=base, warmup_epochs=warm, **common)
    if "input_temperature" in defaults:
        t = s["input_temperature"]
        if not (isinstance(t, Sequence) and len(t) == 2
                and all(0 < float(v) < math.inf for v in t)):
            raise NasError(f"input_temperature must be [start, end] with positive values, "
                           f"got {t!r}")
        return Recipe(input_temperature=(float(t[0]), float(t[1])), **common)
    if m.cost == "hrnas":
        every = s["prune_every"]
        if isinstance(every, bool) or not isinstance(every, int) or every < 0:
            raise NasError(f"prune_every must be a non-negative integer, got {every!r}")
        return Recipe(cost="hrnas", cost_weight=_positive(s["cost_weight"], "cost_weight",
                                                          zero=True),
                      prune_every=every, **common)
    return Recipe(**common)


def _positive(v: Any, name: str, zero: bool = False) -> float:
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise NasError(f"{name} must be a number, got {v!r}") from None
    if not (x >= 0 if zero else x > 0) or math.isinf(x):
        raise NasError(f"{name} must be {'>= 0' if zero else '> 0'}, got {v!r}")
    return x


# ---- losses ------------------------------------------------------------------------------------
def densenas_cost_loss(cost: torch.Tensor, weight: float, base: float) -> torch.Tensor:
    """DenseNAS eq. 8's cost term ``lambda * log_tau(latency)`` (``tau = base``)."""
    return weight * torch.log(cost) / math.log(base)


def proxyless_cost_loss(cost: torch.Tensor, weight: float, ref: float) -> torch.Tensor:
    """ProxylessNAS' cost term ``lambda * (E[cost] - ref) / ref`` (§3.3.1, ``lambda_2 E[LAT]``
    in units of the reference cost, as the authors' ``add#linear`` loss)."""
    return weight * (cost - ref) / ref


def expected_cost(net: Any, rec: Recipe, table: Any = None) -> torch.Tensor:
    """The supernet's expected cost (DenseNAS eq. 5–7, ProxylessNAS eq. 4), differentiable in
    the architecture parameters: latency from the look-up table, or multiply-adds."""
    from nasc.ir.cost.table import CostError

    try:
        return net.expected_cost(rec.cost_kind, input_size=rec.input_size,
                                 table=table if table is not None else rec.table())
    except CostError as e:
        raise NasError(f"the expected {rec.cost_kind} of the supernet: {e}") from None


def uniform_cost(net: Any, rec: Recipe, table: Any = None) -> float:
    """The expected cost when every architecture parameter is zero (uniform choices):
    ProxylessNAS' reference when no target is given."""
    saved = [a.detach().clone() for a in net.arch_parameters()]
    with torch.no_grad():
        for a in net.arch_parameters():
            a.zero_()
        ref = float(expected_cost(net, rec, table))
        for a, s in zip(net.arch_parameters(), saved):
            a.copy_(s)
    return ref


def arch_loss(net: Any, rec: Recipe, out: Any, y: torch.Tensor, *, table: Any = None,
              ref: float | None = None) -> torch.Tensor:
    """The architecture step's loss: cross-entropy plus the method's cost term."""
    loss = loss_fn(out, y)
    if rec.cost in ("proxyless", "densenas") and rec.cost_weight > 0:
        cost = expected_cost(net, rec, table)
        if rec.cost == "densenas":
            loss = loss + densenas_cost_loss(cost, rec.cost_weight, rec.cost_base)
        else:
            loss = loss + proxyless_cost_loss(cost, rec.cost_weight, ref or rec.cost_target
                                              or uniform_cost(net, rec, table))
    return loss


def weight_penalty(net: Any, rec: Recipe) -> torch.Tensor | None:
    """HR-NAS eq. 7's ``lambda * sum_i Delta_i |alpha_i|`` for the weight step (else None)."""
    if rec.cost != "hrnas" or rec.cost_weight == 0:
        return None
    from nasc.search.hrnas import resource_penalty

    return rec.cost_weight * resource_penalty(net, kind="macs", input_size=rec.input_size)


# ---- two-path architecture step ----------------------------------------------------------------
def rebalance_sampled(net: Any, old: Sequence[torch.Tensor],
                      drawn: Mapping[str, Sequence[int]]) -> None:
    """After an architecture step on sampled paths: every sampled op mixture's unsampled
    parameters back to ``old`` (they were masked) and the sampled ones shifted by DenseNAS eq.
    9's bias, so that the unsampled options keep their softmax weights. Labels without a draw
    (unsampled input mixtures, DenseNAS' beta) keep their update."""
    from nasc.ir.nodes import Mixture

    sampled_ops = {r.label for r in net.graph.nodes_of(Mixture) if r.sampling is not None}
    with torch.no_grad():
        for lab, a, before in zip(net.labels, net.arch_parameters(), old):
            picked = drawn.get(lab)
            if lab not in sampled_ops or picked is None:
                continue
            new = rebalance(before.tolist(), a.detach().tolist(), list(picked))
            a.copy_(torch.tensor(new, dtype=a.dtype, device=a.device))


def two_path_arch_step(net: Any, a_opt: torch.optim.Optimizer, rec: Recipe, x: torch.Tensor,
                       y: torch.Tensor, *, seed: int, step: int, table: Any = None,
                       ref: float | None = None) -> float:
    """ProxylessNAS / DenseNAS architecture step: two paths per layer drawn from the operation
    weights (a draw fixed by seed and step), the loss with the cost term, one optimiser step,
    then :func:`rebalance_sampled`. Returns the loss."""
    net.sample(seed, step, paths=2)
    drawn = net.drawn
    old = [a.detach().clone() for a in net.arch_parameters()]
    a_opt.zero_grad()
    loss = arch_loss(net, rec, net(x), y, table=table, ref=ref)
    loss.backward()
    a_opt.step()
    rebalance_sampled(net, old, drawn)
    return loss.item()


# ---- DCNAS temperature -------------------------------------------------------------------------
def input_temperature(epoch: int, epochs: int, schedule: tuple[float, float]) -> float:
    """DCNAS eq. 5's ``tau`` of ``epoch``: from ``schedule[0]`` annealed exponentially to
    ``schedule[1]`` at the last epoch."""
    start, end = schedule
    return float(temperature("dcnas", epoch, epochs, (start, end, "exponential")))


# ---- HR-NAS progressive shrinking --------------------------------------------------------------
def shrink_step(net: Any, calibration: Sequence[torch.Tensor]) -> tuple[Any, dict[str, int]]:
    """One HR-NAS shrink (§3.3): a smaller supernet without the units whose factor is at most
    ``eps`` (their weights sliced away), its BN statistics re-calibrated on ``calibration``
    batches. Returns it and the kept count per unit label (to rebuild it on resume)."""
    from nasc.search.hrnas import derive, shrink

    kept = derive(net)
    new = shrink(net)
    recalibrate_bn(new, calibration)
    return new, kept


def replay_shrinks(net: Any, history: Sequence[Mapping[str, int]]) -> Any:
    """The supernet ``net`` becomes after the shrinks of ``history`` (kept counts per label,
    as :func:`shrink_step` returned them), without weights: a resumed run loads them."""
    from nasc.ir.passes.shrink import shrink as shrink_graph
    from nasc.search.hrnas import rebuilt

    for kept in history:
        g = shrink_graph(net.graph, kept={lab: n for lab, n in kept.items()
                                          if lab not in getattr(net, "hrnas_removed", ())})
        net = rebuilt(net, g)
    return net


def moved_optimizer(opt: torch.optim.SGD, sched: Any, params: Any) -> tuple[Any, Any]:
    """An SGD optimiser like ``opt`` over new ``params`` (a shrunk supernet's), at the same
    point of ``sched``'s schedule (momentum restarts: the tensors changed shape)."""
    group = opt.param_groups[0]
    hyper = {k: v for k, v in group.items() if k not in ("params", "initial_lr")}
    new = type(opt)(params, **hyper)
    new_sched = type(sched)(new, T_max=sched.T_max, eta_min=sched.eta_min)
    new_sched.load_state_dict(sched.state_dict())
    for g in new.param_groups:
        g["lr"] = group["lr"]
        g["initial_lr"] = group.get("initial_lr", group["lr"])
    return new, new_sched


# ---- segmentation metrics ----------------------------------------------------------------------
def confusion(model: nn.Module, x: torch.Tensor, y: torch.Tensor, classes: int,
              batch: int = 64) -> torch.Tensor:
    """The ``classes x classes`` confusion matrix (rows: labels) of per-pixel predictions;
    pixels labelled outside ``0..classes-1`` (Cityscapes' void, ``IGNORE = -100``, the loss's
    ``ignore_index``) are left out."""
    was = model.training
    model.eval()
    m = torch.zeros(classes, classes, dtype=torch.long, device=y.device)
    with torch.no_grad():
        for i in range(0, len(y), batch):
            yb = y[i : i + batch]
            pred = match(model(x[i : i + batch]), yb).argmax(1).reshape(-1)
            yb = yb.reshape(-1)
            keep = (yb >= 0) & (yb < classes)
            m += torch.bincount(yb[keep] * classes + pred[keep],
                                minlength=classes * classes).reshape(classes, classes)
    model.train(was)
    return m.cpu()


def segmentation_metrics(m: torch.Tensor) -> dict[str, Any]:
    """Pixel accuracy and mean IoU (over the classes present in labels or predictions) of a
    confusion matrix, and the IoU per class."""
    tp = m.diag().double()
    union = m.sum(0).double() + m.sum(1).double() - tp
    iou = torch.where(union > 0, tp / union.clamp(min=1), torch.full_like(tp, float("nan")))
    present = union > 0
    return {"pixel_accuracy": float(tp.sum() / m.sum().clamp(min=1)),
            "mean_iou": float(iou[present].mean()) if present.any() else 0.0,
            "iou": [None if math.isnan(v) else v for v in iou.tolist()]}


# ---- retraining (DARTS evaluation) -------------------------------------------------------------
def main_output(space: Any) -> int | None:
    """The index of the output named ``logits`` when a space has several outputs (None)."""
    from nasc.ir.nodes import Output

    names = [r.name for r in space.graph.nodes_of(Output)]
    if len(names) < 2:
        return None
    return names.index("logits") if "logits" in names else len(names) - 1


class MainOutput(nn.Module):
    """A network with auxiliary outputs seen through its main output (for evaluation)."""

    def __init__(self, model: nn.Module, index: int | None) -> None:
        super().__init__()
        self.model, self.index = model, index

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        out = self.model(*args)
        return out if self.index is None else out[self.index]


def retrain_loss(out: Any, y: torch.Tensor, index: int | None,
                 auxiliary_weight: float) -> torch.Tensor:
    """Cross-entropy of the main output plus ``auxiliary_weight`` times that of each auxiliary
    output (DARTS ``cnn/train.py``: ``loss += args.auxiliary_weight * loss_aux``, 0.4)."""
    if index is None:
        return loss_fn(out, y)
    loss = loss_fn(out[index], y)
    for i, aux in enumerate(out):
        if i != index:
            loss = loss + auxiliary_weight * F.cross_entropy(match(aux, y), y)
    return loss


def start_retrain_epoch(model: nn.Module, epoch: int, epochs: int) -> float:
    """DARTS' drop-path schedule: every drop path at ``epoch / epochs`` of its space's
    probability for this epoch; returns the fraction."""
    from nasc.backends.torch.ops import set_drop_path

    fraction = epoch / max(epochs, 1)
    set_drop_path(model, fraction)
    return fraction


__all__ = [
    "DEFAULTS", "SETTINGS", "MainOutput", "Recipe", "arch_loss", "confusion",
    "densenas_cost_loss", "expected_cost", "input_temperature", "main_output",
    "moved_optimizer", "proxyless_cost_loss", "rebalance_sampled", "recipe", "replay_shrinks",
    "retrain_loss", "segmentation_metrics", "shrink_step", "start_retrain_epoch",
    "two_path_arch_step", "uniform_cost", "weight_penalty",
]
