"""The PyTorch op library (nasc.backends.torch.ops): shapes, parameter counts and forward
semantics of every stdlib op against the reference implementations (quark0/darts
``operations.py``, AutoDL-Projects ``cell_operations.py``, torchvision MobileNetV2, PC-DARTS)."""

from __future__ import annotations

import functools
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from nasc.backends.torch.library import OpCall, default_library
from nasc.backends.torch.ops import BUILDERS, InvertedResidual, channel_shuffle
from nasc.ir import cost as ircost
from nasc.ir.nodes import Op
from nasc.ir.passes import cse, insert_alignment, partial_channels, relax
from nasc.ir.passes.batch import batch_kernels
from nasc.ir.sym import Sym
from nasc.ir.types import Layout, TensorType
from torch import nn

import nasc

torch.manual_seed(0)
STDLIB = Path(nasc.__file__).resolve().parent.parent / "stdlib"
INTERNAL_OPS = {"channel_slice", "partial_merge", "sep_conv_batch", "dil_conv_batch",
                "mbconv_batch"}


pytestmark = pytest.mark.usefixtures("one_thread_module")


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def bn_params(m: nn.Module) -> int:
    return sum(n_params(b) for b in m.modules() if isinstance(b, nn.BatchNorm2d))


def img(c: int, s: int = 1) -> TensorType:
    return TensorType.image(c, s)


def call(op, c_in, c_out, stride=1, *, affine=True, search=False, in_stride=1, **params):
    """An OpCall for an image -> image op with ``stride`` (and ``C=c_out`` when not given)."""
    params.setdefault("C", c_out)
    if "stride" not in params and stride != 1:
        params["stride"] = stride
    return OpCall(op=op, params=params, in_types=(img(c_in, in_stride),),
                  out_type=img(c_out, in_stride * stride), affine=affine, search=search)


def build(*args, **kwargs) -> nn.Module:
    return BUILDERS[args[0]](call(*args, **kwargs))


def hw(h: int, s: int) -> int:
    return -(-h // s)


# ---- coverage ------------------------------------------------------------------------------
def test_every_declared_op_has_a_builder():
    declared = set()
    for f in ("nn.nas", "darts_ops.nas", "nas_bench_201.nas", "mobile_ops.nas", "hrnas_ops.nas",
              "nasnet_ops.nas"):
        declared |= set(re.findall(r"^op\s+(\w+)\s*\(", (STDLIB / f).read_text(), re.M))
    assert len(declared) == 31
    assert set(BUILDERS) == declared | INTERNAL_OPS
    assert set(default_library().names()) == set(BUILDERS)


# ---- shapes: every op, odd and even sizes, H_out = ceil(H_in / stride) ---------------------
SHAPE_CASES = [
    # op, c_in, c_out, stride, params
    ("conv2d", 4, 6, 1, dict(k=3, dilation=1, padding=1, groups=1, bias=False)),
    ("conv2d", 4, 6, 2, dict(k=3, dilation=1, padding=1, groups=2, bias=True)),
    ("conv2d", 4, 8, 2, dict(k=3, dilation=2, padding=2, groups=4, bias=False)),
    ("conv2d", 4, 8, 2, dict(k=1, dilation=1, padding=0, groups=1, bias=False)),
    ("batch_norm", 4, 4, 1, dict(affine=True)),
    ("relu", 4, 4, 1, {}),
    ("relu6", 4, 4, 1, {}),
    ("hswish", 4, 4, 1, {}),
    ("sigmoid", 4, 4, 1, {}),
    ("dropout", 4, 4, 1, dict(p=0.5)),
    ("max_pool", 4, 4, 1, dict(k=3, padding=1)),
    ("max_pool", 4, 4, 2, dict(k=3, padding=1)),
    ("avg_pool", 4, 4, 2, dict(k=3, padding=1, count_include_pad=False)),
    ("avg_pool", 4, 4, 1, dict(k=5, padding=2, count_include_pad=True)),
    ("none", 4, 4, 1, {}),
    ("none", 4, 4, 2, {}),
    ("none", 4, 6, 2, {}),
    ("skip_connect", 4, 4, 1, {}),
    ("skip_connect", 4, 8, 2, {}),
    ("max_pool_3x3", 4, 4, 1, {}),
    ("max_pool_3x3", 4, 4, 2, {}),
    ("avg_pool_3x3", 4, 4, 1, {}),
    ("avg_pool_3x3", 4, 4, 2, {}),
    ("conv_7x1_1x7", 4, 4, 1, {}),
    ("conv_7x1_1x7", 4, 8, 2, {}),
    ("sep_conv", 4, 4, 1, dict(k=3)),
    ("sep_conv", 4, 8, 2, dict(k=5)),
    ("sep_conv", 4, 4, 2, dict(k=7)),
    ("dil_conv", 4, 4, 1, dict(k=3, dilation=2)),
    ("dil_conv", 4, 8, 2, dict(k=5, dilation=2)),
    ("relu_conv_bn", 4, 6, 1, dict(k=1, padding=0)),
    ("relu_conv_bn", 4, 6, 2, dict(k=3, padding=1)),
    ("factorized_reduce", 4, 8, 2, {}),
    ("conv_bn", 4, 6, 1, dict(k=1, padding=0)),
    ("conv_bn", 4, 6, 2, dict(k=3, padding=1)),
    ("mbconv", 4, 4, 1, dict(k=3, e=6, se=False, act="relu6")),
    ("mbconv", 4, 8, 2, dict(k=5, e=3, se=True, act="hswish")),
    ("mbconv", 4, 8, 1, dict(k=7, e=1, se=False, act="relu")),
    ("conv_bn_act", 3, 8, 2, dict(k=3, act="relu6")),
    ("conv_bn_act", 4, 8, 1, dict(k=1, act="hswish")),
]


@pytest.mark.parametrize("size", [(8, 12), (9, 7)])
@pytest.mark.parametrize("op,c_in,c_out,stride,params", SHAPE_CASES)
def test_image_op_output_shape(op, c_in, c_out, stride, params, size):
    params = {"C": c_out, "stride": stride, **params}  # builders ignore what they don't use
    c = OpCall(op=op, params=params, in_types=(img(c_in),), out_type=img(c_out, stride))
    for affine, search in ((True, False), (False, True)):
        m = BUILDERS[op](OpCall(op=c.op, params=c.params, in_types=c.in_types,
                                out_type=c.out_type, affine=affine, search=search))
        y = m(torch.randn(2, c_in, *size))
        assert y.shape == (2, c_out, hw(size[0], stride), hw(size[1], stride))


def test_vector_and_resolution_changing_ops():
    v = TensorType.vector
    gap = BUILDERS["global_avg_pool"](OpCall(op="global_avg_pool", params={},
                                             in_types=(img(6, 4),), out_type=v(6)))
    x = torch.randn(2, 6, 5, 7)
    assert torch.allclose(gap(x), x.mean((2, 3)))
    lin = BUILDERS["linear"](OpCall(op="linear", params=dict(out=10, bias=True),
                                    in_types=(v(6),), out_type=v(10)))
    assert lin(gap(x)).shape == (2, 10) and n_params(lin) == 6 * 10 + 10
    lin = BUILDERS["linear"](OpCall(op="linear", params=dict(out=10, bias=False),
                                    in_types=(v(6),), out_type=v(10)))
    assert n_params(lin) == 60 and lin.bias is None
    # upsample: bilinear, align_corners=False, to H * factor
    up = BUILDERS["upsample"](OpCall(op="upsample", params=dict(factor=2),
                                     in_types=(img(6, 4),), out_type=img(6, 2)))
    y = up(x)
    assert y.shape == (2, 6, 10, 14)
    ref = F.interpolate(x, size=(10, 14), mode="bilinear", align_corners=False)
    assert torch.allclose(y, ref, atol=1e-6)
    # the auxiliary head assumes an 8x8 input: 8x8 -> 2x2 (pool 5 stride 3) -> 1x1 (conv 2)
    aux = BUILDERS["auxiliary_head_cifar"](OpCall(op="auxiliary_head_cifar",
                                                  params=dict(classes=10),
                                                  in_types=(img(16, 4),), out_type=v(10)))
    x = torch.randn(2, 16, 8, 8)
    x0 = x.clone()
    assert aux(x).shape == (2, 10)
    assert torch.equal(x, x0), "the head must not modify its input (the cell output) in place"
    # channel_slice
    sl = BUILDERS["channel_slice"](OpCall(op="channel_slice", params=dict(start=0, stop=4),
                                          in_types=(img(16),), out_type=img(4)))
    assert torch.equal(sl(x), x[:, :4])


# ---- parameter counts against hand-written formulas ---------------------------------------
@pytest.mark.parametrize("affine", [True, False])
def test_darts_parameter_counts(affine):
    a = 1 if affine else 0
    ci, co = 8, 12
    for k in (3, 5, 7):
        # SepConv (w/o leading ReLU): dw k*k, 1x1 ci->ci, BN(ci), dw k*k, 1x1 ci->co, BN(co)
        expect = ci * k * k + ci * ci + a * 2 * ci + ci * k * k + ci * co + a * 2 * co
        assert n_params(build("sep_conv", ci, co, k=k, affine=affine)) == expect
        assert n_params(build("sep_conv", ci, co, 2, k=k, affine=affine)) == expect
    for k in (3, 5):
        # DilConv (w/o leading ReLU): dw k*k (dilation 2), 1x1 ci->co, BN(co)
        expect = ci * k * k + ci * co + a * 2 * co
        assert n_params(build("dil_conv", ci, co, k=k, dilation=2, affine=affine)) == expect
    # FactorizedReduce: 2 x (1x1 ci -> co/2), BN(co)
    expect = 2 * (ci * (co // 2)) + a * 2 * co
    assert n_params(build("factorized_reduce", ci, co, 2, affine=affine)) == expect
    assert n_params(build("skip_connect", ci, co, 2, affine=affine)) == expect
    assert n_params(build("skip_connect", ci, ci, 1, affine=affine)) == 0
    # ReLUConvBN k x k: conv ci*co*k*k (no bias), BN(co)
    for k, pad in ((1, 0), (3, 1)):
        expect = ci * co * k * k + a * 2 * co
        assert n_params(build("relu_conv_bn", ci, co, k=k, padding=pad, affine=affine)) == expect
        assert n_params(build("conv_bn", ci, co, k=k, padding=pad, affine=affine)) == expect
    # conv_7x1_1x7: (1,7) ci->ci, (7,1) ci->co, BN(co)
    expect = ci * ci * 7 + ci * co * 7 + a * 2 * co
    assert n_params(build("conv_7x1_1x7", ci, co, affine=affine)) == expect
    # AuxiliaryHeadCIFAR: 1x1 C->128, BN(128), 2x2 128->768, BN(768), Linear(768, classes)
    aux = BUILDERS["auxiliary_head_cifar"](OpCall(op="auxiliary_head_cifar",
                                                  params=dict(classes=10), affine=affine,
                                                  in_types=(img(ci, 4),),
                                                  out_type=TensorType.vector(10)))
    expect = ci * 128 + a * 2 * 128 + 128 * 768 * 4 + a * 2 * 768 + 768 * 10 + 10
    assert n_params(aux) == expect
    for op in ("none", "max_pool_3x3", "avg_pool_3x3"):
        assert n_params(build(op, ci, ci, 2, affine=affine)) == 0


@pytest.mark.parametrize("affine", [True, False])
def test_mbconv_parameter_counts(affine):
    a = 1 if affine else 0
    ci, co, k = 16, 24, 5
    h = 6 * ci  # hidden = round(ci * e)
    # 1x1 ci->h, BN(h), dw k*k on h, BN(h), 1x1 h->co, BN(co)
    expect = ci * h + a * 2 * h + h * k * k + a * 2 * h + h * co + a * 2 * co
    m = build("mbconv", ci, co, 2, k=k, e=6, se=False, act="relu6", affine=affine)
    assert n_params(m) == expect
    # SE on the hidden width: fc1 h->r (+bias), fc2 r->h (+bias), r = se_channels(h)
    r = ircost.se_channels(h)
    m = build("mbconv", ci, co, 2, k=k, e=6, se=True, act="relu6", affine=affine)
    assert n_params(m) == expect + (h * r + r) + (r * h + h)
    # e = 1: no expansion conv
    expect = ci * k * k + a * 2 * ci + ci * co + a * 2 * co
    assert n_params(build("mbconv", ci, co, k=k, e=1, affine=affine)) == expect
    # conv_bn_act: conv ci->co k*k no bias, BN(co)
    m = build("conv_bn_act", ci, co, k=3, act="hswish", affine=affine)
    assert n_params(m) == ci * co * 9 + a * 2 * co


# ---- the module agrees with the cost model, op for op, on real IR nodes -------------------
@functools.cache
def _ir_nodes() -> tuple[OpCall, ...]:
    """(OpCall, input shapes) for every distinct op node of some stdlib spaces, their search
    forms (relaxed, partial channels) and a space exercising the remaining stdlib ops."""
    extra = nasc.parse("""
import nn
import darts_ops
import nas_bench_201
import mobile_ops
import hrnas_ops
space everything(C: int = 8) {
    input x: image(3)
    let s = conv_bn_act(x, C, k=3, act="hswish")
    let a = drop_path(dropout(sigmoid(hswish(relu6(conv2d(s, 2 * C, k=3, groups=C,
                                                          stride=2)))), p=0.1), p=0.2)
    let b = max_pool(avg_pool(a, k=3), stride=2) + none(a, 2 * C, stride=2)
    let c = skip_connect(b, 4 * C, stride=2) + conv_7x1_1x7(b, 4 * C, stride=2)
    let d = dil_conv_5x5(c, 4 * C) + sep_conv_7x7(c, 4 * C) + max_pool_3x3(c, 4 * C)
    let e = mbconv(d, 4 * C, k=5, e=3, se=true, act="relu") + avg_pool_3x3(d, 4 * C)
    let f = upsample(mbconv(e, 6 * C, k=3, stride=2), factor=2)
    let g = upsample_nearest(mixconv(e, 6 * C, c3=4, c5=0, c7=8, stride=2)
                             + transformer(e, 6 * C, n=3, stride=2, s=2, d=4), factor=2)
    let aux = auxiliary_head_cifar(factorized_reduce(a, 4 * C), 10)
    output logits = linear(global_avg_pool(f + g), 10)
    output aux
}
""").graph
    graphs = [
        nasc.load("nas_bench_201", N=1).graph,
        nasc.load("darts", layers=5).graph,
        partial_channels(relax(nasc.load("darts", layers=5).graph), k=4),
        batch_kernels(cse(relax(nasc.load("darts", layers=2).graph))),  # kernel-size batches
        batch_kernels(relax(insert_alignment(nasc.load("dcnas", L=1, F=8).graph),
                            edge_weights="inputs")),
        nasc.load("mobilenet_chain").graph,
        extra,
        nasc.parse("""import nasnet_ops
space nasnet_extra() {
    input x: image(8)
    output conv_1xk_kx1(x, 8, k=3, stride=2) + dilated_conv(x, 8, stride=2)
    output o2 = conv_1xk_kx1(x, 12, k=7) + dilated_conv(x, 12)
}
""").graph,  # stdlib/nasnet_ops.nas
    ]
    seen = {}
    for g in graphs:
        for rec in g:
            if not isinstance(rec, Op):
                continue
            in_types = tuple(g[i].type for i in g.inputs(rec.id))
            if any(isinstance(v, Sym) for _, v in rec.params) or any(
                isinstance(t.channels, Sym) or isinstance(t.stride, Sym)
                for t in (*in_types, rec.type)
            ):
                continue
            key = (rec.op, rec.params, in_types, rec.type)
            seen.setdefault(key, OpCall(op=rec.op, params=dict(rec.params),
                                        in_types=in_types, out_type=rec.type))
    return tuple(seen.values())


def _shape(t: TensorType, size: int) -> tuple[int, ...]:
    if t.layout is Layout.VECTOR:
        return (2, t.channels)
    return (2, t.channels, hw(size, t.stride), hw(size, t.stride))


def test_ir_nodes_build_run_and_match_the_cost_model():
    calls = _ir_nodes()
    assert {c.op for c in calls} == set(BUILDERS)  # every op occurs in some graph
    size = 32  # the aux head's input is at stride 4: 8x8
    for c in calls:
        for affine in (True, False):
            c2 = OpCall(op=c.op, params=c.params, in_types=c.in_types, out_type=c.out_type,
                        affine=affine)
            m = BUILDERS[c.op](c2)
            if c.op in ircost.DEFAULT:
                cc = ircost.OpCall(
                    op=c.op, params=tuple(c.params.items()),
                    in_channels=tuple(t.channels for t in c.in_types),
                    in_hw=tuple(_shape(t, size)[2:] or (1, 1) for t in c.in_types),
                    out_channels=c.out_type.channels,
                    out_hw=_shape(c.out_type, size)[2:] or (1, 1), bn_affine=affine,
                )
                assert n_params(m) == ircost.DEFAULT[c.op].params(cc), (c.op, c.params, affine)
            else:
                assert n_params(m) == 0  # the IR-internal ops
            with torch.no_grad():  # every module built runs, with and without affine BN
                y = m(*(torch.randn(_shape(t, size)) for t in c.in_types))
            assert tuple(y.shape) == _shape(c.out_type, size), (c.op, c.params, affine)


class _Wrap1(nn.Module):  # torch.nn's own modules stay leaves, ours are traced through
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, x):
        return self.m(x)


class _Wrap2(_Wrap1):
    def forward(self, x, y):
        return self.m(x, y)


def test_modules_trace_with_fx():
    """No data-dependent Python control flow: fx can trace every module (the lowering calls
    them as leaves, but users may trace the network through them)."""
    for c in _ir_nodes():
        m = BUILDERS[c.op](c).eval()
        traced = torch.fx.symbolic_trace(_Wrap2(m) if len(c.in_types) == 2 else _Wrap1(m))
        xs = [torch.randn(_shape(t, 32)) for t in c.in_types]
        with torch.no_grad():
            assert torch.equal(traced(*xs), m(*xs)), c.op


# ---- forward semantics ---------------------------------------------------------------------
def _copy_state(dst: nn.Module, src: nn.Module) -> None:
    """Copy ``src``'s parameters and buffers into ``dst`` in order (same layers, maybe with
    other names), after randomising ``src``'s so that the BN affine terms matter."""
    with torch.no_grad():
        for p in src.parameters():
            p.uniform_(-1, 1)
    a, b = list(dst.state_dict().values()), list(src.state_dict().values())
    assert [t.shape for t in a] == [t.shape for t in b]
    dst.load_state_dict(dict(zip(dst.state_dict(), b)))


# quark0/darts cnn/operations.py, written out once in tests/backends/reference.py
from reference import DilConv as RefDilConv  # noqa: E402
from reference import FactorizedReduce as RefFactorizedReduce  # noqa: E402
from reference import SepConv as RefSepConv  # noqa: E402


@pytest.mark.parametrize("stride", [1, 2])
def test_darts_convs_equal_the_reference_after_their_relu_node(stride):
    x = torch.randn(2, 6, 10, 10)
    for k in (3, 5):
        mine, ref = build("sep_conv", 6, 8, stride, k=k), RefSepConv(6, 8, k, stride, k // 2)
        _copy_state(mine, ref)
        assert torch.allclose(mine(torch.relu(x)), ref(x), atol=1e-5)
        mine = build("dil_conv", 6, 8, stride, k=k, dilation=2)
        ref = RefDilConv(6, 8, k, stride, k - 1, 2)  # DARTS: padding 2 (3x3) and 4 (5x5)
        _copy_state(mine, ref)
        assert torch.allclose(mine(torch.relu(x)), ref(x), atol=1e-5)
    # relu_conv_bn / conv_bn: ReLU -> conv -> BN; conv_bn is that after its ReLU node
    ref = nn.Sequential(nn.ReLU(), nn.Conv2d(6, 8, 3, stride, 1, bias=False), nn.BatchNorm2d(8))
    for op, inp in (("relu_conv_bn", x), ("conv_bn", torch.relu(x))):
        mine = build(op, 6, 8, stride, k=3, padding=1)
        _copy_state(mine, ref)
        assert torch.allclose(mine(inp), ref(x), atol=1e-5)


def test_factorized_reduce_equals_the_reference_and_handles_odd_sizes():
    for op in ("factorized_reduce", "skip_connect"):
        mine, ref = build(op, 6, 8, 2), RefFactorizedReduce(6, 8)
        _copy_state(mine, ref)
        x = torch.randn(2, 6, 10, 12)
        assert torch.allclose(mine(x), ref(x), atol=1e-5)
        # odd sizes (the reference fails there): NAS-Bench-201's zero padding, ceil(H / 2)
        x = torch.randn(2, 6, 9, 7)
        pad = F.pad(torch.relu(x), (0, 1, 0, 1))[:, :, 1:, 1:]
        expect = ref.bn(torch.cat([ref.conv_1(torch.relu(x)), ref.conv_2(pad)], dim=1))
        assert torch.allclose(mine(x), expect, atol=1e-5)


def test_zero_and_identity():
    x = torch.randn(2, 4, 9, 8)
    assert torch.equal(build("none", 4, 4)(x), torch.zeros_like(x))
    y = build("none", 4, 4, 2)(x)
    assert y.shape == (2, 4, 5, 4) and not y.any()
    y = build("none", 4, 6, 2)(x)  # another channel count: zeros of the output's shape
    assert y.shape == (2, 6, 5, 4) and not y.any()
    assert build("skip_connect", 4, 4)(x) is x  # DARTS Identity


def test_avg_pools_do_not_count_padding():
    x = torch.full((1, 3, 7, 6), 2.5)
    for m in (build("avg_pool_3x3", 3, 3), build("avg_pool_3x3", 3, 3, 2),
              BUILDERS["avg_pool"](OpCall(op="avg_pool", in_types=(img(3),), out_type=img(3),
                                          params=dict(k=3, stride=1, padding=1,
                                                      count_include_pad=False)))):
        assert torch.allclose(m(x), torch.full_like(m(x), 2.5))  # borders included
    counted = BUILDERS["avg_pool"](OpCall(op="avg_pool", in_types=(img(3),), out_type=img(3),
                                          params=dict(k=3, stride=1, padding=1,
                                                      count_include_pad=True)))
    assert counted(x)[0, 0, 0, 0] == pytest.approx(2.5 * 4 / 9)


def test_pools_in_a_search_network_end_in_an_affine_free_bn():
    for op, pool in (("max_pool_3x3", nn.MaxPool2d), ("avg_pool_3x3", nn.AvgPool2d)):
        plain = build(op, 8, 8, 2)
        assert isinstance(plain, pool) and plain.stride == 2 and plain.padding == 1
        searched = build(op, 8, 8, 2, search=True)
        assert isinstance(searched[0], pool) and isinstance(searched[1], nn.BatchNorm2d)
        assert searched[1].num_features == 8 and not searched[1].affine
        assert n_params(searched) == 0
    assert build("avg_pool_3x3", 8, 8).count_include_pad is False


@pytest.mark.parametrize("op,params", [
    ("sep_conv", dict(k=3)), ("dil_conv", dict(k=3, dilation=2)), ("skip_connect", {}),
    ("factorized_reduce", {}), ("relu_conv_bn", dict(k=3, padding=1)),
    ("conv_bn", dict(k=1, padding=0)), ("conv_7x1_1x7", {}), ("mbconv", dict(se=True)),
    ("conv_bn_act", dict(k=3)),
])
def test_composites_without_affine_have_no_bn_parameters(op, params):
    m = build(op, 8, 8, 2, affine=False, **params)
    bns = [b for b in m.modules() if isinstance(b, nn.BatchNorm2d)]
    assert bns and all(not b.affine and b.weight is None for b in bns)
    assert bn_params(m) == 0
    assert bn_params(build(op, 8, 8, 2, affine=True, **params)) > 0


def test_batch_norm_follows_its_own_affine_parameter():
    for aff in (True, False):
        for composite_affine in (True, False):
            m = BUILDERS["batch_norm"](OpCall(op="batch_norm", params=dict(affine=aff),
                                              in_types=(img(5),), out_type=img(5),
                                              affine=composite_affine))
            assert m.affine is aff and m.num_features == 5


def test_conv2d_and_dropout_attributes():
    m = build("conv2d", 8, 16, 2, k=3, dilation=2, padding=2, groups=4, bias=True)
    assert (m.kernel_size, m.stride, m.dilation, m.padding, m.groups) == (
        (3, 3), (2, 2), (2, 2), (2, 2), 4)
    assert m.bias is not None and n_params(m) == 16 * (8 // 4) * 9 + 16
    d = BUILDERS["dropout"](OpCall(op="dropout", params=dict(p=0.3), in_types=(img(4),),
                                   out_type=img(4)))
    assert isinstance(d, nn.Dropout) and d.p == 0.3


# ---- MobileNetV2 (torchvision InvertedResidual) --------------------------------------------
def test_mbconv_expansion_and_hidden_width():
    m = build("mbconv", 16, 16, k=3, e=1)
    assert m.hidden_dim == 16
    first = m.conv[0][0]  # no expansion: the first conv is the depthwise one
    assert first.groups == 16 and first.kernel_size == (3, 3)
    assert sum(isinstance(c, nn.Conv2d) for c in m.modules()) == 2
    m = build("mbconv", 16, 24, 2, k=5, e=6)
    assert m.hidden_dim == 96 and m.conv[0][0].kernel_size == (1, 1)
    assert m.conv[1][0].groups == 96 and m.conv[1][0].stride == (2, 2)
    assert m.conv[1][0].padding == (2, 2)
    # torchvision's rounding: int(round(inp * expand_ratio)), Python's round
    for inp, e in ((5, 2.5), (7, 2.5), (24, 6), (3, 1.5)):
        assert InvertedResidual(inp, 8, 1, e).hidden_dim == int(round(inp * e))
    # torchvision's state-dict layout
    keys = {k for k in build("mbconv", 16, 24, 2, e=6).state_dict() if k.endswith("weight")}
    assert keys == {"conv.0.0.weight", "conv.0.1.weight", "conv.1.0.weight",
                    "conv.1.1.weight", "conv.2.weight", "conv.3.weight"}
    keys = {k for k in build("mbconv", 16, 16, e=1).state_dict() if k.endswith("weight")}
    assert keys == {"conv.0.0.weight", "conv.0.1.weight", "conv.1.weight", "conv.2.weight"}


@pytest.mark.parametrize("act,cls", [("relu6", nn.ReLU6), ("relu", nn.ReLU),
                                     ("hswish", nn.Hardswish)])
def test_mbconv_activation_and_se(act, cls):
    m = build("mbconv", 8, 8, k=3, e=4, se=True, act=act)
    acts = [a for a in m.modules() if isinstance(a, (nn.ReLU6, nn.ReLU, nn.Hardswish))]
    se = m.conv[2]
    assert [type(a) for a in acts] == [cls, cls, nn.ReLU]  # expansion, depthwise; SE's ReLU
    assert isinstance(se.scale_activation, nn.Hardsigmoid)
    assert se.fc1.out_channels == ircost.se_channels(32) and se.fc1.bias is not None
    x = torch.randn(2, 32, 5, 5)
    scale = F.hardsigmoid(se.fc2(F.relu(se.fc1(x.mean((2, 3), keepdim=True)))))
    assert torch.allclose(se(x), scale * x, atol=1e-6)
    assert isinstance(build("conv_bn_act", 3, 8, k=3, act=act)[2], cls)
    with pytest.raises(ValueError, match="activation"):
        build("mbconv", 8, 8, act="gelu")


def test_mbconv_residual_exactly_when_stride_1_and_channels_kept():
    x = torch.randn(2, 8, 6, 6)
    for c_out in (8, 16):
        for stride in (1, 2):
            for e in (1, 6):
                m = build("mbconv", 8, c_out, stride, k=3, e=e)
                residual = stride == 1 and c_out == 8
                assert m.use_res_connect is residual
                with torch.no_grad():  # the last BN outputs zeros: the output is the shortcut
                    m.conv[-1].weight.zero_()
                    m.conv[-1].bias.zero_()
                y = m(x)
                assert torch.equal(y, x) if residual else not y.any()


def test_torchvision_mobilenet_v2_parameter_count():
    """torchvision's mobilenet_v2() (3,504,872 parameters) assembled from the ops."""
    settings = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1],
                [6, 160, 3, 2], [6, 320, 1, 1]]
    layers, c = [build("conv_bn_act", 3, 32, 2, k=3, act="relu6")], 32
    for t, width, n, s in settings:
        for i in range(n):
            layers.append(build("mbconv", c, width, s if i == 0 else 1, k=3, e=t, se=False,
                                act="relu6"))
            c = width
    layers.append(build("conv_bn_act", c, 1280, k=1, act="relu6"))
    head = BUILDERS["linear"](OpCall(op="linear", params=dict(out=1000, bias=True),
                                     in_types=(TensorType.vector(1280),),
                                     out_type=TensorType.vector(1000)))
    assert sum(map(n_params, layers)) + n_params(head) == 3_504_872
    net = nn.Sequential(*layers).eval()
    with torch.no_grad():
        assert net(torch.randn(1, 3, 32, 32)).shape == (1, 1280, 1, 1)


# ---- PC-DARTS partial channels -------------------------------------------------------------
def _merge(c: int, k: int, stride: int, shuffle: bool = True, fixed: bool = False):
    return BUILDERS["partial_merge"](OpCall(
        op="partial_merge", params=dict(k=k, stride=stride, shuffle=shuffle, fixed=fixed),
        in_types=(img(c // k, stride), img(c)), out_type=img(c, stride)))


def test_channel_shuffle_is_pc_darts():
    x = torch.randn(2, 12, 3, 3)
    b, c, h, w = x.shape
    ref = x.view(b, 3, c // 3, h, w).transpose(1, 2).contiguous().view(b, -1, h, w)
    assert torch.equal(channel_shuffle(x, 3), ref)


@pytest.mark.parametrize("fixed", [False, True])
def test_partial_merge_channel_mapping(fixed):
    c, k = 16, 4
    x = torch.randn(2, c, 6, 6)
    slice_ = BUILDERS["channel_slice"](OpCall(op="channel_slice", params=dict(start=0,
                                              stop=c // k), in_types=(img(c),),
                                              out_type=img(c // k)))
    out = _merge(c, k, 1, fixed=fixed)(slice_(x), x)  # an identity "mixture"
    assert out.shape == x.shape
    for i in range(k):
        for j in range(c // k):
            assert torch.equal(out[:, j * k + i], x[:, i * (c // k) + j])
    assert torch.equal(out, channel_shuffle(x, k))
    assert torch.equal(_merge(c, k, 1, shuffle=False)(slice_(x), x), x)


def test_partial_merge_at_stride_2_max_pools_the_bypass():
    c, k = 16, 4
    for size in (8, 7):
        x = torch.randn(2, c, size, size)
        mix = torch.randn(2, c // k, hw(size, 2), hw(size, 2))
        out = _merge(c, k, 2, shuffle=False)(mix, x)
        assert out.shape == (2, c, hw(size, 2), hw(size, 2))
        assert torch.equal(out[:, : c // k], mix)
        expect = F.max_pool2d(x[:, c // k :], 2, 2, ceil_mode=True)
        assert torch.equal(out[:, c // k :], expect)
        if size % 2 == 0:  # PC-DARTS: nn.MaxPool2d(2, 2)
            assert torch.equal(out[:, c // k :], nn.MaxPool2d(2, 2)(x[:, c // k :]))
        shuffled = _merge(c, k, 2)(mix, x)
        assert torch.equal(shuffled, channel_shuffle(out, k))


def test_library_builds_with_a_clear_error_for_unknown_ops():
    with pytest.raises(KeyError, match="no PyTorch implementation"):
        default_library().build(OpCall(op="nope", params={}, in_types=(img(3),),
                                       out_type=img(3)))
