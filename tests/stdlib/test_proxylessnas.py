"""ProxylessNAS (Cai et al., ICLR 2019): the MobileNetV2-based chain space and the published
ProxylessNAS-GPU network, parameter for parameter against the reference code."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

import nasc

# ---- the reference network, written out from mit-han-lab/proxylessnas -----------------------
# proxyless_nas/layers.py (ConvLayer, LinearLayer, MBInvertedConvLayer, ZeroLayer, IdentityLayer)
# and proxyless_nas/nas_modules.py (MobileInvertedResidualBlock, ProxylessNASNets), reduced to
# what the ImageNet nets use: ops_order 'weight_bn_act', no shuffle, no dilation.


class ConvLayer(nn.Module):
    """``ConvLayer``: BasicLayer registers its BN (and activation) before the conv."""

    def __init__(self, cin: int, cout: int, kernel_size: int = 3, stride: int = 1,
                 act_func: str = "relu6") -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(cout)
        self.activation = nn.ReLU6(inplace=True) if act_func == "relu6" else None
        self.conv = nn.Conv2d(cin, cout, kernel_size, stride, kernel_size // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        return self.activation(x) if self.activation is not None else x


class LinearLayer(nn.Module):
    """``LinearLayer`` with ``dropout_rate``: dropout, then the linear map."""

    def __init__(self, cin: int, cout: int, dropout_rate: float = 0.0) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout_rate) if dropout_rate > 0 else None
        self.linear = nn.Linear(cin, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.dropout(x) if self.dropout is not None else x)


class MBInvertedConvLayer(nn.Module):
    """``MBInvertedConvLayer``: [1x1 conv, BN, ReLU6] when expand_ratio > 1 (``feature_dim =
    round(in * expand_ratio)``), depthwise k x k conv (stride), BN, ReLU6, 1x1 conv, BN."""

    def __init__(self, cin: int, cout: int, kernel_size: int, stride: int,
                 expand_ratio: int) -> None:
        super().__init__()
        if expand_ratio > 1:
            dim = round(cin * expand_ratio)
            self.inverted_bottleneck = nn.Sequential(
                nn.Conv2d(cin, dim, 1, 1, 0, bias=False), nn.BatchNorm2d(dim),
                nn.ReLU6(inplace=True))
        else:
            dim = cin
            self.inverted_bottleneck = None
        self.depth_conv = nn.Sequential(
            nn.Conv2d(dim, dim, kernel_size, stride, kernel_size // 2, groups=dim, bias=False),
            nn.BatchNorm2d(dim), nn.ReLU6(inplace=True))
        self.point_linear = nn.Sequential(nn.Conv2d(dim, cout, 1, 1, 0, bias=False),
                                          nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.inverted_bottleneck is not None:
            x = self.inverted_bottleneck(x)
        return self.point_linear(self.depth_conv(x))

    @staticmethod
    def is_zero_layer() -> bool:
        return False


class ZeroLayer(nn.Module):
    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        return x.new_zeros(n, c, h // self.stride, w // self.stride)

    @staticmethod
    def is_zero_layer() -> bool:
        return True


class IdentityLayer(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    @staticmethod
    def is_zero_layer() -> bool:
        return False


class MobileInvertedResidualBlock(nn.Module):
    def __init__(self, mobile_inverted_conv: nn.Module, shortcut: nn.Module | None) -> None:
        super().__init__()
        self.mobile_inverted_conv = mobile_inverted_conv
        self.shortcut = shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mobile_inverted_conv.is_zero_layer():
            return x
        if self.shortcut is None or self.shortcut.is_zero_layer():
            return self.mobile_inverted_conv(x)
        return self.shortcut(x) + self.mobile_inverted_conv(x)


class ProxylessNASNets(nn.Module):
    def __init__(self, first_conv, blocks, feature_mix_layer, classifier) -> None:
        super().__init__()
        self.first_conv = first_conv
        self.blocks = nn.ModuleList(blocks)
        self.feature_mix_layer = feature_mix_layer
        self.global_avg_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.first_conv(x)
        for block in self.blocks:
            x = block(x)
        x = self.feature_mix_layer(x)
        x = self.global_avg_pooling(x).view(x.size(0), -1)
        return self.classifier(x)

    @staticmethod
    def build_from_config(config: dict) -> ProxylessNASNets:
        fc = config["first_conv"]
        first_conv = ConvLayer(fc["in_channels"], fc["out_channels"], fc["kernel_size"],
                               fc["stride"], fc["act_func"])
        blocks = []
        for b in config["blocks"]:
            conv = b["mobile_inverted_conv"]
            if conv["name"] == "ZeroLayer":
                layer = ZeroLayer(conv["stride"])
            else:
                layer = MBInvertedConvLayer(conv["in_channels"], conv["out_channels"],
                                            conv["kernel_size"], conv["stride"],
                                            conv["expand_ratio"])
            shortcut = IdentityLayer() if b["shortcut"] is not None else None
            blocks.append(MobileInvertedResidualBlock(layer, shortcut))
        fm = config["feature_mix_layer"]
        mix = ConvLayer(fm["in_channels"], fm["out_channels"], fm["kernel_size"], 1,
                        fm["act_func"])
        cl = config["classifier"]
        classifier = LinearLayer(cl["in_features"], cl["out_features"], cl["dropout_rate"])
        return ProxylessNASNets(first_conv, blocks, mix, classifier)


# The published ProxylessNAS-GPU net (proxyless_gpu.config of han-cai/files, loaded by
# proxyless_nas/model_zoo.py proxyless_gpu; as transcribed in osmr/pytorchcv proxylessnas.py
# version "gpu", whose own test asserts 7,119,848 parameters): per block (out, kernel, expand,
# stride), None for a Zero layer.
GPU_STEM, GPU_LAST = 40, 1728
GPU_BLOCKS = [
    (24, 3, 1, 1),
    (32, 5, 3, 2), None, None, None,
    (56, 7, 3, 2), None, None, (56, 3, 3, 1),
    (112, 7, 6, 2), None, None, (112, 5, 3, 1),
    (128, 5, 6, 1), None, (128, 3, 3, 1), (128, 5, 3, 1),
    (256, 7, 6, 2), (256, 7, 6, 1), (256, 7, 6, 1), (256, 5, 6, 1),
    (432, 7, 6, 1),
]


def gpu_config(classes: int = 1000) -> dict:
    """The GPU net in the reference's config format (``ProxylessNASNets.config``)."""
    blocks, cin = [], GPU_STEM
    for i, b in enumerate(GPU_BLOCKS):
        if b is None:
            conv = {"name": "ZeroLayer", "stride": 1}
            shortcut = {"name": "IdentityLayer"}
        else:
            cout, k, e, s = b
            conv = {"name": "MBInvertedConvLayer", "in_channels": cin, "out_channels": cout,
                    "kernel_size": k, "stride": s, "expand_ratio": e}
            # super_proxyless.py: an identity shortcut where stride 1 and the width is kept
            # (never on the first block)
            keeps = i > 0 and s == 1 and cin == cout
            shortcut = {"name": "IdentityLayer"} if keeps else None
            cin = cout
        blocks.append({"mobile_inverted_conv": conv, "shortcut": shortcut})
    return {
        "name": "ProxylessNASNets",
        "first_conv": {"in_channels": 3, "out_channels": GPU_STEM, "kernel_size": 3,
                       "stride": 2, "act_func": "relu6"},
        "blocks": blocks,
        "feature_mix_layer": {"in_channels": cin, "out_channels": GPU_LAST, "kernel_size": 1,
                              "act_func": "relu6"},
        "classifier": {"in_features": GPU_LAST, "out_features": classes, "dropout_rate": 0.0},
    }


def n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def _layers(net: nn.Module, kind: type) -> list[nn.Module]:
    return [m for m in net.modules() if type(m) is kind]


def _copy_weights(src: nn.Module, dst: nn.Module) -> None:
    """Copy every conv, BN and linear of ``src`` into ``dst`` in forward order (both nets
    create their layers of each kind in the order they run)."""
    for kind in (nn.Conv2d, nn.BatchNorm2d, nn.Linear):
        a, b = _layers(src, kind), _layers(dst, kind)
        assert len(a) == len(b)
        for m, n in zip(a, b):
            n.load_state_dict(m.state_dict())


# ---- the published network -----------------------------------------------------------------
@pytest.fixture(scope="module")
def gpu_net():
    arch = nasc.Architecture.load("proxylessnas_gpu")
    assert arch.space == "proxylessnas"
    space = nasc.load(arch.space, **arch.params)
    return nasc.instantiate(space, arch)


def test_proxylessnas_gpu_has_the_reference_parameter_count(gpu_net):
    ref = ProxylessNASNets.build_from_config(gpu_config())
    assert n_params(gpu_net) == n_params(ref)
    assert n_params(ref) == 7_119_848  # pytorchcv's count of the same net; "7.1M" in the paper
    assert round(n_params(gpu_net) / 1e6, 1) == 7.1


def test_proxylessnas_gpu_computes_what_the_reference_computes(gpu_net):
    ref = ProxylessNASNets.build_from_config(gpu_config())
    torch.manual_seed(0)
    for m in ref.modules():  # non-trivial BN statistics, so that the BNs are compared too
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.1, 0.1)
    _copy_weights(ref, gpu_net)
    ref.eval()
    gpu_net.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(gpu_net(x), ref(x), rtol=1e-4, atol=1e-5)


def test_residual_adds_sit_where_the_reference_has_shortcuts(gpu_net):
    """One add per non-zero block with an identity shortcut, and the skipped layers are gone."""
    adds = [n for n in gpu_net.graph.nodes
            if n.op == "call_function" and "add" in getattr(n.target, "__name__", "")]
    convs = [m for m in gpu_net.modules() if type(m).__name__ == "InvertedResidual"]
    ref_blocks = [b for b in gpu_config()["blocks"]
                  if b["mobile_inverted_conv"]["name"] != "ZeroLayer"]
    assert len(convs) == len(ref_blocks) == 22 - 8
    assert [m.use_res_connect for m in convs] == [b["shortcut"] is not None for b in ref_blocks]
    assert not adds  # the adds live inside the InvertedResidual modules


# ---- the space -----------------------------------------------------------------------------
def _count(stages, first: int) -> int:
    """6 MBConvs per layer, plus zero on every layer that keeps width and stride."""
    total, cin = 1, first
    for c, n, s in stages:
        for j in range(n):
            stride = s if j == 0 else 1
            total *= 7 if (stride == 1 and cin == c) else 6
            cin = c
    return total


def test_count_is_6_to_the_6_times_7_to_the_15():
    space = nasc.load("proxylessnas")
    assert space.count() == 6**6 * 7**15 == _count(space.params["stages"], 16)
    assert space.count() == 221_502_229_807_900_608


def test_count_with_the_gpu_widths_is_the_same():
    arch = nasc.Architecture.load("proxylessnas_gpu")
    space = nasc.load(arch.space, **arch.params)
    assert space.count() == 6**6 * 7**15


def test_candidates_and_where_zero_is_allowed():
    space = nasc.load("proxylessnas")
    choices = space.choices()
    assert len(choices) == 21
    mb = tuple(f"mbconv[k={k}, e={e}]" for k in (3, 5, 7) for e in (3, 6))
    for label, c in choices.items():
        first_of_stage = label.endswith(".b0")
        assert c.kind == "op"
        assert c.options == (mb if first_of_stage else (*mb, "zero")), label


@pytest.mark.parametrize("stages", [[[8, 2, 2]], [[8, 2, 1], [8, 2, 1]], [[8, 3, 2], [16, 1, 1]]])
def test_count_matches_brute_force(stages):
    space = nasc.load("proxylessnas", stem=8, first=8, stages=stages, last=16, classes=3)
    specs = space.specs
    labels = sorted(specs)
    seen = {space.canonical(dict(zip(labels, v))).to_json()
            for v in itertools.product(*(specs[lab].options for lab in labels))}
    assert len(seen) == space.count() == _count(stages, 8)


def test_zero_is_allowed_on_a_first_layer_that_keeps_the_width():
    # stage 2 starts with stride 1 and the same width: that layer may be skipped too, as in the
    # reference (Zero wherever stride == 1 and input_channel == width)
    space = nasc.load("proxylessnas", stem=8, first=8, stages=[[8, 2, 1], [8, 1, 1]], last=16)
    assert all("zero" in c.options for c in space.choices().values())


SMALL = dict(stem=8, first=8, stages=[[8, 2, 2], [16, 2, 2], [16, 1, 1]], last=32, classes=5)


def test_compiles_with_proxyless_runs_derives_and_instantiates():
    space = nasc.load("proxylessnas", **SMALL)
    net = nasc.compile(space, method="proxyless", seed=0)
    assert len(list(net.arch_parameters())) > 0
    net.sample(seed=0, step=0)
    out = net(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 5)
    out.logsumexp(1).mean().backward()
    assert any(p.grad is not None for p in net.weight_parameters())
    net.relax()
    out = net(torch.randn(2, 3, 32, 32))
    out.mean().backward()
    assert all(p.grad is not None for p in net.arch_parameters())
    arch = space.canonical(net.derive())
    assert set(arch) == set(space.choices())
    model = nasc.instantiate(space, arch)
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 5)


def test_instantiated_network_inherits_the_supernets_weights():
    space = nasc.load("proxylessnas", **SMALL)
    net = nasc.compile(space, method="proxyless", seed=0)
    arch = dict(space.sample(3))
    arch["s0.b1"] = "zero"
    arch = space.canonical(arch)
    model = nasc.instantiate(space, arch, weights=net)
    net.fix(arch)
    net.eval()
    model.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(x), net(x), rtol=0, atol=1e-5)
    skipped = nasc.instantiate(space, arch)
    assert n_params(skipped) == n_params(model)


def test_space_and_the_gpu_net_round_trip_through_to_nas():
    from nasc.ir.printer import print_graph
    from nasc.ir.verify import verify

    space = nasc.load("proxylessnas")
    verify(space.graph)
    again = nasc.parse(space.to_nas(), file="proxylessnas.nas")
    assert print_graph(again.graph, locations=False) == print_graph(space.graph, locations=False)
    arch = nasc.Architecture.load("proxylessnas_gpu")
    resolved = nasc.load(arch.space, **arch.params).resolve(arch)
    net = nasc.instantiate(nasc.parse(resolved.to_nas(), file="gpu.nas"))
    assert n_params(net) == 7_119_848
