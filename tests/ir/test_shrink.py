"""HR-NAS importance relaxation, threshold derivation and shrinking (§3.3, eq. 6–7): the IR
passes, and the torch side that slices the kept weights."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from nasc.ir.cost import cost
from nasc.ir.nodes import Merge, Op, ValueChoice
from nasc.ir.passes import (
    PassError,
    PassManager,
    derive_units,
    insert_alignment,
    registered,
    relax_importance,
    shrink,
    unit_deltas,
)
from nasc.ir.passes.importance import unit_ops
from nasc.ir.verify import verify

import nasc
from nasc.search import hrnas

SMALL = dict(stem=[4, 4], widths=[[4], [4, 8], [4, 8, 8]], blocks=[[1], [1, 1], [1, 1, 1]],
             head=[4, 8, 8], last=8, r=1, tokens=3, s=2, d=4, classes=3)  # fmt: skip
BLOCK = """
import hrnas_ops
space block(r: int = 2, tokens: int = 3) {
    input x: image(4, 4)
    let rc = r * 4
    let y = mixconv(x, 4, c3=choose {0..rc + 1} @"b.c3", c5=choose {0..rc + 1} @"b.c5",
                    c7=choose {0..rc + 1} @"b.c7")
    output y = y + transformer(x, 4, n=choose {0..tokens + 1} @"b.n", s=2, d=4)
}
"""


pytestmark = pytest.mark.usefixtures("one_thread_module")


@pytest.fixture(scope="module")
def small_space():
    return nasc.load("hrnas", **SMALL)


@pytest.fixture(scope="module")
def relaxed(small_space):
    return PassManager([registered("insert_alignment"), registered("importance")],
                       verify_each=True).run(small_space.graph)  # fmt: skip


def test_importance_relaxes_every_unit_at_its_largest_count(small_space, relaxed):
    verify(relaxed)
    assert not relaxed.nodes_of(ValueChoice)
    top = {r.label: max(r.values) for r in small_space.graph.nodes_of(ValueChoice)}
    ops = unit_ops(relaxed)
    assert len(ops) == 2 * 19  # a mixconv and a transformer per searching block (1+1+2+2+5+3+5)
    for rec in ops:
        p = dict(rec.params)
        assert p["eps"] == 1e-3 and all(p[k] == top[lab] for k, lab in p["units"])
    assert "units=[" in str(relaxed)  # printing shows the relaxed form


def test_importance_rejects_a_shared_unit_label():
    space = nasc.parse(BLOCK.replace('@"b.c5"', '@"b.c3"'))
    with pytest.raises(PassError, match="'b.c3' is used in"):
        relax_importance(space.graph)


def test_derive_keeps_units_above_eps_and_shrink_sets_the_counts():
    g = relax_importance(nasc.parse(BLOCK).graph)
    factors = {
        "b.c3": [0.5, 0.0, 1e-4, -0.2, 2.0, 0.001, 0.3, 0.0],
        "b.c5": [0.0] * 8,
        "b.c7": [1.0] * 8,
        "b.n": [0.1, -0.0005, 0.2],
    }
    kept = derive_units(g, factors, eps=1e-3)
    assert kept == {"b.c3": 4, "b.c5": 0, "b.c7": 8, "b.n": 2}
    small = shrink(g, kept=kept)
    (mix,) = [r for r in small.nodes_of(Op) if r.op == "mixconv"]
    assert {k: v for k, v in mix.params if k in ("c3", "c5", "c7")} == dict(c3=4, c5=0, c7=8)
    assert cost(small, "macs", input_size=16) < cost(g, "macs", input_size=16)
    with pytest.raises(PassError, match="can keep 0..8 units"):
        shrink(g, kept={"b.c3": 9})
    with pytest.raises(PassError, match="no search-unit label"):
        shrink(g, kept={"b.c4": 1})


def test_a_transformer_without_tokens_leaves_the_sum():
    g = relax_importance(nasc.parse(BLOCK).graph)
    out = shrink(g, kept={"b.n": 0}, final=True)
    verify(out)
    assert not any(r.op == "transformer" for r in out.nodes_of(Op))
    assert not out.nodes_of(Merge) and not unit_ops(out)  # the sum is gone, marks dropped


def test_unit_deltas_are_equation_6():
    g = relax_importance(nasc.parse(BLOCK).graph)
    hw = 4  # a 16x16 input at stride 4
    d = unit_deltas(g, kind="macs", input_size=16)
    for k in (3, 5, 7):  # one channel: its 1x1 in, k x k depthwise and 1x1 out
        assert d[f"b.c{k}"] == hw * hw * (4 + k * k + 4)
    # a token: O_T(n') - O_T(n' - 1) with n' = 3
    s2, hd, ffn = 4, 4, 16

    def o_t(n: int) -> int:  # projector, encoder + decoder (§3.1), inverse projector
        layer = 4 * n * s2 * hd + 2 * n * n * hd + 2 * n * s2 * ffn
        return (4 + 2) * n * s2 + 2 * layer + n * 4 * s2

    assert d["b.n"] == o_t(3) - o_t(2)
    assert unit_deltas(g, counts={"b.n": 2})["b.n"] == o_t(2) - o_t(1)


@settings(max_examples=40)
@given(st.data())
def test_shrink_keeps_verify_true_and_never_increases_cost(data):
    g = relax_importance(insert_alignment(nasc.parse(BLOCK).graph))
    for _ in range(data.draw(st.integers(1, 3))):  # progressive: shrink the shrunk graph
        kept = {}
        for rec in unit_ops(g):
            p = dict(rec.params)
            for k, lab in p["units"]:
                if data.draw(st.booleans()):
                    kept[lab] = data.draw(st.integers(0, p[k]))
        before = {kind: cost(g, kind, input_size=16) for kind in ("params", "macs")}
        g = shrink(g, kept=kept)
        verify(g)
        for kind in ("params", "macs"):
            assert cost(g, kind, input_size=16) <= before[kind]


@settings(max_examples=15)
@given(st.data())
def test_shrunk_graph_costs_what_the_space_resolved_at_the_kept_counts_costs(data):
    space = nasc.parse(BLOCK)
    g = relax_importance(space.graph)
    kept = {r.label: data.draw(st.integers(0, max(r.values)))
            for r in space.graph.nodes_of(ValueChoice)}  # fmt: skip
    final = shrink(g, kept=kept, final=True)
    for kind in ("params", "macs"):
        assert cost(final, kind, input_size=16) == cost(space.resolve(kept), kind, input_size=16)


def _randomise(net, seed: int, dead: float) -> None:
    """Random factors (some exactly zero), BN shifts and running statistics."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5, generator=gen)
                m.bias.uniform_(-0.5, 0.5, generator=gen)
                m.running_mean.uniform_(-0.5, 0.5, generator=gen)
                m.running_var.uniform_(0.5, 1.5, generator=gen)
        for f in hrnas.importance_factors(net).values():
            f[torch.rand(f.shape, generator=gen) < dead] = 0.0


@pytest.mark.parametrize("task", ["classification", "segmentation"])
def test_shrunk_network_computes_what_the_masked_supernet_computes(task):
    space = nasc.load("hrnas", **{**SMALL, "task": task})
    net = nasc.compile(space, method="hrnas", seed=0)
    _randomise(net, seed=1, dead=0.4)
    net.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ref = net(x)
        small = hrnas.shrink(net).eval()
        discrete = hrnas.instantiate(net).eval()
        assert torch.allclose(small(x), ref, atol=1e-5)
        assert torch.allclose(discrete(x), ref, atol=1e-5)
        # a second round of progressive shrinking on the shrunk supernet
        _randomise(small, seed=2, dead=0.3)
        again = small(x)
        assert torch.allclose(hrnas.shrink(small).eval()(x), again, atol=1e-5)
    units = [sum(f.numel() for f in hrnas.importance_factors(m).values()) for m in (net, small)]
    assert units[1] < units[0]
    # the architecture of the progressively shrunk supernet is one of the space's
    arch = space.canonical(hrnas.derive(hrnas.shrink(small)))
    assert sum(p.numel() for p in hrnas.instantiate(small).parameters()) == cost(
        space.resolve(arch), "params"
    )
    assert sum(p.numel() for p in discrete.parameters()) == cost(
        space.resolve(hrnas.derive(net)), "params"
    )


def test_resource_penalty_is_equation_7():
    space = nasc.parse(BLOCK)
    net = nasc.compile(space, method="hrnas", seed=0)
    factors = hrnas.importance_factors(net)
    with torch.no_grad():
        factors["b.c3"][:3] = torch.tensor([-0.5, 0.0, 2.0])
        factors["b.n"][0] = 0.0  # a removed token: Delta of the transformer at n' = 2
    deltas = unit_deltas(net.graph, input_size=16, counts={"b.n": 2})
    penalty = hrnas.resource_penalty(net, input_size=16, normalize=False)
    expected = sum(deltas[lab] * f.detach().abs().sum() for lab, f in factors.items())
    assert torch.allclose(penalty, expected)
    penalty.backward()
    assert torch.equal(factors["b.c3"].grad[:3], deltas["b.c3"] * torch.tensor([-1.0, 0.0, 1.0]))
    normalized = hrnas.resource_penalty(net, input_size=16)  # mean Delta per unit is 1
    units = sum(f.numel() for f in factors.values())
    mean = sum(deltas[lab] * f.numel() for lab, f in factors.items()) / units
    assert torch.allclose(normalized, expected / mean)
