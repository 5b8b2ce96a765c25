"""Multi-trial baselines: random search and regularised evolution.

Each trial instantiates one architecture of the space (``nasc.instantiate``), trains it briefly
from scratch on trainA and scores it on trainB; the best scored architecture wins. The survey's
point (Elsken et al. 2019, §4; Li & Talwalkar 2019) is that random search at the same budget is
a strong baseline, so ``nasc search`` can report a one-shot method against it.

No network is trained twice: a draw whose network (``space.canonical_hash``, docs/unique.md)
was already trained is replaced by a new draw, and the result counts the draws skipped. When
``MAX_DRAWS`` draws in a row give only known networks, the space has no new network to offer
and the search stops early.

* ``random``: architectures drawn uniformly (``space.sample``).
* ``evolution``: regularised (ageing) evolution (Real et al. 2019, Alg. 1): a population of
  ``population`` random architectures; then each cycle samples ``sample`` of them, mutates the
  best of the sample into a child, trains it, adds it and removes the *oldest* member.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import torch
from nasc.search.data import Splits
from nasc.search.distributed import SINGLE_PROCESS, Context
from nasc.search.strategies import mutate
from nasc.search.training import accuracy, batches_per_epoch, epochs_of, loss_fn

import nasc
from nasc.architecture import Architecture

METHODS = ("random", "evolution")

#: Draws in a row that may repeat known networks before a search gives up finding a new one.
MAX_DRAWS = 1000


def train_briefly(space: Any, arch: Architecture, splits: Splits, *, epochs: int, batch: int,
                  seed: int, lr: float = 0.05, progress: Callable[[int], None] | None = None
                  ) -> float:
    """Train ``arch`` from scratch on trainA for ``epochs`` (on the data's device); its
    accuracy on trainB."""
    x, y = splits.train_a
    torch.manual_seed(seed)
    model = nasc.instantiate(space, arch, device=x.device)
    steps = max(epochs * batches_per_epoch(len(y), batch), 1)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=3e-4,
                          nesterov=True)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    model.train()
    for epoch in range(epochs):
        for _, (xb, yb) in epochs_of(x, y, batch, seed, epoch, stream=7):
            opt.zero_grad()
            loss_fn(model(xb), yb).backward()
            opt.step()
            sched.step()
            if progress is not None:
                progress(1)
    return accuracy(model, *splits.train_b)


def run_trials(method: str, space: Any, splits: Splits, *, trials: int, epochs: int,
               batch: int, seed: int, population: int = 4, sample: int = 2,
               state: dict[str, Any] | None = None,
               on_trial: Callable[[dict[str, Any]], None] | None = None,
               progress: Callable[[int], None] | None = None,
               dist: Context = SINGLE_PROCESS) -> dict[str, Any]:
    """Run ``trials`` trials of ``method``; ``state`` (passed to ``on_trial`` after each round)
    resumes. Returns the best architecture, its score, every trial and how many draws were
    skipped because their network had been trained already (``duplicates_skipped``).

    Trials run in rounds of one per process (``dist``: the ranks of a ``torchrun`` launch):
    every rank draws the same candidates, trains its own and receives the others' scores. One
    process gives rounds of one: the sequential algorithms. With ``W`` processes, evolution
    breeds the ``W`` children of a round from the same population (the batched form of ageing
    evolution), so its result depends on ``W``; random search's does not.
    """
    if method not in METHODS:
        raise ValueError(f"unknown multi-trial method {method!r}; {', '.join(METHODS)}")
    rng = random.Random(seed)
    if state is None:
        state = {"trials": [], "population": [], "rng": rng.getstate()}
    rng.setstate(state["rng"])
    if "networks" not in state:  # (a state saved before networks were recorded)
        state["networks"] = [space.canonical_hash(Architecture.from_json(t["arch"]))
                             for t in state["trials"]]
        state["duplicates_skipped"] = 0
    steps = max(epochs * batches_per_epoch(len(splits.train_a[1]), batch), 1)
    exhausted = False
    while len(state["trials"]) < trials and not exhausted:
        first = len(state["trials"])
        seen = set(state["networks"])
        archs: list[Architecture] = []
        for j in range(min(dist.world, trials - first)):
            found = _new_candidate(method, space, state, rng, first + j, population, sample,
                                   seen)
            if found is None:
                exhausted = True
                break
            archs.append(found)
        if not archs:
            break

        def trial(j: int, archs: list[Architecture] = archs, first: int = first) -> float:
            return train_briefly(space, archs[j], splits, epochs=epochs, batch=batch,
                                 seed=seed * 7_919 + first + j, progress=progress)

        scores = dist.spread(trial, len(archs))
        if progress is not None:  # the other ranks' trials
            progress(steps * (len(archs) - len(range(dist.rank, len(archs), dist.world))))
        for j, (arch, score) in enumerate(zip(archs, scores)):
            state["trials"].append({"arch": arch.to_json(), "score": score})
            state["networks"].append(space.canonical_hash(arch))
            if method == "evolution":
                state["population"].append(first + j)
                if len(state["population"]) > population:
                    state["population"].pop(0)  # ageing: the oldest dies, not the worst
        state["rng"] = rng.getstate()
        if on_trial is not None:
            on_trial(state)
    best = max(state["trials"], key=lambda t: t["score"])
    return {"best": Architecture.from_json(best["arch"]), "score": best["score"],
            "trials": [{"score": t["score"], "architecture": json_choices(t["arch"])}
                       for t in state["trials"]],
            "duplicates_skipped": state["duplicates_skipped"]}


def _new_candidate(method: str, space: Any, state: dict[str, Any], rng: random.Random, i: int,
                   population: int, sample: int, seen: set[str]) -> Architecture | None:
    """Trial ``i``'s architecture, drawn again while its network is in ``seen`` (each such draw
    counted in ``state["duplicates_skipped"]``); ``None`` after ``MAX_DRAWS`` known ones."""
    for _ in range(MAX_DRAWS):
        arch = _candidate(method, space, state, rng, i, population, sample)
        key = space.canonical_hash(arch)
        if key not in seen:
            seen.add(key)
            return arch
        state["duplicates_skipped"] += 1
    return None


def _candidate(method: str, space: Any, state: dict[str, Any], rng: random.Random, i: int,
               population: int, sample: int) -> Architecture:
    """Trial ``i``'s architecture: uniform (random search; evolution's first population), else
    the mutated best of ``sample`` members of the population (Real et al. 2019, Alg. 1)."""
    if method == "random" or i < population:
        return space.sample(rng)
    pool = [state["trials"][j] for j in rng.sample(state["population"],
                                                   min(sample, len(state["population"])))]
    parent = max(pool, key=lambda t: t["score"])
    return mutate(space, Architecture.from_json(parent["arch"]), rng, prob=0.0)


def json_choices(text: str) -> dict[str, Any]:
    return Architecture.from_json(text).to_dict()["choices"]
