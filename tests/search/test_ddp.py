"""Distributed supernet training: two processes under torchrun on the CPU (gloo)."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.data import DistributedSampler

from nasc.search import distributed
from nasc.search.data import Splits
from nasc.search.training import order

HERE = Path(__file__).parent
#: relax mode (first and second order); uniform and binary-gate sampling
METHODS = ("darts", "darts-2nd", "spos", "proxyless")


def _worker():
    spec = importlib.util.spec_from_file_location("ddp_worker", HERE / "ddp_worker.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def torchrun(nproc: int, *args: str, timeout: float = 300, cwd: Path | None = None):
    """Run ``python -m torch.distributed.run --standalone --nproc_per_node nproc ARGS``, one
    thread per rank; fail with its output when it fails."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NASC_DEBUG": "1"}
    env.pop("WORLD_SIZE", None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc_per_node={nproc}", *args]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout,
                          cwd=cwd)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    return proc


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    torchrun(2, str(HERE / "ddp_worker.py"), str(out), *METHODS)
    return out


def _load(out: Path, name: str):
    return [torch.load(out / f"{name}_rank{r}.pt", weights_only=False) for r in (0, 1)]


@pytest.mark.parametrize("method", METHODS)
def test_weights_and_arch_parameters_are_bitwise_identical_on_both_ranks(ranks, method):
    r0, r1 = _load(ranks, method)
    assert r0["state"].keys() == r1["state"].keys()
    for key, t in r0["state"].items():
        assert torch.equal(t, r1["state"][key]), key
    assert any(k.startswith("alpha.") for k in r0["state"])
    assert r0["digests"] == r1["digests"]
    assert (r0["rank"], r0["is_main"], r1["rank"], r1["is_main"]) == (0, True, 1, False)


@pytest.mark.parametrize("method", METHODS)
def test_every_rank_derives_the_same_architecture(ranks, method):
    r0, r1 = _load(ranks, method)
    assert r0["arch"] == r1["arch"]
    assert set(r0["arch"]) == {"1<-0", "2<-0", "2<-1", "3<-0", "3<-1", "3<-2"}


@pytest.mark.parametrize("method", ["spos", "proxyless"])
def test_sampled_paths_change_per_step_and_agree_across_ranks(ranks, method):
    r0, r1 = _load(ranks, method)
    assert r0["paths"] == r1["paths"]
    assert len({tuple(sorted(p.items())) for p in r0["paths"]}) > 1
    # only the sampled candidates' parameters were reduced, fewer than in relax mode's steps
    assert r0["reduced"] == r1["reduced"]
    assert len(set(r0["reduced"])) > 1


@pytest.mark.parametrize("method", METHODS)
def test_two_ranks_match_one_process_on_the_same_global_batch(ranks, method):
    """Averaged gradients: two ranks with 4 examples each compute what one process computes
    with the mean loss of the two shards of each 8-example batch (BN statistics per shard);
    the second-order architecture gradient too (three reductions inside it)."""
    worker = _worker()
    torch.set_num_threads(1)
    net, arch, log = worker.train(method, distributed.Context(), emulate=2)
    r0, _ = _load(ranks, method)
    assert arch == r0["arch"]
    assert log["paths"] == r0["paths"]
    torch.testing.assert_close(log["losses"], r0["losses"], rtol=1e-5, atol=0)
    for name, p in net.named_parameters():
        # ProxylessNAS' binary gates: an architecture gradient that is zero in exact arithmetic
        # comes out as float32 noise on one side on AVX-512 kernels, and Adam turns noise into a
        # step (seen: 2e-3 on 2 of 30 entries after 3 steps, alike on AVX2); every weight and
        # every loss must still agree to 1e-4, and the derived architectures exactly
        atol = 5e-3 if method == "proxyless" and name.startswith("alpha.") else 1e-6
        torch.testing.assert_close(p.detach(), r0["state"][name], rtol=1e-4, atol=atol,
                                   msg=lambda m, name=name: f"{name}: {m}")


def test_disagreement_fails_loudly_on_every_rank(ranks):
    checks = [torch.load(ranks / f"checks_rank{r}.pt", weights_only=False) for r in (0, 1)]
    for c in checks:
        assert "differ across ranks" in c["paths_error"]
        assert "same seed and step" in c["paths_error"]
        assert "disagree on arch_parameters" in c["arch_error"]
        assert "weights" not in c["arch_error"]  # the weights agreed, and are not named
    assert torch.equal(checks[0]["seen"], checks[1]["seen"])


def test_only_rank_0_writes_and_checkpoints_are_complete_for_every_rank(ranks):
    assert (ranks / "text_from_rank0.txt").read_text() == "written"
    assert not (ranks / "text_from_rank1.txt").exists()
    assert not list(ranks.glob("*.tmp"))


@pytest.mark.parametrize(("n", "world", "batch"), [(24, 2, 8), (22, 2, 8), (27, 3, 6)])
def test_sharding_a_global_batch_is_what_distributed_sampler_hands_out(n, world, batch):
    """Rank r's part of global batch i is batch i of DistributedSampler(shuffle=True, seed)
    with a per-rank batch of batch / world, when the global order is the sampler's."""
    seed, epoch = 3, 1
    for rank in range(world):
        sampler = DistributedSampler(range(n), num_replicas=world, rank=rank, shuffle=True,
                                     seed=seed)
        sampler.set_epoch(epoch)
        expected = list(sampler)
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed + epoch))
        ctx = distributed.Context(rank=rank, world=world)
        got = [i for k in range(0, n, batch) for i in ctx.shard(perm[k : k + batch])[0].tolist()]
        assert got == expected


def test_shards_cover_the_global_batch_and_pad_like_the_sampler():
    x = order(10, 0, 0)[:5]
    parts = [distributed.Context(rank=r, world=2).shard(x)[0] for r in (0, 1)]
    assert [len(p) for p in parts] == [3, 3]
    assert sorted(torch.cat(parts).tolist()) == sorted([*x.tolist(), x[0].item()])
    with pytest.raises(distributed.DistributedError, match="differ in length"):
        distributed.Context(rank=0, world=2).shard(x, x[:4])


def test_a_single_process_context_changes_nothing():
    ctx = distributed.init("cpu")
    assert (ctx.world, ctx.rank, ctx.distributed, ctx.is_main) == (1, 0, False, True)
    assert distributed.is_main() and not distributed.requested()
    x = torch.arange(5)
    assert ctx.shard(x)[0] is x
    p, q = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(2))
    (p * 3).sum().backward()
    assert ctx.sync_grads([p, q]) == 1 and p.grad.tolist() == [3.0, 3.0] and q.grad is None
    assert ctx.assert_same(a={"x": 1})["a"] == distributed.digest({"x": 1}).hex()
    splits = Splits(name="t", classes=2, in_channels=1, train_a=(x, x), train_b=(x, x),
                    test=(x, x))
    assert ctx.place(splits) is splits
    ctx.teardown()


def test_digests_see_bitwise_differences():
    d = distributed.digest
    assert d(torch.tensor([0.0])) != d(torch.tensor([-0.0]))
    assert d(torch.ones(2, 3)) != d(torch.ones(3, 2))
    assert d(torch.ones(2)) != d(torch.ones(2, dtype=torch.float64))
    assert d({"a": 1, "b": [2]}) == d({"b": [2], "a": 1})
    lin = torch.nn.Linear(2, 2)
    assert d(lin) == d(lin.state_dict())


def test_a_broken_environment_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    for key in ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(distributed.DistributedError, match="torchrun --nproc_per_node"):
        distributed.init("cpu")
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(distributed.DistributedError, match="not a number"):
        distributed.world_size()


def test_backend_follows_the_device():
    assert distributed.backend_for(torch.device("cpu")) == "gloo"
    assert distributed.backend_for(torch.device("cuda", 0)) == "nccl"
    if not torch.cuda.is_available():
        with pytest.raises(distributed.DistributedError, match="no GPU"):
            distributed.device_for("cuda", 0)
