"""DenseNAS (Fang et al., CVPR 2020, §3.1): the densely connected block space of the MBV2 search
configuration (JaminFong/DenseNAS), structurally and end to end at 32x32."""

from __future__ import annotations

import math
import random

import pytest
import torch
from nasc.ir.cost import cost, expected_cost, one_hot
from nasc.ir.nodes import InputChoice, InputMixture, Mixture, OpChoice
from nasc.ir.passes.relax import pick_sources
from nasc.ir.printer import print_graph
from nasc.ir.verify import verify

import nasc
import nasc.cli

# configs/imagenet_search_cfg_mbv2.yaml (net_scale) and optim.last_dim of the authors' code
CHS = [16, 24, 32, 40, 48, 56, 64, 72, 96, 112, 128, 160, 176, 192, 320, 352, 384]
FM_SIZES = [112, 56, 28, 28, 28, 14, 14, 14, 14, 14, 14, 7, 7, 7, 7, 7, 7]
STAGE = [0, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 5, 6, 6, 6, 7]  # the last: the final 1x1 block
NUM_LAYERS = [0, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 0, 0, 0]
LAST_DIM = 1984
N_HEAD, N_STACK = 6, 7  # Table 1: six MBConvs; the stacking layers also have skip

# a small configuration in the manner of the MBV2 one (9 blocks in 5 stages, 21 connections)
SMALL_WIDTHS = [4, 6, 8, 10, 12, 16, 20, 24, 28]
SMALL_FM = [16, 8, 4, 4, 4, 2, 2, 1, 1]  # at 32x32: strides 2, 4, 8, 8, 8, 16, 16, 32, 32
SMALL_STAGE = [0, 1, 2, 2, 2, 3, 3, 4, 4, 5]
SMALL_LAYERS = [0, 3, 3, 3, 3, 3, 3, 0, 0]
SMALL = dict(widths=SMALL_WIDTHS, strides=[32 // f for f in SMALL_FM], stages=SMALL_STAGE[:-1],
             layers=SMALL_LAYERS, classes=5, stem=4, last=32)


pytestmark = pytest.mark.usefixtures("one_thread_module")


def reference_successors(fm_sizes, stage, m):
    """``Network._create_output_list`` of models/search_space_base.py, transcribed: block i ->
    the blocks it connects to. Block ``len(fm_sizes)`` is the final 1x1 block."""
    fm = fm_sizes + [fm_sizes[-1]]
    outs = {}
    for i in range(len(fm) - 1):
        outs[i] = []
        for j in range(m):
            o = i + j + 1
            if o >= len(fm) or stage[o] - stage[i] > 1:
                break
            if fm[i] / fm[o] not in (1, 2):
                break  # only a resolution ratio of 1 or 2
            outs[i].append(o)
    return outs


def predecessors(outs):
    preds = {}
    for i, js in outs.items():
        for j in js:
            preds.setdefault(j, []).append(i)
    return preds


def space_edges(space, widths):
    """(source block, destination block) of every connection, read off the graph: the source
    is the node each pick input comes from, identified by its width (widths are distinct)."""
    n = len(widths)
    edges = set()
    for rec in space.graph.nodes_of(InputChoice):
        dest = n if rec.label == "last.in" else int(rec.label.split(".")[0][1:])
        for src in pick_sources(space.graph, rec.id):
            ty = space.graph[src].type
            edges.add((widths.index(ty.channels), dest))
    return edges


def test_blocks_stages_and_layers_follow_the_mbv2_search_config():
    space = nasc.load("densenas")
    picks = space.graph.nodes_of(InputChoice)
    assert len(picks) == 16 + 1  # 16 searched blocks and the final 1x1 block, one input each
    assert all(r.k_min == r.k_max == 1 for r in picks)
    widths = sorted(r.type.channels for r in picks)
    assert widths == CHS[1:] + [LAST_DIM]
    strides = {r.type.channels: r.type.stride for r in picks}
    assert [strides[c] for c in CHS[1:]] == [224 // s for s in FM_SIZES[1:]]
    ops = space.graph.nodes_of(OpChoice)
    stack = [r for r in ops if ".layer" in r.label]
    heads = [r for r in ops if ".head" in r.label]
    assert len(stack) == sum(NUM_LAYERS) == 39
    assert all(len(r.options) == N_STACK and r.options[-1] == "skip" for r in stack)
    assert len(heads) == 54 - 3  # every connection but the three into the final block
    assert all(len(r.options) == N_HEAD and "skip" not in r.options for r in heads)
    assert heads[0].options[0] == "mbconv[k=3, e=3]"


def test_space_verifies_and_round_trips_through_to_nas():
    space = nasc.load("densenas")
    verify(space.graph)
    again = nasc.parse(space.to_nas(), file="densenas.nas")
    assert print_graph(again.graph, locations=False) == print_graph(space.graph, locations=False)


def test_connection_rule_is_the_reference_code_rule():
    space = nasc.load("densenas")
    ref = reference_successors(FM_SIZES, STAGE, 4)
    expected = {(i, j) for i, js in ref.items() for j in js}
    assert space_edges(space, CHS) == expected
    assert len(expected) == 54
    # written out: block j reads the blocks preds[j] (17 is the final 1x1 block)
    assert predecessors(ref) == {
        1: [0], 2: [1], 3: [1, 2], 4: [1, 2, 3], 5: [2, 3, 4], 6: [2, 3, 4, 5], 7: [3, 4, 5, 6],
        8: [5, 6, 7], 9: [5, 6, 7, 8], 10: [6, 7, 8, 9], 11: [8, 9, 10], 12: [8, 9, 10, 11],
        13: [9, 10, 11, 12], 14: [11, 12, 13], 15: [11, 12, 13, 14], 16: [12, 13, 14, 15],
        17: [14, 15, 16],
    }
    fm = FM_SIZES + [FM_SIZES[-1]]
    for i, j in expected:  # the paper's rule (§3.1.3): j - i <= m and H_i / H_j <= 2
        assert 0 < j - i <= 4 and fm[i] / fm[j] <= 2


@pytest.mark.parametrize("m", [1, 2, 3, 5])
def test_connection_rule_follows_m(m):
    space = nasc.load("densenas", m=m)
    ref = reference_successors(FM_SIZES, STAGE, m)
    assert space_edges(space, CHS) == {(i, j) for i, js in ref.items() for j in js}


def test_count_is_exact():
    space = nasc.load("densenas")
    preds = predecessors(reference_successors(FM_SIZES, STAGE, 4))
    # block j: one input of n_j, each with its own 6-way head; 7 options per stacking layer;
    # the final block picks one of its inputs (its 1x1 conv is fixed)
    expected = len(preds[17])
    for j in range(1, 17):
        expected *= N_HEAD * len(preds[j]) * N_STACK ** NUM_LAYERS[j]
    assert space.count() == expected


def test_an_architecture_is_a_path_of_blocks():
    """Blocks off the chosen path reach no output, so distinct networks are paths of blocks
    with the decisions of the blocks on them: sum over paths of prod 6 * 7^layers."""
    widths, fm = [4, 6, 8, 12], [16, 8, 4, 4]
    stage, layers = [0, 1, 2, 2, 3], [0, 0, 0, 0]
    space = nasc.load("densenas", widths=widths, strides=[32 // f for f in fm],
                      stages=stage[:-1], layers=layers, classes=3, stem=4, last=8)
    preds = predecessors(reference_successors(fm, stage, 4))
    paths = {0: 1}  # block -> decisions of all paths from block 0 ending there
    for j in range(1, len(widths) + 1):
        per_block = N_HEAD * N_STACK ** layers[j] if j < len(widths) else 1
        paths[j] = sum(paths[i] for i in preds[j]) * per_block
    networks = {space.resolve(a).to_nas().split("\n", 1)[1] for a in space.enumerate()}
    assert len(networks) == paths[len(widths)] < space.count()


def small_supernet(seed: int = 0):
    space = nasc.load("densenas", **SMALL)
    net = nasc.compile(space, method="densenas", seed=seed)
    return space, net


def outgoing_probabilities(net, preds):
    """DenseNAS eq. 3, from the betas: p[i, j] = softmax over the connections leaving i."""
    beta = {lab: a.detach() for lab, a in zip(net.labels, net.alpha)}
    n = max(preds)
    succ = {}
    for j, srcs in preds.items():
        for i in srcs:
            succ.setdefault(i, []).append(j)
    p = {}
    for i, js in succ.items():
        b = torch.stack([beta["last.in" if j == n else f"b{j}.in"][preds[j].index(i)] for j in js])
        for j, pj in zip(js, torch.softmax(b, 0).tolist()):
            p[i, j] = pj
    return p


def test_densenas_compiles_runs_derives_and_instantiates_at_32x32():
    space, net = small_supernet()
    assert net.method == "densenas"
    assert all(r.normalize == "outgoing" for r in net.graph.nodes_of(InputMixture))
    # an architecture step with every path relaxed (§3.2, §3.3.1)
    x, y = torch.randn(2, 3, 32, 32), torch.tensor([0, 3])
    a_opt = torch.optim.Adam(net.arch_parameters(), lr=3e-4)
    before = [a.detach().clone() for a in net.alpha]
    out = net.relax()(x)
    assert out.shape == (2, 5)
    torch.nn.functional.cross_entropy(out, y).backward()
    a_opt.step()
    moved = [not torch.equal(a, b) for a, b in zip(net.alpha, before) if len(a) > 1]
    assert moved and all(moved)  # (a lone input's beta has no gradient: softmax of one)
    # Viterbi over the block transitions (§3.3.1) with random betas
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for a in net.alpha:
            a.copy_(torch.randn(a.shape, generator=g))
    arch = space.canonical(net.derive(method="viterbi"))
    preds = predecessors(reference_successors(SMALL_FM, SMALL_STAGE, 4))
    assert sum(map(len, preds.values())) == 21
    n = len(SMALL_WIDTHS)
    path, j = [n], n
    while j:
        j = preds[j][arch["last.in" if j == n else f"b{j}.in"][0]]
        path.insert(0, j)
    assert path[0] == 0 and all((i, j) in {(s, d) for d in preds for s in preds[d]}
                                for i, j in zip(path, path[1:]))
    # the most probable path: brute force over every path from block 0 to the final block
    p = outgoing_probabilities(net, preds)

    def paths(j):  # every path from block 0 to block j
        return [[0]] if j == 0 else [q + [j] for i in preds[j] for q in paths(i)]

    every = paths(n)
    assert len(every) == 63
    assert path == max(every, key=lambda q: sum(math.log(p[e]) for e in zip(q, q[1:])))
    # the derived network holds exactly the path: the stem's MBConv, then per block its head
    # and its stacking layers that are not skip
    kept = sum(1 + sum(arch[f"b{b}.layer{ell}"] != "skip" for ell in range(SMALL_LAYERS[b]))
               for b in path[1:-1])
    resolved = space.resolve(arch).graph
    assert sum(getattr(r, "op", None) == "mbconv" for r in resolved) == 1 + kept
    model = nasc.instantiate(space, arch)
    assert model(x).shape == (2, 5)


def test_sample_step_and_inherited_network():
    """A weight step on one sampled candidate per layer (§3.3.3); a derived network inherits
    the supernet's weights and computes what the supernet fixed to it computes."""
    space, net = small_supernet(seed=2)
    x, y = torch.randn(2, 3, 32, 32), torch.tensor([0, 3])
    w_opt = torch.optim.SGD(net.weight_parameters(), lr=0.1)
    net.sample(seed=0, step=0)
    loss = torch.nn.functional.cross_entropy(net(x), y)
    w_opt.zero_grad()
    loss.backward()
    drawn = net._mode[1]
    mix = next(r for r in net.graph.nodes_of(Mixture) if r.label == "b1.layer0")
    (k,) = drawn["b1.layer0"]
    for slot, nid in enumerate(net.graph.inputs(mix.id)):
        if str(nid) not in net.ops or list(net.graph.users(nid)) != [mix.id]:
            continue  # skip reads the block's input itself
        grads = [q.grad for q in net.ops[str(nid)].parameters()]
        if slot == k:
            assert grads and all(gr is not None for gr in grads)
        else:  # candidates not drawn do not run
            assert all(gr is None or not gr.any() for gr in grads)
    w_opt.step()
    arch = space.canonical(net.derive(method="viterbi"))
    net.eval()
    inherited = nasc.instantiate(space, arch, weights=net).eval()
    torch.testing.assert_close(inherited(x), net.fix(arch)(x))


def test_relaxed_block_input_is_eq_4():
    """x_j = sum_i p_ij H_ij(x_i) with p normalised over the connections leaving block i."""
    space, net = small_supernet()
    rec = next(r for r in net.graph.nodes_of(InputMixture) if r.label == "b3.in")
    with torch.no_grad():
        for a in net.alpha:
            a.copy_(torch.randn(a.shape, generator=torch.Generator().manual_seed(3)))
    ins = [torch.randn(1, 10, 4, 4) for _ in range(rec.n)]
    values = dict(zip(net.graph.inputs(rec.id), ins))
    got = net._input_mixture(rec, net.graph.inputs(rec.id), values)
    preds = predecessors(reference_successors(SMALL_FM, SMALL_STAGE, 4))
    p = outgoing_probabilities(net, preds)
    want = sum(p[i, 3] * h for i, h in zip(preds[3], ins))
    torch.testing.assert_close(got, want)


def test_expected_cost_is_exact_at_one_hot_and_differentiable():
    space, net = small_supernet()
    e = net.expected_cost("params", input_size=(32, 32))
    e.backward()  # (a lone input is picked surely: its beta plays no part)
    assert all(a.grad is not None and a.grad.any() for a in net.arch_parameters() if len(a) > 1)
    rng = random.Random(0)
    for _ in range(3):
        arch = space.sample(rng.randrange(1 << 30))
        exact = cost(space.resolve(arch).graph, "macs")
        assert expected_cost(space.graph, "macs", one_hot(space.graph, arch)) == exact


def test_show_dot_draws_the_blocks(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(nasc.cli.shutil, "which", lambda name: None)  # no Graphviz run
    dot = tmp_path / "densenas.dot"
    assert nasc.cli.main(["show", "densenas", "--dot", str(dot)]) == 0
    text = dot.read_text()
    assert text.startswith('digraph "densenas"')
    for j in range(1, 17):
        assert f"@b{j}.in (1 of " in text
    assert "@last.in (1 of 3, sum)" in text
    assert "architectures: " in capsys.readouterr().out


# DenseNAS-C as the authors' code prints it (output/log.txt of JaminFong/DenseNAS):
# [[in_ch, out_ch], head_op, [stack_ops that are not skip], num_stack_layers, stride]
DENSENAS_C = [
    [[16, 24], "mbconv_k3_t6", [], 0, 2],
    [[24, 48], "mbconv_k7_t6", ["mbconv_k3_t3"], 1, 2],
    [[48, 72], "mbconv_k5_t6", ["mbconv_k3_t6", "mbconv_k3_t3"], 2, 2],
    [[72, 128], "mbconv_k3_t6", ["mbconv_k3_t3", "mbconv_k3_t3"], 2, 1],
    [[128, 160], "mbconv_k3_t6", ["mbconv_k7_t3", "mbconv_k5_t6", "mbconv_k7_t3"], 3, 2],
    [[160, 176], "mbconv_k3_t3", ["mbconv_k3_t6", "mbconv_k3_t6", "mbconv_k3_t6"], 3, 1],
    [[176, 384], "mbconv_k7_t6", [], 0, 1],
]


def test_densenas_c_is_the_published_network():
    """stdlib/architectures/densenas_c.json is the authors' DenseNAS-C, whose log reports
    Params = 6.13MB and Mult-Adds = 360.81MB at 224x224 (models/model_derived.py)."""
    space = nasc.load("densenas")
    arch = nasc.Architecture.load("densenas_c")
    preds = predecessors(reference_successors(FM_SIZES, STAGE, 4))

    def name(op):  # mbconv[k=3, e=6] -> mbconv_k3_t6
        k, e = op[len("mbconv[k="):-1].split(", e=")
        return f"mbconv_k{k}_t{e}"

    path, j = [], 17
    while j:
        i = preds[j][arch["last.in" if j == 17 else f"b{j}.in"][0]]
        if j < 17:
            stack = [arch[f"b{j}.layer{ell}"] for ell in range(NUM_LAYERS[j])]
            stack = [name(s) for s in stack if s != "skip"]
            stride = FM_SIZES[i] // FM_SIZES[j]
            path.insert(0, [[CHS[i], CHS[j]], name(arch[f"b{j}.head{i}"]), stack, len(stack),
                            stride])
        j = i
    assert path == DENSENAS_C
    resolved = space.resolve(arch)
    assert cost(resolved.graph, "params") == 6_134_144  # 6.13 M
    assert cost(resolved.graph, "macs", input_size=(224, 224)) == 360_808_256  # 360.81 M
    model = nasc.instantiate(space, arch)
    assert sum(q.numel() for q in model.parameters()) == 6_134_144
    assert model.eval()(torch.randn(1, 3, 32, 32)).shape == (1, 1000)


@pytest.mark.parametrize("params, message", [
    (dict(widths=[16, 24]), "one entry per block"),
    (dict(m=0), "at least one connection"),
    (dict(strides=[2, 4, 16] + [8] * 2 + [16] * 6 + [32] * 6), "block 2 has no incoming"),
])
def test_bad_configurations_are_clear_errors(params, message):
    with pytest.raises(nasc.NasError, match=message):
        nasc.load("densenas", **params)
