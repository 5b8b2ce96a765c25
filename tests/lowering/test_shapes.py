"""The IR's type inference agrees with the shapes PyTorch computes (torch.fx ShapeProp)."""

import math

import pytest
import torch
from nasc.ir.passes import insert_alignment
from nasc.lowering.fx import lower
from torch.fx.passes.shape_prop import ShapeProp

import nasc


@pytest.mark.parametrize(
    "name,params,size",
    [
        ("darts", {"C": 8, "layers": 5}, 32),
        ("nas_bench_201", {"C": 8, "N": 2}, 32),
        ("mobilenet_chain", {"stages": [[16, 2, 2], [24, 2, 2]]}, 64),
        ("mobilenet_v2", {}, 64),
    ],
)
@pytest.mark.parametrize("seed", range(2))
def test_ir_types_match_shape_propagation(name, params, size, seed):
    space = nasc.load(name, **params)
    resolved = space.resolve(space.sample(seed)) if space.specs else space
    g = insert_alignment(resolved.graph)
    names: dict[int, str] = {}
    net = lower(g, module_names=names).eval()
    ShapeProp(net).propagate(torch.randn(2, 3, size, size))
    shapes = {
        n.target: n.meta["tensor_meta"].shape for n in net.graph.nodes if n.op == "call_module"
    }
    for nid, mname in names.items():
        ty = g[nid].type
        shape = shapes[mname]
        assert shape[1] == ty.channels, (mname, shape, ty)
        if len(shape) == 4:
            assert shape[2] == math.ceil(size / ty.stride), (mname, shape, ty)
