"""Distributed supernet training under ``torchrun``: one process per device, gloo on the CPU,
NCCL on GPUs.

Why not ``DistributedDataParallel`` as it stands: DDP all-reduces a fixed set of parameters in
buckets it fills from autograd hooks, and in sample mode (SPOS, ProxylessNAS, DenseNAS, DCNAS)
most candidates take no part in a step, so their hooks never fire and DDP waits for them
forever unless ``find_unused_parameters=True`` makes it walk the autograd graph every step to
find them (and reduce their zeros anyway). Here the set of parameters that took part is known
without any search: :meth:`Supernet.sample(seed, step) <nasc.backends.torch.supernet.Supernet
.sample>` draws its paths from ``(seed, step, label)`` alone (:func:`nasc.ir.passes.sample.draw`)
and every rank holds the same architecture parameters, so every rank runs the *same* paths and
the parameters whose ``.grad`` is set after ``backward()`` are the same on every rank. The
engine therefore reduces exactly those, after the backward pass, flattened into a few buckets
(``bucket_mb`` each, one asynchronous all-reduce per bucket, all in flight at once), averaged
over the ranks: ``g = (1/W) sum_r g_r``, the gradient of the mean loss of the global batch
(mini-batch SGD's gradient; DARTS eq. 6 and the architecture gradient alike). Parameters that
took no part keep ``grad=None`` on every rank, so optimisers skip them everywhere alike. Before
the reduction one tiny all-gather compares a fingerprint of that set across ranks and fails
loudly if it differs (a rank that sampled other paths), instead of hanging or silently averaging
gradients of different parameters. The result of an all-reduce is the same bits on every rank,
and every rank runs the same optimiser on the same bits, so weights and architecture parameters
stay bitwise identical without ever being re-broadcast.

Data: ``batch`` keeps meaning the *global* batch. :meth:`Context.shard` gives rank ``r`` the
examples ``r, r+W, r+2W, ...`` of each global batch (padded to a multiple of ``W`` by repeating
the batch's first examples), which is exactly what ``DistributedSampler(shuffle=True)`` with the
shared seed and a per-rank batch of ``batch / W`` hands out: the batch order is the seeded
per-epoch permutation shared by all ranks. So a run on ``W`` processes follows the data order
of a single-process run, steps per epoch and learning-rate schedules are unchanged, and a run
may be resumed on another number of processes. :meth:`Context.sampler` gives the
``DistributedSampler`` itself for a user's ``DataLoader``.

Batch normalisation runs on each rank's shard, as DDP without ``SyncBatchNorm`` does. Running
statistics drift apart between ranks; :meth:`Context.sync_buffers` averages them. Their update
``m <- (1 - mom) m + mom * s`` is affine with the same coefficients on every rank (same paths,
same ``num_batches_tracked``), so averaging them only before they are read (evaluation,
checkpoints, the end) gives exactly what averaging them after every step would.

Guarantees checked at run time: :meth:`Context.broadcast_state` starts every rank from rank 0's
weights; :meth:`Context.assert_same` all-gathers SHA-256 digests (of the derived architecture,
of the architecture parameters, of every weight) and raises :class:`DistributedError` on every
rank naming the ranks that disagree: every rank derives the same architecture.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import os
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import attrs
import torch
import torch.distributed as dist
from nasc.dsl.diagnostics import NasError

#: The environment ``torchrun`` sets for every process it starts.
TORCHRUN_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


class DistributedError(NasError):
    """The processes of a distributed run disagree, or cannot start as asked."""


def world_size() -> int:
    """``WORLD_SIZE`` as ``torchrun`` set it (1 outside ``torchrun``)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        raise DistributedError(
            f"WORLD_SIZE={os.environ['WORLD_SIZE']!r} is not a number of processes") from None


def requested() -> bool:
    """Whether this process was started as one of several (``torchrun --nproc_per_node N>1``)."""
    return world_size() > 1


def launched_rank() -> int:
    """``RANK`` as ``torchrun`` set it (0 outside ``torchrun``): valid before the process group
    exists and after it is gone."""
    return int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    """Whether this process is rank 0 (or the only process): the one that writes files."""
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def backend_for(device: torch.device) -> str:
    """NCCL for CUDA devices, gloo for the CPU."""
    return "nccl" if device.type == "cuda" else "gloo"


def device_for(device: str | torch.device | None, local_rank: int) -> torch.device:
    """The device of the process with ``local_rank``: ``cuda:LOCAL_RANK`` when ``device`` is
    ``"cuda"`` (or ``None``/``"auto"`` and a GPU is present), else the CPU or the device named
    (``"cuda:N"`` as it is)."""
    if device is None or device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(device)
    except RuntimeError:
        raise DistributedError(
            f"unknown device {device!r}: use cpu, cuda, cuda:N or auto") from None
    if device.type != "cuda":
        return device
    if not torch.cuda.is_available():
        raise DistributedError("device cuda was asked for, but no GPU is visible")
    if device.index is None:
        count = torch.cuda.device_count()
        if local_rank >= count:
            raise DistributedError(
                f"local rank {local_rank} has no GPU: this machine shows {count}; start at most "
                f"{count} processes per node (torchrun --nproc_per_node {count}), or hide the "
                "GPUs (CUDA_VISIBLE_DEVICES=) to run CPU processes with gloo")
        device = torch.device("cuda", local_rank)
    return device


@attrs.frozen(kw_only=True)
class Context:
    """One process of a run: its rank among ``world`` processes, its device, and the collective
    operations the search needs. ``world == 1`` is a single process: every operation is a
    no-op (sharding returns the whole batch), so callers need no second code path."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = attrs.field(default=torch.device("cpu"), converter=torch.device)
    backend: str | None = None
    owns_group: bool = False
    bucket_mb: float = 25.0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    # ---- data ----------------------------------------------------------------------------------
    def shard(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """This rank's part of one global batch (the same first dimension in every tensor):
        examples ``rank, rank + W, ...`` after padding the batch to a multiple of ``W`` with its
        first examples, as ``DistributedSampler`` pads (see the module docstring)."""
        if not self.distributed:
            return tensors
        n = len(tensors[0])
        if any(len(t) != n for t in tensors):
            raise DistributedError("shard: the tensors of one batch differ in length")
        if n == 0:
            raise DistributedError("shard: an empty batch cannot be split across ranks")
        idx = torch.arange(-(-n // self.world) * self.world) % n
        idx = idx[self.rank :: self.world]
        return tuple(t[idx.to(t.device)] for t in tensors)

    def sampler(self, dataset: Any, seed: int, *, shuffle: bool = True,
                drop_last: bool = False) -> torch.utils.data.DistributedSampler:
        """A ``DistributedSampler`` over ``dataset`` for this rank, shuffled with the shared
        ``seed`` (call its ``set_epoch(e)`` every epoch)."""
        from torch.utils.data import DistributedSampler

        return DistributedSampler(dataset, num_replicas=self.world, rank=self.rank,
                                  shuffle=shuffle, seed=seed, drop_last=drop_last)

    def place(self, splits: Any) -> Any:
        """``splits`` (an attrs record such as :class:`nasc.search.data.Splits`) with its tensor
        pairs
        on this rank's device (the same object when they are there already)."""
        pairs = [getattr(splits, f.name) for f in attrs.fields(type(splits)) if f.init]
        if all(t.device == self.device for v in pairs if isinstance(v, tuple)
               for t in v if isinstance(t, torch.Tensor)):
            return splits

        def move(v: Any) -> Any:
            if isinstance(v, tuple) and v and all(isinstance(t, torch.Tensor) for t in v):
                return tuple(t.to(self.device) for t in v)
            return v

        return attrs.evolve(splits, **{f.name: move(getattr(splits, f.name))
                                       for f in attrs.fields(type(splits)) if f.init})

    # ---- gradients, parameters and buffers -----------------------------------------------------
    def sync_grads(self, params: Iterable[torch.Tensor], *, check: bool = True) -> int:
        """Average the gradients of the parameters that took part in this step over all ranks
        (those whose ``.grad`` is set; the others stay ``None``) and return how many there
        were. ``check`` first compares which parameters took part across ranks."""
        params = list(params)
        live = [i for i, p in enumerate(params) if p.grad is not None]
        if not self.distributed:
            return len(live)
        if check:
            self._same_set(live, len(params))
        grads = [params[i].grad for i in live]
        if any(g.is_sparse for g in grads):
            raise DistributedError("sparse gradients are not supported")
        self._reduce(grads, average=True)
        return len(live)

    def sync_on_step(self, optimizer: torch.optim.Optimizer) -> None:
        """Average the gradients of ``optimizer``'s parameters over all ranks right before each
        of its steps (a step pre-hook, registered once per optimiser): for steps taken inside
        code that knows nothing of ranks (the architecture steps of every method)."""
        if not self.distributed or getattr(optimizer, "_nasc_synced", False):
            return

        def hook(opt: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
            self.sync_grads([p for group in opt.param_groups for p in group["params"]])

        optimizer.register_step_pre_hook(hook)
        optimizer._nasc_synced = True

    def spread(self, fn: Callable[[int], float], n: int) -> list[float]:
        """``[fn(0), ..., fn(n - 1)]`` on every rank, each ``fn(i)`` computed once, by rank
        ``i % world`` (independent evaluations: multi-trial candidates, SPOS' sub-architecture
        scores). Exact: each number is summed with zeros only."""
        if not self.distributed:
            return [float(fn(i)) for i in range(n)]
        out = torch.zeros(n, dtype=torch.float64, device=self.device)
        for i in range(self.rank, n, self.world):
            out[i] = float(fn(i))
        dist.all_reduce(out)
        return out.tolist()

    def mean(self, value: float | torch.Tensor) -> float:
        """The mean of a number over all ranks (a step's loss on each rank's shard)."""
        if not self.distributed:
            return float(value)
        t = torch.as_tensor(value, dtype=torch.float64, device=self.device).detach().clone()
        dist.all_reduce(t.reshape(1))
        return float(t) / self.world

    def unrolled_arch_gradient(self, net: Any, loss: Callable[[Any, Any], torch.Tensor],
                               train: Any, valid: Any, xi: float,
                               w_opt: torch.optim.Optimizer | None = None,
                               ) -> list[torch.Tensor]:
        """DARTS' second-order architecture gradient (eq. 7 with the finite difference of
        eq. 8) of the global batch, from each rank's shards ``train`` and ``valid``:

        ``∇_α L_val(w', α) − ξ ∇²_{α,w} L_train(w, α) · ∇_{w'} L_val(w', α)`` with
        ``w' = w − ξ ∇_w L_train(w, α)``, where every ``L`` is the mean over ranks. Three
        reductions make it exact: the weight gradient of the virtual step (so ``w'`` is the
        same everywhere), ``∇_{w'} L_val`` (the direction of the finite difference, so its
        ``ε`` is the same everywhere), and the result (each rank's ``∇_α`` terms are linear
        in its shard's loss). With one process this is
        :func:`nasc.search.strategies.unrolled_arch_gradient`.
        """
        from nasc.search.strategies import unrolled_arch_gradient

        def mean(tensors: list[torch.Tensor]) -> None:
            self._reduce(tensors, average=True)

        return unrolled_arch_gradient(net, loss, train, valid, xi, w_opt,
                                      mean=mean if self.distributed else None)

    def broadcast_state(self, module: torch.nn.Module) -> None:
        """Every parameter and buffer of ``module`` set to rank 0's."""
        if self.distributed:
            tensors = [*module.parameters(), *module.buffers()]
            with torch.no_grad():
                for bucket in self._buckets(tensors):
                    flat = torch.cat([t.detach().reshape(-1) for t in bucket])
                    dist.broadcast(flat, src=0)
                    _unflatten(flat, bucket)

    def sync_buffers(self, module: torch.nn.Module) -> None:
        """Average the floating-point buffers (batch-norm running statistics) over all ranks;
        exact for affine updates (see the module docstring)."""
        if self.distributed:
            floats = [b for b in module.buffers() if b.is_floating_point()]
            with torch.no_grad():
                self._reduce(floats, average=True)

    def _buckets(self, tensors: Sequence[torch.Tensor]) -> Iterator[list[torch.Tensor]]:
        cap = max(int(self.bucket_mb * 2**20), 1)
        bucket: list[torch.Tensor] = []
        size = 0
        for t in tensors:
            nbytes = t.numel() * t.element_size()
            if bucket and (size + nbytes > cap or t.dtype != bucket[0].dtype
                           or t.device != bucket[0].device):
                yield bucket
                bucket, size = [], 0
            bucket.append(t)
            size += nbytes
        if bucket:
            yield bucket

    def _reduce(self, tensors: Sequence[torch.Tensor], *, average: bool) -> None:
        """Sum (or average) ``tensors`` in place across ranks: one asynchronous all-reduce per
        bucket, all in flight before the first is awaited."""
        pending = []
        for bucket in self._buckets(tensors):
            flat = torch.cat([t.reshape(-1) for t in bucket])
            pending.append((dist.all_reduce(flat, async_op=True), flat, bucket))
        for work, flat, bucket in pending:
            work.wait()
            if average:
                flat.div_(self.world)
            _unflatten(flat, bucket)

    def _same_set(self, live: Sequence[int], total: int) -> None:
        """Fail on every rank when the parameters that took part differ between ranks."""
        sig = zlib.crc32(torch.tensor(live, dtype=torch.int64).numpy().tobytes())
        mine = torch.tensor([sig, len(live), total], dtype=torch.int64, device=self.device)
        rows = [torch.empty_like(mine) for _ in range(self.world)]
        dist.all_gather(rows, mine)
        seen = [tuple(r.tolist()) for r in rows]
        if len(set(seen)) > 1:
            parts = ", ".join(f"rank {r}: {n} of {t} (set {s:08x})" for r, (s, n, t)
                              in enumerate(seen))
            raise DistributedError(
                "the parameters that took part in this step differ across ranks (" + parts
                + "); every rank must run the same paths: sample with the same seed and step")

    # ---- agreement -----------------------------------------------------------------------------
    def assert_same(self, **values: Any) -> dict[str, str]:
        """All-gather a SHA-256 digest of each named value (tensors, modules, architectures,
        anything JSON can write) and raise :class:`DistributedError` on every rank if any rank
        holds another. Returns the digests (hex)."""
        digests = {name: digest(v) for name, v in values.items()}
        if not self.distributed or not digests:
            return {k: d.hex() for k, d in digests.items()}
        words = torch.tensor(
            [int.from_bytes(d[i : i + 8], "little", signed=True)
             for d in digests.values() for i in range(0, 32, 8)],
            dtype=torch.int64, device=self.device)
        rows = [torch.empty_like(words) for _ in range(self.world)]
        dist.all_gather(rows, words)
        table = [r.view(len(digests), 4).tolist() for r in rows]
        bad = []
        for k, name in enumerate(digests):
            per_rank = [tuple(t[k]) for t in table]
            if len(set(per_rank)) > 1:
                groups: dict[tuple, list[int]] = {}
                for r, d in enumerate(per_rank):
                    groups.setdefault(d, []).append(r)
                shown = "; ".join(f"ranks {rs}: {_hex(d)[:12]}" for d, rs in groups.items())
                bad.append(f"{name} ({shown})")
        if bad:
            raise DistributedError("the ranks of this run disagree on " + ", ".join(bad))
        return {k: d.hex() for k, d in digests.items()}

    def same_architecture(self, net: Any, arch: Mapping[str, Any]) -> dict[str, str]:
        """Assert that every rank derived ``arch`` from the same architecture parameters and
        holds the same weights (the failure other NAS libraries show under DDP)."""
        return self.assert_same(architecture=dict(arch),
                                arch_parameters=list(net.arch_parameters()),
                                weights=list(net.weight_parameters()))

    # ---- files and synchronisation -------------------------------------------------------------
    def barrier(self) -> None:
        if self.distributed:
            if self.backend == "nccl":
                dist.barrier(device_ids=[self.device.index])
            else:
                dist.barrier()

    def write_text(self, path: str | Path, text: str) -> None:
        """Rank 0 replaces ``path`` atomically with ``text``; the other ranks write nothing."""
        if self.is_main:
            _atomic(Path(path), lambda tmp: tmp.write_text(text))

    def checkpoint(self, path: str | Path, state: Mapping[str, Any]) -> None:
        """Rank 0 writes ``state`` atomically (``NAME.tmp``, then a rename); every rank waits
        until the file is complete, so none runs ahead of (or exits before) a checkpoint."""
        if self.is_main:
            _atomic(Path(path), lambda tmp: torch.save(dict(state), tmp))
        self.barrier()

    def collective(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn`` followed by a barrier: every rank calls it, rank 0's writes inside it are
        complete before any rank goes on."""

        def wrapped(*args: Any, **kwargs: Any) -> Any:
            out = fn(*args, **kwargs)
            self.barrier()
            return out

        return wrapped

    def teardown(self) -> None:
        """Leave the process group (when this context created it)."""
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()


#: The context of a process that runs alone (every operation a no-op).
SINGLE_PROCESS = Context()


def init(device: str | torch.device | None = None, *, backend: str | None = None,
         timeout_s: float = 1800.0, bucket_mb: float = 25.0, keep: bool = False) -> Context:
    """The context of this process, from ``torchrun``'s environment (``RANK``, ``WORLD_SIZE``,
    ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``); a single-process context outside it.

    The device is ``cuda:LOCAL_RANK`` when a GPU is present (or ``device`` says so), the CPU
    otherwise; the backend NCCL on GPUs, gloo on the CPU (``backend`` overrides). A process
    group that already exists (the caller's own) is used as it is and left alone by
    :meth:`Context.teardown`. With ``keep`` a group made here lasts until the process exits
    (teardown leaves it): what ``nasc.search`` and ``nasc train`` use, so that one process can
    run several of them (``torchrun``'s rendezvous cannot make a second group in a process
    that ended its first).
    """
    world = world_size()
    if world <= 1:
        return Context(device=device_for(device, 0), bucket_mb=bucket_mb)
    missing = [k for k in TORCHRUN_ENV if k not in os.environ]
    if missing:
        raise DistributedError(
            f"WORLD_SIZE={world} but {', '.join(missing)} not set: start the processes with "
            "torchrun --nproc_per_node N ...")
    rank, local = int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"])
    dev = device_for(device, local)
    backend = backend or backend_for(dev)
    if backend == "nccl" and dev.type != "cuda":
        raise DistributedError("the NCCL backend needs CUDA devices; use gloo on the CPU")
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    owns = False
    if not dist.is_initialized():
        kwargs: dict[str, Any] = {"backend": backend, "timeout": timedelta(seconds=timeout_s)}
        if dev.type == "cuda":
            kwargs["device_id"] = dev
        dist.init_process_group(**kwargs)
        owns = not keep
        if keep:
            atexit.register(_leave)
    elif (dist.get_world_size(), dist.get_rank()) != (world, rank):
        raise DistributedError(
            f"the existing process group has rank {dist.get_rank()} of "
            f"{dist.get_world_size()}, the environment says {rank} of {world}")
    else:
        backend = dist.get_backend()
    return Context(rank=rank, world=world, local_rank=local, device=dev, backend=backend,
                   owns_group=owns, bucket_mb=bucket_mb)


def _leave() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


@contextlib.contextmanager
def session(device: str | torch.device | None = None, **options: Any) -> Iterator[Context]:
    """:func:`init` for a block, with :meth:`Context.teardown` however it ends."""
    ctx = init(device, **options)
    try:
        yield ctx
    finally:
        ctx.teardown()


# ---- digests -----------------------------------------------------------------------------------
def digest(value: Any) -> bytes:
    """SHA-256 of a value's exact content: tensors by dtype, shape and bytes (so bitwise
    differences count), modules by their state dict, mappings by sorted key, architectures and
    other JSON-able values by their JSON text."""
    h = hashlib.sha256()
    _feed(h, value)
    return h.digest()


def _feed(h: Any, value: Any) -> None:
    if isinstance(value, torch.nn.Module):
        value = value.state_dict()
    if isinstance(value, torch.Tensor):
        t = value.detach().to("cpu").contiguous()
        h.update(f"tensor {t.dtype} {tuple(t.shape)};".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    elif isinstance(value, Mapping):
        h.update(b"{")
        for k in sorted(value, key=str):
            h.update(json.dumps(str(k)).encode() + b":")
            _feed(h, value[k])
        h.update(b"}")
    elif isinstance(value, list | tuple):
        h.update(b"[")
        for v in value:
            _feed(h, v)
            h.update(b",")
        h.update(b"]")
    else:
        h.update(json.dumps(value, sort_keys=True, default=str).encode())


def _hex(words: Sequence[int]) -> str:
    return b"".join(int(w).to_bytes(8, "little", signed=True) for w in words).hex()


def _unflatten(flat: torch.Tensor, tensors: Sequence[torch.Tensor]) -> None:
    offset = 0
    for t in tensors:
        n = t.numel()
        t.copy_(flat[offset : offset + n].view(t.shape))
        offset += n


def _atomic(path: Path, write: Callable[[Path], Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    write(tmp)
    os.replace(tmp, path)


__all__ = [
    "Context",
    "DistributedError",
    "SINGLE_PROCESS",
    "backend_for",
    "device_for",
    "digest",
    "init",
    "is_main",
    "launched_rank",
    "requested",
    "session",
    "world_size",
]
