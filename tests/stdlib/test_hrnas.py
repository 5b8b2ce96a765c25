"""HR-NAS (§3.1–3.3, §4.1): the searching-block ops against their cost models, the multi-branch
space's structure, and the space compiled with method="hrnas" at 64x64 for both heads."""

import math

import pytest
import torch
from nasc.backends.torch.hrnas_ops import LightweightTransformer, MixConv, positional_map
from nasc.backends.torch.library import OpCall as TorchCall
from nasc.backends.torch.library import default_library
from nasc.ir.cost import DEFAULT, cost
from nasc.ir.cost.table import OpCall
from nasc.ir.nodes import Merge, Op, ValueChoice
from nasc.ir.types import TensorType

import nasc
from nasc.search import hrnas

#: A 64x64 version of the space: the paper's five modules (1, 2, 3, 4, 4 branches), tiny widths.
TINY = dict(stem=[4, 4], widths=[[4], [4, 8], [4, 8, 8], [4, 8, 8, 8], [4, 8, 8, 8]],
            blocks=[[1], [1, 1], [1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 1]], head=[4, 8, 8, 8],
            last=16, r=1, tokens=3, s=2, d=4, classes=5)  # fmt: skip


pytestmark = pytest.mark.usefixtures("one_thread_module")


def _torch_params(op: str, c_in: int, c_out: int, stride: int, **params) -> int:
    call = TorchCall(op=op, params={"C": c_out, "stride": stride, **params},
                     in_types=(TensorType.image(c_in),),
                     out_type=TensorType.image(c_out, stride))  # fmt: skip
    return sum(p.numel() for p in default_library().build(call).parameters())


def _model_params(op: str, c_in: int, c_out: int, stride: int, **params) -> int:
    call = OpCall(op=op, params=tuple({"C": c_out, "stride": stride, **params}.items()),
                  in_channels=(c_in,), in_hw=((16, 16),), out_channels=c_out,
                  out_hw=(16 // stride, 16 // stride))  # fmt: skip
    return DEFAULT[op].params(call)


@pytest.mark.parametrize(
    "c_in, c_out, stride, hidden",
    [(24, 24, 1, (96, 96, 96)), (18, 36, 2, (72, 72, 72)), (270, 90, 1, (5, 0, 17)),
     (8, 8, 1, (0, 0, 0)), (36, 18, 1, (0, 3, 0))],
)  # fmt: skip
def test_mixconv_cost_model_counts_the_module_parameters(c_in, c_out, stride, hidden):
    ps = dict(zip(("c3", "c5", "c7"), hidden))
    assert _model_params("mixconv", c_in, c_out, stride, **ps) == _torch_params(
        "mixconv", c_in, c_out, stride, **ps
    )


def test_mixconv_matches_the_reference_block_layout():
    # InvertedResidualChannels(24 -> 24, expand 4, kernels 3/5/7): per branch 1x1 conv + BN,
    # depthwise conv + BN, 1x1 projection; one BN after the sum; identity residual
    m = MixConv(24, 24, (96, 96, 96))
    names = {n for n, _ in m.named_parameters()}
    assert {"ops.0.0.0.weight", "ops.0.1.1.weight", "ops.2.1.0.weight", "ops.1.2.weight",
            "pw_bn.weight"} <= names and m.residual is None  # fmt: skip
    expected = sum(24 * 96 + 2 * 96 + 96 * k * k + 2 * 96 + 96 * 24 for k in (3, 5, 7)) + 2 * 24
    assert sum(p.numel() for p in m.parameters()) == expected
    down = MixConv(18, 36, (72, 72, 72), stride=2)
    assert down.residual.groups == math.gcd(18, 36) and down.residual.stride == (2, 2)


@pytest.mark.parametrize(
    "c_in, c_out, stride, n, s, d, h, ffn",
    [(24, 24, 1, 64, 8, 64, 1, 4), (18, 36, 2, 64, 8, 64, 1, 4), (8, 8, 1, 3, 2, 4, 2, 1),
     (5, 7, 1, 0, 8, 64, 1, 4)],
)  # fmt: skip
def test_transformer_cost_model_counts_the_module_parameters(c_in, c_out, stride, n, s, d, h, ffn):
    ps = dict(n=n, s=s, d=d, h=h, ffn=ffn)
    assert _model_params("transformer", c_in, c_out, stride, **ps) == _torch_params(
        "transformer", c_in, c_out, stride, **ps
    )


def test_transformer_follows_section_3_1():
    t = LightweightTransformer(24, 24, n=64)  # s = 8, d = 64, h = 1
    # projector (c + 2 -> n, eq. 1) and BN; W^Q, W^K, W^V in R^{s^2 x d}, W^O in R^{hd x s^2}
    assert t.input_proj.weight.shape == (64, 26, 1, 1) and t.input_norm.num_features == 64
    assert t.encoder.attn.q.weight.shape == (64, 64) and t.encoder.attn.o.bias is None
    # eq. 4: W_1 in R^{s^2 x 4s^2} with biases; n learnt queries of s^2 dims
    assert t.encoder.ffn[0].weight.shape == (256, 64) and t.encoder.ffn[0].bias is not None
    assert t.query_embed.weight.shape == (64, 64) and not hasattr(t.decoder, "self_attn")
    assert t.reverse_proj.weight.shape == (24, 64, 1, 1)
    pos = positional_map(8)  # eq. 2: P[0, i, j] = i / h, P[1, i, j] = j / w
    assert pos[0, 0, 3, 5] == 3 / 8 and pos[0, 1, 3, 5] == 5 / 8
    assert t(torch.randn(2, 24, 13, 11)).shape == (2, 24, 13, 11)
    down = LightweightTransformer(18, 36, n=4, stride=2)  # a reduction block halves the size
    assert down(torch.randn(1, 18, 16, 16)).shape == (1, 36, 8, 8)


def test_transformer_macs_follow_the_time_complexity_of_section_3_1():
    n, s, d, c = 16, 8, 64, 10
    call = OpCall(
        op="transformer",
        params=(("C", c), ("n", n), ("s", s), ("d", d), ("h", 1), ("ffn", 4)),
        in_channels=(c,),
        in_hw=((32, 32),),
        out_channels=c,
        out_hw=(32, 32),
    )
    attention, ffn = 4 * n * d * s * s + 2 * n * n * d, 8 * n * s**4  # O(4nds^2+2n^2d), O(8ns^4)
    projections = (c + 2) * n * s * s + n * c * s * s
    assert DEFAULT["transformer"].macs(call) == 2 * (attention + ffn) + projections


def _space(**kw):
    return nasc.load("hrnas", **{**TINY, **kw})


def test_five_parallel_modules_with_1_2_3_4_4_branches():
    space = _space()
    g = space.graph
    labels = [r.label for r in g.nodes_of(ValueChoice)]
    branches = [len({lab.split(".")[1] for lab in labels if lab.startswith(f"par{m}.")})
                for m in range(5)]  # fmt: skip
    assert branches == [1, 2, 3, 4, 4]
    # the searching blocks on each branch run at 1/4, 1/8, 1/16, 1/32 of the input
    strides = {int(lab.split(".")[1]): r.type.stride for r in g.nodes_of(Op) if r.op == "mixconv"
               for lab in [dict(r.params)["c3"].args[0]] if lab.startswith("par")}  # fmt: skip
    assert strides == {0: 4, 1: 8, 2: 16, 3: 32}


def test_fusion_modules_fuse_neighbouring_branches_and_add_one_lower_branch():
    g = _space().graph
    fuse = {
        r.label.rsplit(".", 1)[0] for r in g.nodes_of(ValueChoice) if r.label.startswith("fuse")
    }
    # fusion 3 (3 -> 4 branches): output i reads inputs i-1, i, i+1; branch 3 is new from 2
    assert sorted(x for x in fuse if x.startswith("fuse3.")) == [
        "fuse3.0.0", "fuse3.0.1", "fuse3.1.0", "fuse3.1.1", "fuse3.1.2", "fuse3.2.1",
        "fuse3.2.2", "fuse3.new3"]  # fmt: skip
    assert len([x for x in fuse if x.startswith("fuse4.")]) == 10  # 4 -> 4: 2 + 3 + 3 + 2
    assert not any(x.startswith("fuse4.new") for x in fuse)


def test_each_searching_block_has_3rc_plus_n_search_units():
    r, tokens = 2, 5
    space = _space(r=r, tokens=tokens)
    g = space.graph
    top = {r_.label: max(r_.values) for r_ in g.nodes_of(ValueChoice)}
    mixconvs = [x for x in g.nodes_of(Op) if x.op == "mixconv"]
    transformers = {dict(x.params)["n"].args[0].rsplit(".", 1)[0]: x
                    for x in g.nodes_of(Op) if x.op == "transformer"}  # fmt: skip
    # fusion modules 1 + 2 + 5 + 8 + 10, parallel modules 1 + 2 + 3 + 4 + 4, head 4 + 3
    assert len(mixconvs) == len(transformers) == 47
    for m in mixconvs:
        p = dict(m.params)
        tag = p["c3"].args[0].rsplit(".", 1)[0]
        c = g[g.inputs(m.id)[0]].type.channels
        units = sum(top[p[k].args[0]] for k in ("c3", "c5", "c7"))
        units += top[dict(transformers[tag].params)["n"].args[0]]
        assert units == 3 * r * c + tokens
        assert isinstance(g[g.users(m.id)[0]], Merge)  # eq. 5: mixconv + transformer


def test_defaults_are_the_papers_settings():
    # r = 4 (expansion 3r = 12), s = 8, d = 64, h = 1 (§4.1); 64 tokens and the stem/branch
    # widths 24 / 18, 36, ... of the authors' configs
    space = nasc.load("hrnas", widths=[[24], [18, 36]], blocks=[[1], [2, 2]])
    g = space.graph
    top = {r.label: max(r.values) for r in g.nodes_of(ValueChoice)}
    assert top["fuse0.0.0.c3"] == top["fuse0.0.0.c7"] == 4 * 24 and top["fuse0.0.0.n"] == 64
    assert top["par1.1.1.c5"] == 4 * 36
    t = next(r for r in g.nodes_of(Op) if r.op == "transformer")
    assert {k: v for k, v in t.params if k in ("s", "d", "h", "ffn")} == dict(s=8, d=64, h=1, ffn=4)
    stem = [r for r in g.nodes_of(Op) if r.op == "conv_bn_act"][:2]
    assert [(r.type.channels, r.type.stride, dict(r.params)["k"]) for r in stem] == [
        (24, 2, 3),
        (24, 4, 3),
    ]


@pytest.mark.parametrize(
    "task, shape", [("classification", (2, 5)), ("segmentation", (2, 5, 16, 16))]
)
def test_hrnas_compiles_runs_and_trains_at_64x64(task, shape):
    space = _space(task=task)
    net = nasc.compile(space, method="hrnas", seed=0)
    assert not net.graph.nodes_of(ValueChoice)  # every unit relaxed with importance factors
    out = net(torch.randn(2, 3, 64, 64))
    assert out.shape == shape
    penalty = hrnas.resource_penalty(net, input_size=64)
    (out.mean() + 1e-3 * penalty).backward()
    factors = hrnas.importance_factors(net)
    assert all(f.grad is not None for f in factors.values())


def test_derived_architecture_instantiates_the_shrunk_network():
    space = _space(
        task="segmentation", widths=TINY["widths"][:3], blocks=TINY["blocks"][:3], head=[4, 8, 8]
    )
    net = nasc.compile(space, method="hrnas", seed=0)
    with torch.no_grad():
        for i, f in enumerate(hrnas.importance_factors(net).values()):
            f[: i % (f.numel() + 1)] = 0.0
    arch = space.canonical(hrnas.derive(net))
    model = nasc.instantiate(space, arch)
    shrunk = hrnas.instantiate(net)
    params = sum(p.numel() for p in model.parameters())
    assert params == sum(p.numel() for p in shrunk.parameters())
    assert params == cost(space.resolve(arch), "params") < cost(space.resolve(
        {lab: max(v) for lab, v in ((r.label, r.values) for r in space.graph.nodes_of(ValueChoice))}
    ), "params")  # fmt: skip
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 5, 16, 16)
    assert "nasc" not in shrunk.code


# ---- the supernet without transformers = the authors' HighResolutionNet, parameter for parameter
def _block(inp: int, oup: int, stride: int, expand: int = 4) -> int:
    """InvertedResidualChannels(inp, oup, stride, expand_ratio=4, kernel_sizes=[3, 5, 7])."""
    h = expand * inp
    branches = sum(inp * h + 2 * h + h * k * k + 2 * h + h * oup for k in (3, 5, 7))
    residual = 0 if stride == 1 and inp == oup else inp // math.gcd(inp, oup) * oup
    return branches + 2 * oup + residual


def _reference_params(cfg: dict, task: str, classes: int, last: int) -> int:
    """models/hrnet.py HighResolutionNet counted from its structure: the stem ConvBNReLUs; per
    stage a FuseModule (only_fuse_neighbor, directly_downsample) and a ParallelModule; the
    HeadModule + Linear (classification) or transform block + 1x1 conv (segmentation)."""
    total = 3 * 24 * 9 + 48 + 24 * 24 * 9 + 48
    chans = [24]
    for widths, blocks in zip(cfg["widths"], cfg["blocks"]):
        n_in, n_out = len(chans), len(widths)
        for i in range(n_in if n_out > n_in else n_out):
            for j in range(max(0, i - 1), min(n_in, i + 2)):
                total += _block(chans[j], widths[i], 1 if j >= i else 2)
        for b in range(n_in, n_out):
            total += _block(widths[b - 1], widths[b], 2)
        total += sum(n * _block(c, c, 1) for c, n in zip(widths, blocks))
        chans = widths
    if task == "classification":
        head = cfg["head"]
        total += sum(_block(c, h, 1) for c, h in zip(chans, head))
        total += sum(_block(head[i], head[i + 1], 2) for i in range(len(head) - 1))
        return total + head[-1] * last + 2 * last + last * classes + classes
    return total + _block(sum(chans), last, 1) + last * classes + classes


@pytest.mark.parametrize("task, last", [("classification", 1600), ("segmentation", 90)])
def test_supernet_without_tokens_is_the_authors_high_resolution_net(task, last):
    cfg = dict(
        widths=[[24], [18, 36], [18, 36, 72]], blocks=[[1], [2, 2], [2, 2, 3]], head=[36, 72, 144]
    )  # the configs' first three stages (all five: slow to load)
    space = nasc.load("hrnas", task=task, classes=19, **cfg)
    arch = {r.label: (0 if r.label.endswith(".n") else max(r.values))
            for r in space.graph.nodes_of(ValueChoice)}  # fmt: skip
    assert cost(space.resolve(arch), "params") == _reference_params(cfg, task, 19, last)
