"""How a supernet's modules are built: on the meta device first, then initialised once where
the weights live, by PyTorch's own ``reset_parameters``; user modules with hand-set state are
built directly."""

import math

import pytest
import torch
from nasc.backends.torch.library import default_library
from torch import nn

import nasc


def test_weights_follow_pytorchs_default_initialisation():
    net = nasc.compile(nasc.load("nas_bench_201", N=1, C=8), method="darts", seed=0)
    convs = [m for m in net.ops.modules() if type(m) is nn.Conv2d]
    assert convs
    for conv in convs:
        bound = 1 / math.sqrt(conv.weight[0].numel())  # kaiming_uniform_(a=sqrt(5))
        assert conv.weight.abs().max() <= bound
        assert conv.weight.std() > 0.3 * bound  # initialised, not left empty or zero
    bns = [m for m in net.ops.modules() if isinstance(m, nn.BatchNorm2d)]
    for bn in bns:
        assert torch.equal(bn.running_mean, torch.zeros_like(bn.running_mean))
        assert torch.equal(bn.running_var, torch.ones_like(bn.running_var))
        assert int(bn.num_batches_tracked) == 0


def test_the_same_seed_gives_the_same_supernet():
    space = nasc.load("nas_bench_201", N=1, C=8)
    a = nasc.compile(space, method="darts", seed=3).state_dict()
    b = nasc.compile(space, method="darts", seed=3).state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_channels_last_weights_without_a_copy():
    net = nasc.compile(nasc.load("nas_bench_201", N=1, C=8), method="darts")
    for m in net.ops.modules():
        if type(m) is nn.Conv2d:
            assert m.weight.is_contiguous(memory_format=torch.channels_last)


def test_a_meta_supernet_has_the_structure_and_no_storage():
    space = nasc.load("nas_bench_201", N=1, C=8)
    meta = nasc.compile(space, method="darts", device="meta")
    real = nasc.compile(space, method="darts")
    assert all(p.is_meta for p in meta.parameters())
    assert sum(p.numel() for p in meta.parameters()) == sum(p.numel() for p in real.parameters())


class Scaled(nn.Module):
    """A user op whose state ``reset_parameters`` knows nothing about."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.register_buffer("scale", torch.full((c,), 7.0))
        self.conv = nn.Conv2d(c, c, 1)
        with torch.no_grad():
            self.conv.weight.fill_(0.25)

    def forward(self, x):
        return self.conv(x) * self.scale[None, :, None, None]


def test_user_modules_with_their_own_initialisation_keep_it():
    space = nasc.parse(
        """
        op scaled(x: image) -> image(x.channels, x.stride)
        space s() {
            input x: image(4)
            output scaled(x)
        }
        """
    )
    lib = default_library().extended({"scaled": lambda call: Scaled(call.c_in)})
    net = nasc.compile(space, method="darts", library=lib)
    (mod,) = [m for m in net.ops.values() if isinstance(m, Scaled)]
    assert torch.equal(mod.scale, torch.full((4,), 7.0))
    assert torch.equal(mod.conv.weight, torch.full_like(mod.conv.weight, 0.25))


@pytest.mark.parametrize("L", [1, 2])
def test_dcnas_alignment_follows_hrnet_fuse_layers(L):
    """Down by 2^m: m strided 3x3 convs, the input width until the last (HRNet); same shape:
    nothing; up: bilinear upsampling then a 1x1 conv."""
    from nasc.ir.nodes import Op
    from nasc.ir.passes.align import POLICIES
    from nasc.ir.types import TensorType

    steps = POLICIES["dcnas"](TensorType.image(16, 4), TensorType.image(128, 32))
    assert [(op, dict(p)["C"], t.stride) for op, p, t in steps] == [
        ("conv_bn_act", 16, 8), ("conv_bn_act", 16, 16), ("conv_bn_act", 128, 32)]
    assert POLICIES["dcnas"](TensorType.image(16, 4), TensorType.image(16, 4)) == []
    up = POLICIES["dcnas"](TensorType.image(64, 16), TensorType.image(16, 4))
    assert [op for op, _, _ in up] == ["upsample", "conv_bn_act"]
    g = nasc.compile(nasc.load("dcnas", L=L, F=8, classes=3), method="dcnas",
                     device="meta").graph
    same = [r for r in g.nodes_of(Op) if r.op == "conv_bn_act" and r.param("k") == 1
            and g[g.inputs(r.id)[0]].type == r.type]
    assert same == []  # an aligned tensor goes through as it is
