"""Cell-based stdlib spaces: NASNet (Zoph et al., CVPR 2018, §3) and the ENAS micro space
(Pham et al., ICML 2018, §2.3): exact sizes, cell structure, the new NASNet ops' cost models
against their torch modules, compile + forward/backward at 32x32, derivation, instantiation,
and the published cells (NASNet-A, the ENAS CIFAR-10 micro cell)."""

import math

import pytest
import torch
from nasc.backends.torch.library import OpCall as TorchCall
from nasc.backends.torch.library import default_library
from nasc.ir.cost import DEFAULT, cost
from nasc.ir.cost.table import OpCall
from nasc.ir.nodes import InputChoice
from nasc.ir.printer import print_graph
from nasc.ir.types import TensorType
from nasc.ir.verify import verify

import nasc
import nasc.cli

NASNET_OPS = ("nasnet_identity", "conv_1x3_3x1", "conv_1x7_7x1", "dilated_conv_3x3",
              "avg_pool_3x3", "max_pool_3x3", "max_pool_5x5", "max_pool_7x7", "conv_1x1",
              "conv_3x3", "sep_conv_3x3", "sep_conv_5x5", "sep_conv_7x7")  # fmt: skip
ENAS_OPS = ("sep_conv_3x3", "sep_conv_5x5", "avg_pool_3x3", "max_pool_3x3", "skip_connect")


pytestmark = pytest.mark.usefixtures("one_thread_module")


def cell_count(ops: int, blocks: int) -> int:
    """Decisions of one cell: block b picks 2 of its b + 2 states independently (with
    replacement) and one of ``ops`` operations for each, so ((b + 2) * ops)^2 per block."""
    return math.prod(((b + 2) * ops) ** 2 for b in range(blocks))


@pytest.fixture(scope="module")
def nasnet_small():
    return nasc.load("nasnet", C=4, N=1, blocks=2)


@pytest.fixture(scope="module")
def enas_small():
    return nasc.load("enas", C=4, layers=1)


# ---- NASNet -----------------------------------------------------------------------------------
def test_nasnet_count_is_720_times_13_to_the_5_to_the_4():
    space = nasc.load("nasnet", C=4, N=1)  # labels are shared: the size does not depend on N
    assert cell_count(13, 5) == (720 * 13**5) ** 2
    assert space.count() == cell_count(13, 5) ** 2 == (720 * 13**5) ** 4


def test_nasnet_count_follows_the_formula_for_other_block_counts(nasnet_small):
    assert nasnet_small.count() == cell_count(13, 2) ** 2 == ((2 * 13) ** 2 * (3 * 13) ** 2) ** 2


def test_nasnet_blocks_pick_two_states_with_replacement_and_13_ops(nasnet_small):
    choices = nasnet_small.choices()
    assert len(choices) == 2 * 2 * 4
    for kind in ("normal", "reduce"):
        for b in range(2):
            for side in ("left", "right"):
                pick = choices[f"{kind}.b{b}.{side}"]
                assert pick.kind == "input" and pick.k == 1 and len(pick.options) == b + 2
                op = choices[f"{kind}.b{b}.{side}_op"]
                assert op.kind == "op" and op.options == NASNET_OPS
    # the same state twice is an architecture: both picks on h_{i-1}
    arch = {**nasnet_small.sample(0), "normal.b0.left": (0,), "normal.b0.right": (0,)}
    nasnet_small.resolve(arch)


def test_nasnet_reduction_cells_stride_only_the_ops_on_cell_inputs():
    space = nasc.load("nasnet", C=4, N=0, blocks=2)  # two reduction cells, nothing else
    arch = {**space.sample(1), "reduce.b0.left": (0,), "reduce.b0.right": (1,),
            "reduce.b1.left": (2,), "reduce.b1.right": (2,)}
    arch.update({f"reduce.b{b}.{s}_op": "conv_1x1" for b in (0, 1) for s in ("left", "right")})
    g = space.resolve(arch).graph
    strides = [dict(r.params)["stride"] for r in g if getattr(r, "op", None) == "relu_conv_bn"]
    # per cell: block 0's two convs read the cell inputs (stride 2), block 1's read block 0
    assert strides.count(2) == 4
    out = [r for r in g if getattr(r, "op", None) == "global_avg_pool"][0]
    assert str(out.type) == "vector[C=32]"  # 2 blocks x 4C channels, after two reductions
    cells = [r.type for r in g if getattr(r, "mode", None) == "concat"]
    assert [(t.channels, t.stride) for t in cells] == [(16, 2), (32, 4)]


@pytest.mark.parametrize("op, c_in, c_out, stride, k",
                         [("conv_1xk_kx1", 8, 8, 1, 3), ("conv_1xk_kx1", 6, 12, 2, 7),
                          ("dilated_conv", 8, 8, 1, 3), ("dilated_conv", 5, 10, 2, 3)])
@pytest.mark.parametrize("affine", [True, False])
def test_nasnet_op_cost_models_count_the_module_parameters(op, c_in, c_out, stride, k, affine):
    params = {"C": c_out, "stride": stride, "k": k}
    module = default_library().build(
        TorchCall(op=op, params=params, in_types=(TensorType.image(c_in),),
                  out_type=TensorType.image(c_out, stride), affine=affine))  # fmt: skip
    call = OpCall(op=op, params=tuple(params.items()), in_channels=(c_in,), in_hw=((16, 16),),
                  out_channels=c_out, out_hw=(16 // stride, 16 // stride), bn_affine=affine)
    assert DEFAULT[op].params(call) == sum(p.numel() for p in module.parameters())
    y = module(torch.randn(1, c_in, 16, 16))
    assert y.shape == (1, c_out, 16 // stride, 16 // stride)


def test_nasnet_compiles_runs_derives_and_instantiates_at_32x32(nasnet_small):
    # DARTS relaxation; edge_weights="inputs" gives each single-input pick its own weights
    # (its op choice is one label across the inputs, so op weights cannot rank them).
    net = nasc.compile(nasnet_small, method="darts", edge_weights="inputs", seed=0)
    x = torch.randn(2, 3, 32, 32)
    out = net(x)
    assert out.shape == (2, 10)
    out.mean().backward()
    assert all(a.grad is not None for a in net.arch_parameters())
    arch = nasnet_small.canonical(net.derive())
    model = nasc.instantiate(nasnet_small, arch)
    assert model(x).shape == (2, 10)
    resolved = nasnet_small.resolve(arch)
    assert cost(resolved, "params") == sum(p.numel() for p in model.parameters())


def test_nasnet_a_resolves_and_instantiates():
    """stdlib/architectures/nasnet_a.json: NASNet-A's cells as tensorflow/models
    research/slim/nets/nasnet/nasnet_utils.py (NasNetANormalCell, NasNetAReductionCell) lists
    them, with the slim state order [h_i, h_{i-1}] mapped to this space's [h_{i-1}, h_i]."""
    arch = nasc.Architecture.load("nasnet_a")
    assert arch["normal.b0.left_op"] == "sep_conv_5x5" and arch["normal.b0.left"] == (1,)
    assert arch["reduce.b3.left_op"] == "nasnet_identity" and arch["reduce.b3.left"] == (3,)
    space = nasc.load("nasnet", C=4, N=1)
    model = nasc.instantiate(space, arch)
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 10)
    assert cost(space.resolve(arch), "params") == sum(p.numel() for p in model.parameters())


# ---- ENAS -------------------------------------------------------------------------------------
def test_enas_count_is_720_times_5_to_the_5_to_the_4(enas_small):
    assert enas_small.count() == cell_count(5, 5) ** 2 == (720 * 5**5) ** 4
    assert enas_small.count() == 25_628_906_250_000_000_000_000_000
    # §2.3 states (5 x (B - 2)!)^4 = 1.3e11 networks for B = 7 (two inputs + 5 nodes); that
    # expression counts the 5 ops and the input patterns once per cell, not per node and input
    paper = (5 * math.factorial(7 - 2)) ** 4
    assert round(paper / 1e11, 1) == 1.3 and enas_small.count() != paper


def test_enas_nodes_pick_two_previous_nodes_and_5_ops(enas_small):
    choices = enas_small.choices()
    assert len(choices) == 2 * 5 * 4
    for kind in ("normal", "reduce"):
        for i in range(5):
            for side in ("x", "y"):
                assert len(choices[f"{kind}.n{i}.{side}"].options) == i + 2
                assert choices[f"{kind}.n{i}.{side}_op"].options == ENAS_OPS
    # layers=1: cells 0 and 1 are reduction cells (pool layers 0 and 1), cell 2 normal
    reduce = [r for r in enas_small.graph.nodes_of(InputChoice) if r.label == "reduce.n0.x"]
    assert len(reduce) == 2


def test_enas_reductions_follow_the_search_code():
    """Reductions at layers // 3 and 2 * (layers // 3) + 1 of layers + 2 cells (micro_child.py)."""
    space = nasc.load("enas", C=4, layers=6)
    g = space.resolve(space.sample(0)).graph
    # each cell concatenates its 5 nodes (5C) before the 1x1 conv back to C
    cells = [r.type for r in g if getattr(r, "mode", None) == "concat"]
    assert [t.stride for t in cells] == [1, 1, 2, 2, 2, 4, 4, 4]
    assert [t.channels for t in cells] == [20, 20, 40, 40, 40, 80, 80, 80]
    out = [r for r in g if getattr(r, "op", None) == "global_avg_pool"][0]
    assert str(out.type) == "vector[C=16]"


def test_enas_compiles_runs_derives_and_instantiates_at_32x32(enas_small):
    net = nasc.compile(enas_small, method="spos", seed=0)  # one sampled path, as ENAS trains
    net.sample(seed=0, step=0)
    x = torch.randn(2, 3, 32, 32)
    out = net(x)
    assert out.shape == (2, 10)
    out.mean().backward()
    arch = enas_small.canonical(net.derive())
    model = nasc.instantiate(enas_small, arch)
    assert model(x).shape == (2, 10)


def test_enas_micro_cell_resolves_and_instantiates(enas_small):
    """stdlib/architectures/enas_micro.json: the CIFAR-10 cells of melodyguan/enas
    scripts/cifar10_micro_final.sh (fixed_arc; per node x_id x_op y_id y_op, ops 0-4 = sep 3x3,
    sep 5x5, avg pool, max pool, identity as in micro_child.py)."""
    arch = nasc.Architecture.load("enas_micro")
    assert arch["normal.n0.x_op"] == "avg_pool_3x3" and arch["reduce.n2.y"] == (3,)
    model = nasc.instantiate(enas_small, arch)
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 10)
    assert cost(enas_small.resolve(arch), "params") == sum(p.numel() for p in model.parameters())


# ---- both ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, params", [("nasnet", {"C": 4, "N": 1, "blocks": 2}),
                                          ("enas", {"C": 4, "layers": 1, "nodes": 2}),
                                          ("auto_deeplab", {"L": 2, "F": 2, "blocks": 1,
                                                            "stem": 2})])
def test_cell_spaces_verify_and_round_trip_through_to_nas(name, params):
    space = nasc.load(name, **params)
    verify(space.graph)
    again = nasc.parse(space.to_nas(), file=f"{name}.nas")
    assert print_graph(again.graph, locations=False) == print_graph(space.graph, locations=False)
    resolved = space.resolve(space.sample(0))
    again = nasc.parse(resolved.to_nas(), file="resolved.nas")
    assert print_graph(again.graph, locations=False) == print_graph(resolved.graph, locations=False)


@pytest.mark.parametrize("name", ["nasnet", "enas"])
def test_show_prints_the_cell_labels(name, capsys):
    assert nasc.cli.main(["show", name, "-D", "C=4", "-D", "blocks=2" if name == "nasnet"
                          else "nodes=2"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert ("reduce.b1.right_op" if name == "nasnet" else "reduce.n1.y_op") in out


# ---- Auto-DeepLab -------------------------------------------------------------------------------
RATES = (4, 8, 16, 32)


def trellis(L: int) -> list[dict[int, list[int]]]:
    """Per layer 1..L, rate -> the rates of layer l - 1 it may read (§3.2: the stem is rate 4,
    a layer changes the rate by at most 2x, rates 4..32)."""
    layers, prev = [], [4]
    for _ in range(L):
        cur = {s: [p for p in prev if p in (s // 2, s, 2 * s)] for s in RATES}
        cur = {s: ps for s, ps in cur.items() if ps}
        layers.append(cur)
        prev = list(cur)
    return layers


def auto_deeplab_count(L: int, blocks: int) -> int:
    cell = math.prod(math.comb(i + 2, 2) for i in range(blocks)) * 7 ** (2 * blocks)
    network = math.prod(len(ps) for layer in trellis(L) for ps in layer.values())
    return cell * network * len(trellis(L)[-1])


def test_auto_deeplab_count_follows_the_trellis():
    assert auto_deeplab_count(12, 5) == 2700 * 7**10 * 4 * 12 * 36**9 * 4
    # the defaults take ~20 s to elaborate here, so check the two factors at small sizes: the
    # 12-layer trellis with a 1-block cell, and the 5-block cell with a 1-layer trellis
    assert nasc.load("auto_deeplab", F=1, blocks=1, stem=1).count() == auto_deeplab_count(12, 1)
    assert nasc.load("auto_deeplab", L=1, F=1, stem=1).count() == auto_deeplab_count(1, 5)
    assert auto_deeplab_count(1, 5) == 2700 * 7**10 * 2
    small = nasc.load("auto_deeplab", L=3, F=4, blocks=2)
    assert small.count() == auto_deeplab_count(3, 2) == 3 * 7**4 * 4 * 12 * 4


def _path_arch(space, rates):
    """An architecture whose path runs through ``rates`` (one per layer)."""
    arch = dict(space.sample(0))
    layers = trellis(len(rates))
    for layer, s in enumerate(rates, start=1):
        prev = 4 if layer == 1 else rates[layer - 2]
        arch[f"L{layer}.s{s}"] = (layers[layer - 1][s].index(prev),)
    arch["head"] = (list(layers[-1]).index(rates[-1]),)
    return arch


def test_auto_deeplab_architecture_is_one_path_of_cells():
    space = nasc.load("auto_deeplab", L=3, F=4, blocks=2, classes=3, stem=8)
    arch = _path_arch(space, [8, 16, 32])
    g = space.resolve(arch).graph
    cells = sorted((r.type.channels, r.type.stride) for r in g
                   if getattr(r, "mode", None) == "concat")
    assert cells == [(2 * 4 * s // 4, s) for s in (8, 16, 32)]  # B * F * s / 4 channels at s
    # decisions of cells off the path do not change the network
    off = {**arch, "L3.s4": (1 - arch["L3.s4"][0],), "L2.s4": (1 - arch["L2.s4"][0],)}
    assert print_graph(space.resolve(off).graph, locations=False) == print_graph(g, locations=False)
    # factorised reductions bring both inputs to the cell's rate: layer 1 reads the stem twice
    # (4 -> 8, 4 -> 8); layer 2 reads layer 1 (8 -> 16) and the stem (4 -> 8 -> 16); layer 3
    # reads layer 2 (16 -> 32) and, as H^{l-2}, the path's layer-1 cell (8 -> 16 -> 32)
    reductions = [r for r in g if getattr(r, "op", None) == "factorized_reduce"]
    assert sorted(r.type.stride for r in reductions) == [8, 8, 8, 16, 16, 16, 32, 32]


def test_auto_deeplab_compiles_runs_derives_and_instantiates_at_32x32():
    space = nasc.load("auto_deeplab", L=3, F=4, blocks=2, classes=3, stem=8)
    net = nasc.compile(space, method="darts", edge_weights="inputs", seed=0)  # beta per cell
    x = torch.randn(2, 3, 32, 32)
    out = net(x)
    assert out.shape == (2, 3, 32, 32)
    out.mean().backward()
    arch = space.canonical(net.derive())
    model = nasc.instantiate(space, arch)
    assert model(x).shape == (2, 3, 32, 32)
    assert cost(space.resolve(arch), "params") == sum(p.numel() for p in model.parameters())
