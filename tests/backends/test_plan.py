"""Execution plans (backends/torch/plan.py): the plan of each mode computes what the
hand-written networks compute, is built once, and runs re-entrantly (interleaved forwards,
threads)."""

import sys
import threading
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from nasc.backends.torch import mixture
from nasc.backends.torch.plan import Call, Mix, SupernetError
from reference import PCSearchNetwork, SearchNetwork

import nasc

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from darts_step import copy_weights  # noqa: E402

SMALL = dict(C=8, layers=3)  # one normal and two reduction cells


@pytest.fixture(scope="module")
def darts():
    space = nasc.load("darts", **SMALL)
    torch.manual_seed(0)
    return space, nasc.compile(space, method="darts")


@pytest.mark.parametrize("method,ref_cls", [("darts", SearchNetwork),
                                            ("pc-darts", PCSearchNetwork)])
@pytest.mark.parametrize("fuse", [True, False])
def test_the_relaxed_plan_computes_the_hand_written_search_network(method, ref_cls, fuse):
    torch.manual_seed(0)
    net = nasc.compile(nasc.load("darts", **SMALL), method=method, fuse_bn_tail=fuse)
    ref = ref_cls(SMALL["C"], 10, SMALL["layers"])
    copy_weights(net, ref)
    with torch.no_grad():  # make the architecture weights matter
        for a in net.alpha:
            a.normal_()
    copy_weights(net, ref)
    x, y = torch.randn(4, 3, 16, 16), torch.tensor([0, 1, 2, 3])
    net.train(), ref.train()
    ln, lr = F.cross_entropy(net(x), y), F.cross_entropy(ref(x), y)
    torch.testing.assert_close(ln, lr, atol=1e-5, rtol=1e-5)
    ln.backward(), lr.backward()
    order = ["none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3",
             "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5"]
    options = {r.label: r.options for r in net.graph.relaxed_nodes()}
    for lab, a in zip(net.labels, net.alpha):  # the row of each label in the reference
        kind, node, edge = lab.split(".")
        n = int(node[1:])
        start = sum(2 + i for i in range(n))
        if edge == "in":  # PC-DARTS edge weights
            want = getattr(ref, f"betas_{kind}").grad[start : start + n + 2]
            torch.testing.assert_close(a.grad, want, atol=1e-6, rtol=1e-4)
            continue
        row = getattr(ref, f"alphas_{kind}").grad[start + int(edge[2:])]
        want = torch.stack([row[order.index(o)] for o in options[lab]])
        torch.testing.assert_close(a.grad, want, atol=1e-6, rtol=1e-4)
    torch.testing.assert_close(net.ops[str(_stem(net))].weight.grad, ref.stem[0].weight.grad,
                               atol=1e-5, rtol=1e-3)


def _stem(net):
    return next(r.id for r in net.graph if getattr(r, "op", None) == "conv2d")


def test_the_relaxed_plan_is_built_once_and_reused(darts):
    _, net = darts
    p = net.relax().plan()
    assert net.relax().plan() is p
    assert sum(isinstance(s, Mix) for s in p.steps) == 14 * SMALL["layers"]
    net.fuse_bn_tail = False
    q = net.plan()
    assert q is not p and not any(getattr(s, "body", False) for s in q.steps)
    net.fuse_bn_tail = True
    assert net.plan() is p


def _check_slots(plan):
    """Every slot is written before it is read, never read after it is freed, and the
    outputs are never freed."""
    live = {s for _, s in plan.feeds}
    freed = set()
    for step in plan.steps:
        assert all(i in live and i not in freed for i in step.ins), step
        assert step.out not in freed
        live.add(step.out)
        freed.update(step.free)
    assert all(o in live and o not in freed for o in plan.outputs)


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_a_fixed_plan_runs_only_the_chosen_ops_and_its_slots_are_sound(darts, seed):
    space, net = darts
    arch = space.sample(seed)
    plan = net.fix(arch).plan()
    _check_slots(plan)
    assert not any(isinstance(s, Mix) for s in plan.steps)
    calls = [s for s in plan.steps if isinstance(s, Call)]
    discrete = nasc.instantiate(space, arch, weights=net)
    # every op of the discrete network is one call of the plan (the discrete net adds no
    # others; identities and zero candidates are no calls in either)
    n_discrete = sum(1 for n in discrete.graph.nodes if n.op == "call_module")
    assert len(calls) <= n_discrete
    _check_slots(net.relax().plan())


def test_fix_without_a_decision_is_an_error_when_the_mode_is_set(darts):
    _, net = darts
    with pytest.raises(SupernetError, match="no decision for active label"):
        net.fix({})
    net.relax()


def _expected(net, arch, x):
    with torch.no_grad():
        return net.fix(arch)(x) if arch is not None else net.relax()(x)


def test_forwards_interleave_correctly(darts):
    """A forward that another forward (in another mode) interrupts midway still computes its
    own mode: a hook on the first cell's op runs a whole forward of another architecture."""
    space, net = darts
    net.eval()
    a1, a2 = space.sample(1), space.sample(2)
    x1, x2 = torch.randn(2, 3, 16, 16), torch.randn(2, 3, 16, 16)
    e1, e2 = _expected(net, a1, x1), _expected(net, a2, x2)
    inner, entered = [], []

    def hook(module, args, out):
        if not entered:
            entered.append(True)
            inner.append(net.fix(a2)(x2))

    first = next(s for s in net.fix(a1).plan().steps if isinstance(s, Call))
    handle = net.ops[first.key].register_forward_hook(hook)
    try:
        with torch.no_grad():
            net.fix(a1)
            out = net(x1)
    finally:
        handle.remove()
    assert inner, "the hook did not run"
    torch.testing.assert_close(out, e1)
    torch.testing.assert_close(inner[0], e2)
    net.relax()


def test_threads_share_one_supernet(darts):
    """Threads each running their own plan (two fixed architectures, the relaxed network)
    get their own results; torch releases the GIL inside ops, so the forwards overlap."""
    space, net = darts
    net.eval()
    cases = [(space.sample(3), torch.randn(2, 3, 16, 16)),
             (space.sample(4), torch.randn(2, 3, 16, 16)), (None, torch.randn(2, 3, 16, 16))]
    expected = [_expected(net, a, x) for a, x in cases]
    plans = [(net.fix(a) if a is not None else net.relax()).plan() for a, _ in cases]
    net.relax()
    results, errors = {}, []

    def work(i):
        try:
            with torch.no_grad():
                results[i] = [net.run(plans[i], cases[i][1]) for _ in range(3)]
        except Exception as e:  # pragma: no cover (reported below)
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for i, e in enumerate(expected):
        for out in results[i]:
            torch.testing.assert_close(out, e)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("channels_last", [True, False])
@settings(max_examples=10, deadline=None)
@given(n_plain=st.integers(0, 2), n_tails=st.integers(0, 3), seed=st.integers(0, 1000))
def test_the_mixture_function_is_the_sum_of_its_terms(training, channels_last, n_plain,
                                                      n_tails, seed):
    """``mixture`` (one autograd function, BN tails folded) against ``w_j x_j + w_k BN_k(t_k)``
    written out with torch's BN: output, every gradient and the running statistics."""
    if n_plain + n_tails == 0:
        return
    torch.manual_seed(seed)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    xs = [torch.randn(3, 5, 4, 6, dtype=torch.double).contiguous(memory_format=fmt)
          .requires_grad_() for _ in range(n_plain + n_tails)]
    w = torch.softmax(torch.randn(n_plain + n_tails, dtype=torch.double), 0).requires_grad_()
    bns = [torch.nn.BatchNorm2d(5, affine=False).double().train(training)
           for _ in range(n_tails)]
    for bn in bns:
        bn.running_mean.normal_(), bn.running_var.uniform_(0.5, 2.0)
    twins = [torch.nn.BatchNorm2d(5, affine=False).double().train(training) for _ in bns]
    for a, b in zip(bns, twins):
        b.load_state_dict(a.state_dict())
    out = mixture.mixture(w[:n_plain], xs[:n_plain], w[n_plain:], xs[n_plain:], bns, training)
    ref = sum(w[j] * xs[j] for j in range(n_plain)) + sum(
        w[n_plain + k] * twins[k](xs[n_plain + k]) for k in range(n_tails))
    torch.testing.assert_close(out, ref)
    g = torch.randn_like(out)
    for a, b in zip(torch.autograd.grad(out, [w, *xs], g),
                    torch.autograd.grad(ref, [w, *xs], g)):
        torch.testing.assert_close(a, b)
    for a, b in zip(bns, twins):
        torch.testing.assert_close(a.running_mean, b.running_mean)
        torch.testing.assert_close(a.running_var, b.running_var)
        assert int(a.num_batches_tracked) == int(b.num_batches_tracked)


def test_torch_compile_captures_a_fixed_supernet_as_one_graph():
    """The plan is straight-line Python over constants: dynamo captures a whole training
    forward of a fixed supernet without a graph break (``fullgraph=True``; the ``eager``
    backend keeps the test fast: capture is what is tested, not code generation)."""
    space = nasc.load("darts", C=4, layers=1, steps=2, multiplier=2)
    torch.manual_seed(0)
    net = nasc.compile(space, method="darts").fix(space.sample(0))
    x = torch.randn(2, 3, 8, 8)
    torch._dynamo.reset()
    compiled = torch.compile(net, backend="eager", fullgraph=True)
    net.eval()
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), net(x))


@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("channels_last", [True, False])
def test_partial_sum_is_the_weighted_sum_of_the_partial_merges(shuffle, stride, channels_last):
    """PC-DARTS: the fused edge-normalised sum of partial-channel merges against
    ``sum_j p_j PartialMerge(mix_j, x_j)``: output and every gradient."""
    from nasc.backends.torch.ops import PartialMerge

    torch.manual_seed(stride)
    k, c = 4, 8
    pm = PartialMerge(c // k, k, stride, shuffle)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    xs = [torch.randn(2, c, 6, 6, dtype=torch.double).contiguous(memory_format=fmt)
          .requires_grad_() for _ in range(3)]
    ms = [torch.randn(2, c // k, 6 // stride, 6 // stride, dtype=torch.double)
          .contiguous(memory_format=fmt).requires_grad_() for _ in range(3)]
    p = torch.softmax(torch.randn(3, dtype=torch.double), 0).requires_grad_()
    ref = sum(p[j] * pm(ms[j], xs[j]) for j in range(3))
    byps = [pm.mp(x[:, c // k :]) if pm.mp is not None else x[:, c // k :] for x in xs]
    out = mixture.partial_sum(p, ms, byps, c // k, k, shuffle)
    torch.testing.assert_close(out, ref)
    assert out.is_contiguous(memory_format=fmt)
    g = torch.randn_like(out)
    for a, b in zip(torch.autograd.grad(out, [p, *ms, *xs], g),
                    torch.autograd.grad(ref, [p, *ms, *xs], g)):
        torch.testing.assert_close(a, b)
