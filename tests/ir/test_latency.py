"""Latency from a look-up table (DenseNAS §3.3.2 eq. 5-7, §4.1): the table's keys and file,
exact latency of a network, the differentiable expected latency, and ``nasc profile``."""

from __future__ import annotations

import json
import random

import pytest
import torch
from nasc.ir.cost import (
    CostError,
    LatencyTable,
    call_key,
    cost,
    expected_cost,
    one_hot,
    op_calls,
)
from nasc.ir.nodes import Op
from nasc.ir.passes.align import insert_alignment

import nasc
import nasc.cli
from nasc.search.profile import profile

SMALL_DENSENAS = dict(widths=[4, 6, 8, 10, 12, 16, 20, 24, 28],
                      strides=[2, 4, 8, 8, 8, 16, 16, 32, 32], stages=[0, 1, 2, 2, 2, 3, 3, 4, 4],
                      layers=[0, 3, 3, 3, 3, 3, 3, 0, 0], classes=5, stem=4, last=32)

ALIGNED = """
import nn
space s(w: int = 8) {
    input x: image(3)
    let y = conv2d(x, w, stride=2)
    let z = relu(conv2d(x, 4, k=choose {1, 3} @"k"))
    output linear(global_avg_pool(y + align(z, channels=w, stride=2, policy="dcnas")), 10)
}
"""


pytestmark = pytest.mark.usefixtures("one_thread_module")


def synthetic(space, input_size=(32, 32), seed=0) -> LatencyTable:
    """A table with a random latency for every call the space needs."""
    rng = random.Random(seed)
    return LatencyTable.from_entries(
        {k: rng.uniform(0.1, 2.0) for k in op_calls(space, input_size=input_size)})


def hand_key(g, rec, size) -> str:
    """The key of an op node written out by hand: name(sorted params) [CxHxW] -> CxHxW."""
    def lit(v):
        return json.dumps(v) if isinstance(v, bool | str) else str(v)

    def shape(ty):
        if ty.layout.value == "vector":
            return f"{ty.channels}x1x1"
        return f"{ty.channels}x{-(-size // ty.stride)}x{-(-size // ty.stride)}"

    params = ", ".join(f"{k}={lit(v)}" for k, v in sorted(rec.params))
    ins = ", ".join(shape(g[i].type) for i in g.inputs(rec.id))
    return f"{rec.op}({params}) [{ins}] -> {shape(rec.type)}"


def test_keys_name_the_op_its_sorted_parameters_and_shapes():
    space = nasc.parse(ALIGNED)
    keys = set(op_calls(space, input_size=(16, 16)))
    assert "conv2d(C=8, bias=false, dilation=1, groups=1, k=3, padding=1, stride=2) " \
           "[3x16x16] -> 8x8x8" in keys
    # both values of the kernel-size choice, and the vector shapes of the classifier
    assert {k for k in keys if k.startswith("conv2d(C=4,")} == {
        "conv2d(C=4, bias=false, dilation=1, groups=1, k=1, padding=0, stride=1) "
        "[3x16x16] -> 4x16x16",
        "conv2d(C=4, bias=false, dilation=1, groups=1, k=3, padding=1, stride=1) "
        "[3x16x16] -> 4x16x16"}
    assert "linear(bias=true, out=10) [8x1x1] -> 10x1x1" in keys


def test_exact_latency_is_the_sum_of_the_ops_entries():
    space = nasc.load("densenas", **SMALL_DENSENAS)
    lut = synthetic(space)
    for seed in range(3):
        g = space.resolve(space.sample(seed)).graph
        by_hand = sum(lut.entries[hand_key(g, r, 32)] for r in g.nodes_of(Op))
        assert cost(g, "latency", table=lut) == pytest.approx(by_hand, rel=1e-12)
        # the other kinds still come from the base table
        assert cost(g, "params", table=lut) == cost(g, "params")


def test_an_align_costs_the_entries_of_the_ops_it_is_lowered_to():
    space = nasc.parse(ALIGNED)
    lut = synthetic(space, input_size=(16, 16))
    g = space.resolve({"k": 3}).graph
    lowered = insert_alignment(g)
    by_hand = sum(lut.entries[hand_key(lowered, r, 16)] for r in lowered.nodes_of(Op))
    assert cost(g, "latency", table=lut, input_size=16) == pytest.approx(by_hand, rel=1e-12)
    assert len(lowered.nodes_of(Op)) > len(g.nodes_of(Op))  # the align became ops


def test_expected_latency_equals_the_exact_one_at_one_hot():
    space = nasc.load("densenas", **SMALL_DENSENAS)
    lut = synthetic(space, seed=1)
    for seed in range(3):
        arch = space.sample(seed)
        exact = cost(space.resolve(arch).graph, "latency", table=lut)
        e = expected_cost(space.graph, "latency", one_hot(space.graph, arch), table=lut)
        assert e == pytest.approx(exact, rel=1e-9)


def test_expected_latency_is_differentiable_and_exact_at_one_hot_weights():
    space = nasc.load("nas_bench_201", C=4, N=1)
    lut = synthetic(space)
    net = nasc.compile(space, method="proxyless")
    e = net.expected_cost("latency", table=lut)
    e.backward()
    assert all(a.grad is not None and a.grad.abs().sum() > 0 for a in net.arch_parameters())
    arch = space.sample(3)
    with torch.no_grad():  # one-hot weights: the expected latency is the network's latency
        for lab, a in zip(net.labels, net.alpha):
            rec = next(r for r in net.graph.relaxed_nodes() if r.label == lab)
            a.copy_(torch.tensor([60.0 if o == arch[lab] else -60.0 for o in rec.options]))
    exact = cost(space.resolve(arch).graph, "latency", table=lut)
    assert float(net.expected_cost("latency", table=lut).detach()) == pytest.approx(exact, rel=1e-6)


def test_densenas_expected_latency_has_gradients_for_alpha_and_beta():
    """DenseNAS eq. 5-7: the latency term reaches the op weights and the block betas."""
    space = nasc.load("densenas", **SMALL_DENSENAS)
    net = nasc.compile(space, method="densenas", seed=0)
    e = net.expected_cost("latency", table=synthetic(space))
    torch.log(e).backward()  # the loss of eq. 8 is lambda * log_tau(latency)
    grads = {lab: a.grad for lab, a in zip(net.labels, net.alpha) if len(a) > 1}
    assert all(g is not None and g.abs().sum() > 0 for g in grads.values())
    assert any(lab.endswith(".in") for lab in grads)


def test_a_missing_entry_names_the_op_and_its_shape():
    space = nasc.parse(ALIGNED)
    lut = synthetic(space, input_size=(16, 16))
    g = space.resolve({"k": 1}).graph
    with pytest.raises(CostError, match=r"no entry for op 'conv2d' at 'conv2d\(C=8, .*\[3x32x32\]"):
        cost(g, "latency", table=lut)  # measured at 16x16, asked at 32x32
    partial = LatencyTable.from_entries(
        {k: v for k, v in lut.entries.items() if not k.startswith("linear")})
    with pytest.raises(CostError, match=r"'linear\(bias=true, out=10\) \[8x1x1\] -> 10x1x1'"):
        cost(g, "latency", table=partial, input_size=16)


def test_tables_round_trip_through_json(tmp_path):
    space = nasc.parse(ALIGNED)
    lut = LatencyTable.from_entries(synthetic(space).entries, batch=8, device="test")
    path = tmp_path / "lut.json"
    lut.save(path)
    data = json.loads(path.read_text())
    assert data["format"] == "nasc-latency-table/1" and data["unit"] == "ms"
    back = LatencyTable.load(path)
    assert dict(back.entries) == dict(lut.entries) and (back.batch, back.device) == (8, "test")
    g = space.resolve({"k": 3}).graph
    assert cost(g, "latency", table=back) == cost(g, "latency", table=lut)


@pytest.mark.parametrize("text, message", [
    ("not json", "not JSON"),
    ('{"entries": {}}', "not a 'nasc-latency-table/1' file"),
    ('{"format": "nasc-latency-table/1", "entries": {"relu() [1x1x1] -> 1x1x1": -1}}',
     "need a number >= 0"),
    ('{"format": "nasc-latency-table/1", "entries": []}', "'entries' must map"),
    ('{"format": "nasc-latency-table/1", "batch": 0, "entries": {}}', "'batch' must be"),
])
def test_bad_tables_are_clear_errors(tmp_path, text, message):
    path = tmp_path / "lut.json"
    path.write_text(text)
    with pytest.raises(CostError, match=message):
        LatencyTable.load(path)
    with pytest.raises(CostError, match="cannot read latency table"):
        LatencyTable.load(tmp_path / "missing.json")


def test_profile_measures_every_op_call_once():
    space = nasc.parse(ALIGNED)
    seen = []
    lut = profile(space, input_size=(8, 8), warmup=1, repeats=3, threads=1,
                  on_call=lambda i, n, call, ms: seen.append(call.key))
    assert set(lut.entries) == set(op_calls(space, input_size=(8, 8))) == set(seen)
    assert len(seen) == len(set(seen))
    assert all(v > 0 for v in lut.entries.values())
    assert "1 threads" in lut.device
    g = space.resolve({"k": 1}).graph
    assert cost(g, "latency", table=lut, input_size=8) > 0
    with pytest.raises(nasc.NasError, match="repeats must be"):
        profile(space, repeats=0)


def test_cli_profile_writes_a_table(tmp_path, capsys):
    out = tmp_path / "lut.json"
    code = nasc.cli.main(["profile", "nas_bench_201", "-D", "N=1", "-D", "C=4",
                          "--input-size", "8", "8", "--warmup", "0", "--repeats", "2",
                          "--threads", "1", "-o", str(out)])
    stdout, err = capsys.readouterr()
    assert code == 0, err
    lut = LatencyTable.load(out)
    space = nasc.load("nas_bench_201", N=1, C=4)
    assert set(lut.entries) == set(op_calls(space, input_size=(8, 8)))
    assert f"wrote {out}: {len(lut.entries)} op calls" in stdout
    arch = space.sample(0)
    assert cost(space.resolve(arch).graph, "latency", table=lut, input_size=8) > 0
    code = nasc.cli.main(["profile", "nas_bench_201", "-D", "N=1", "-D", "C=4", "--input-size",
                          "8", "8", "--repeats", "1", "-o", str(tmp_path / "no" / "lut.json")])
    assert code == 1 and "Traceback" not in capsys.readouterr().err


def test_call_key_example():
    from nasc.ir.cost import OpCall

    call = OpCall(op="mbconv", params=(("k", 3), ("C", 24), ("se", False), ("act", "relu6")),
                  in_channels=(16,), in_hw=((112, 112),), out_channels=24, out_hw=(56, 56))
    assert call_key(call) == 'mbconv(C=24, act="relu6", k=3, se=false) [16x112x112] -> 24x56x56'
