"""Kernel-size batching: candidates that read one tensor and differ only in kernel size, as one op.

In a relaxed supernet every candidate of a mixture runs at every step (DARTS eq. 2,
``o(x) = sum_k w_k o_k(x)``). After :mod:`~nasc.ir.passes.cse` the DARTS candidates
``sep_conv_3x3``/``sep_conv_5x5`` of one edge read the same ReLU node, likewise
``dil_conv_3x3``/``dil_conv_5x5``, and the MBConv candidates of DCNAS (k in {3, 5, 7} at one
expansion ratio) read one input: each pair or triple is the same computation with a different
kernel size. A depthwise k x k conv equals a depthwise k_max x k_max conv whose kernel is the k x k
kernel zero-padded by ``(k_max - k) / 2`` on each side (with the padding of the input grown by
``dilation * (k_max - k) / 2``): every extra tap multiplies a zero. So the group can run as one
op: one convolution call for all kernel sizes instead of one per candidate (fewer, larger calls:
what pays where calls are launch-bound), at the price of the padded taps' multiply-adds.

The rewrite, for each such group of a mixture's candidates (all ``Op`` nodes of one op of
:data:`BATCHABLE`, reading the same inputs, with the same type and the same parameters except
``k``, each read by that mixture alone, with distinct concrete kernel sizes)::

    %a = sep_conv(%r, C=16, k=3)        %b = sep_conv_batch(%r, C=16, ks=[3, 5])   # 32 channels
    %c = sep_conv(%r, C=16, k=5)   =>   %a = channel_slice(%b, start=0, stop=16)
                                        %c = channel_slice(%b, start=16, stop=32)

The batched op outputs the candidates' outputs concatenated along channels in the order of
``ks`` (ascending); each candidate node becomes a ``channel_slice`` of it, keeping its id's
place in the mixture, its guard and its location, so the mixture, derivation and resolution see
the same candidates. The batched node exists whenever one of its candidates does (the
disjunction of their guards, as in CSE). Sampled mixtures (``sampling`` set: SPOS, ProxylessNAS,
DenseNAS) are left alone: they run one or two candidates per step, and a batch would run all.

Opt-in (``nasc.compile(space, batch_kernels=True)``): on the CPU it measured 1.2-1.3x slower
per DARTS search step (C=16, 8 cells; ``bench/batch_kernels.py``, bench/RESULTS.md), where the
depthwise convs are compute-bound and the padded taps are extra work.

:func:`unbatched` gives resolution the single candidate a ``channel_slice`` of a batch stands
for, so resolving a batched supernet graph under an architecture gives back the original op
(``nasc.instantiate(space, arch, weights=supernet)`` then takes that candidate's weights out of
the batch). Symbolic parameters or types (value choices) are not batched.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from nasc.ir.graph import Graph
from nasc.ir.nodes import Mixture, Op
from nasc.ir.passes.manager import Pass, PassError, register
from nasc.ir.types import Layout

#: Ops whose candidates can be batched over their kernel size ``k``: op -> batched op.
BATCHABLE: dict[str, str] = {
    "sep_conv": "sep_conv_batch",
    "dil_conv": "dil_conv_batch",
    "mbconv": "mbconv_batch",
}
#: Batched op -> the op it batches.
UNBATCHED: dict[str, str] = {v: k for k, v in BATCHABLE.items()}
#: The kernel-size parameter of a candidate and the kernel sizes of a batch.
KERNEL, KERNELS = "k", "ks"


def batch_kernels(g: Graph, *, ops: Iterable[str] = tuple(BATCHABLE)) -> Graph:
    """Batch the same-input, kernel-size-only groups of candidates (see the module docstring)."""
    ops = tuple(ops)
    unknown = [o for o in ops if o not in BATCHABLE]
    if unknown:
        raise PassError(
            f"batch_kernels: cannot batch op {unknown[0]!r}; batchable: {', '.join(BATCHABLE)}")
    out = g.copy()
    for m in g.nodes_of(Mixture):
        for members in kernel_groups(g, m, ops):
            _batch(out, members)
    return out.renumbered()


def kernel_groups(g: Graph, m: Mixture, ops: Iterable[str] = tuple(BATCHABLE)) -> list[list[int]]:
    """The candidate nodes of mixture ``m`` that :func:`batch_kernels` batches together, each
    group ordered by kernel size (ascending); none for a sampled mixture."""
    if m.sampling is not None:
        return []
    groups: dict[tuple, list[int]] = {}
    for nid in g.inputs(m.id):
        key = _group_key(g, nid, m, tuple(ops))
        if key is not None:
            groups.setdefault(key, []).append(nid)
    out = []
    for members in groups.values():
        ks = [g[n].param(KERNEL) for n in members]
        if len(members) >= 2 and len(set(ks)) == len(ks):
            out.append(sorted(members, key=lambda n: g[n].param(KERNEL)))
    return out


def _group_key(g: Graph, nid: int, m: Mixture, ops: tuple[str, ...]) -> tuple | None:
    """What candidates of one group share, or None when ``nid`` cannot be batched."""
    rec = g[nid]
    if not isinstance(rec, Op) or rec.op not in ops:
        return None
    params = dict(rec.params)
    ty = rec.type
    concrete = all(_is_int(v) for v in (params.get(KERNEL), ty.channels, ty.stride))
    if not concrete or ty.layout is not Layout.IMAGE:
        return None
    # read by this mixture alone, once (another reader would need the node itself)
    if g.users(nid) != [m.id] or g.nx.number_of_edges(nid, m.id) != 1:
        return None
    if any(not _is_plain(v) for k, v in rec.params if k != KERNEL):
        return None
    rest = tuple((k, v) for k, v in rec.params if k != KERNEL)
    return (rec.op, rest, ty, tuple(g.inputs(nid)))


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_plain(v: Any) -> bool:
    return isinstance(v, bool | int | float | str) or v is None


def _batch(g: Graph, members: list[int]) -> int:
    """Add the batched node of ``members`` (in place) and turn each member into a slice of it."""
    first = g[members[0]]
    ks = tuple(g[n].param(KERNEL) for n in members)
    c = first.type.channels
    params = tuple((KERNELS, ks) if k == KERNEL else (k, v) for k, v in first.params)
    guard = first.guard
    for n in members[1:]:
        guard = guard | g[n].guard
    batch = g.add(Op, g.inputs(members[0]), type=first.type.with_channels(c * len(ks)),
                  guard=guard, loc=first.loc, op=BATCHABLE[first.op], params=params)
    for i, n in enumerate(members):
        rec = g[n]
        g.replace(n, Op(id=n, type=rec.type, guard=rec.guard, loc=rec.loc, op="channel_slice",
                        params=(("start", i * c), ("stop", (i + 1) * c))))
        g.set_inputs(n, [batch])
    return batch


def unbatched(g: Graph, rec: Any) -> tuple[int, Op] | None:
    """For a ``channel_slice`` of a batch made by :func:`batch_kernels`: the batch's node id and
    the candidate op the slice stands for (its record, with the slice's id, type, guard and
    location); otherwise None."""
    if not isinstance(rec, Op) or rec.op != "channel_slice":
        return None
    ins = g.inputs(rec.id)
    if len(ins) != 1:
        return None
    batch = g[ins[0]]
    if not isinstance(batch, Op) or batch.op not in UNBATCHED:
        return None
    start, stop = rec.param("start"), rec.param("stop")
    ks = batch.param(KERNELS)
    width = stop - start
    if width * len(ks) != batch.type.channels or start % width:
        raise PassError(f"%{rec.id}: slice [{start}, {stop}) is no candidate of batch %{batch.id}")
    k = ks[start // width]
    params = tuple((KERNEL, k) if name == KERNELS else (name, v) for name, v in batch.params)
    return batch.id, Op(id=rec.id, type=rec.type, guard=rec.guard, loc=rec.loc,
                        op=UNBATCHED[batch.op], params=params)


register(Pass(name="batch_kernels", fn=batch_kernels, requires=frozenset({"relaxed"})))

__all__ = ["BATCHABLE", "KERNEL", "KERNELS", "UNBATCHED", "batch_kernels", "kernel_groups",
           "unbatched"]
