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


# ---- structural templates: each op signature is built once, then cloned ---------------------
def _direct_ops(g, lib):
    """The op modules built one by one on the CPU, in op order (no templates, no meta)."""
    from nasc.backends.torch.library import OpCall
    from nasc.ir.nodes import Op

    return nn.ModuleDict({
        str(r.id): lib.build(OpCall(op=r.op, params=dict(r.params),
                                    in_types=tuple(g[i].type for i in g.inputs(r.id)),
                                    out_type=r.type, affine=True, search=False))
        for r in g.nodes_of(Op)})


def test_templated_modules_equal_modules_built_one_by_one_for_a_seed():
    """Cloning keeps PyTorch's initialisation order: a seed gives the weights it always gave."""
    from nasc.backends.torch.construct import build_ops

    g = nasc.compile(nasc.load("dcnas", L=2, F=8, classes=3), method="dcnas",
                     device="meta").graph
    lib = default_library()
    torch.manual_seed(5)
    templated = build_ops(g, lib, affine=True, search=False, device="cpu", channels_last=False)
    torch.manual_seed(5)
    direct = _direct_ops(g, lib)
    a, b = templated.state_dict(), direct.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [type(m) for m in templated.modules()] == [type(m) for m in direct.modules()]


def test_templated_modules_share_no_state():
    from nasc.backends.torch.construct import build_ops

    g = nasc.compile(nasc.load("dcnas", L=2, F=8, classes=3), method="dcnas",
                     device="meta").graph
    for device in ("meta", "cpu"):
        ops = build_ops(g, default_library(), affine=True, search=False, device=device,
                        channels_last=True)
        params = list(ops.parameters())  # (deduplicated by identity)
        assert len(params) == len(list(ops.named_parameters(remove_duplicate=False)))
        if device == "cpu":
            assert len({p.data_ptr() for p in params}) == len(params)
    convs = [m for m in ops.modules() if type(m) is nn.Conv2d]
    by_shape: dict = {}
    for c in convs:
        by_shape.setdefault((c.weight.shape, c.stride, c.groups), []).append(c)
    twins = max(by_shape.values(), key=len)
    assert len(twins) > 1  # the same signature more than once: clones of one template
    twins[0].register_forward_hook(lambda *a: None)
    twins[0].stride = (9, 9)
    assert not twins[1]._forward_hooks and twins[1].stride != (9, 9)


def test_user_modules_are_not_templated():
    built = []

    def scaled(call):
        built.append(call)
        return Scaled(call.c_in)

    space = nasc.parse(
        """
        op scaled(x: image) -> image(x.channels, x.stride)
        space s() {
            input x: image(4)
            output scaled(scaled(x))
        }
        """
    )
    lib = default_library().extended({"scaled": scaled})
    net = nasc.compile(space, method="darts", library=lib)
    mods = [m for m in net.ops.values() if isinstance(m, Scaled)]
    assert len(mods) == 2 and mods[0].scale is not mods[1].scale
    assert all(torch.equal(m.conv.weight, torch.full_like(m.conv.weight, 0.25)) for m in mods)


class Tabled(nn.Module):
    """A user op keeping a tensor as a plain attribute (neither parameter nor buffer)."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.table = torch.arange(c, dtype=torch.float32)
        self.conv = nn.Conv2d(c, c, 1)

    def forward(self, x):
        return self.conv(x) + self.table[None, :, None, None]


def test_modules_with_plain_tensor_attributes_are_built_directly():
    from nasc.backends.torch.construct import resettable

    with torch.device("meta"):
        assert not resettable(Tabled(4))
        assert resettable(nn.Sequential(nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4), nn.ReLU()))
    space = nasc.parse(
        """
        op tabled(x: image) -> image(x.channels, x.stride)
        space s() {
            input x: image(4)
            output tabled(tabled(x))
        }
        """
    )
    lib = default_library().extended({"tabled": lambda call: Tabled(call.c_in)})
    net = nasc.compile(space, method="darts", library=lib)
    mods = [m for m in net.ops.values() if isinstance(m, Tabled)]
    assert len(mods) == 2 and mods[0].table is not mods[1].table
    assert not mods[0].table.is_meta and torch.equal(mods[0].table, torch.arange(4.0))
