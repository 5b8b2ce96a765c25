"""stdlib/ofa_mbv3.nas against the authors' code (mit-han-lab/once-for-all, commit f03b267).

The expected figures come from running the reference: ``OFAMobileNetV3(n_classes=1000,
width_mult=W, ks_list=[3, 5, 7], expand_ratio_list=[3, 4, 6], depth_list=[2, 3, 4])``,
``set_active_subnet(ks, e, d)`` and ``get_active_subnet()``; parameters are the sub-network's
``numel`` sum, MACs at 1x3x224x224 are ``ofa.utils.flops_counter.profile``'s rule (every conv:
``C_in * output elements * k^2 / groups``, SE convs included; every linear ``in * out``)
summed in Python integers. (``profile`` itself sums in float32 and prints 566,170,688 for the
largest network: 566,170,656 is not representable in float32.)
"""

import pytest
import torch
from nasc.ir.cost import cost

import nasc

REFERENCE = {  # width: {(ks, e, d): (params, MACs at 224x224)}
    1.0: {(7, 6, 4): (7_664_760, 566_170_656), (3, 3, 2): (3_410_792, 121_278_672)},
    1.2: {(7, 6, 4): (10_701_632, 843_101_040), (3, 3, 2): (4_602_456, 193_078_200)},
}


def uniform(ks: int, e: int, d: int, **params) -> nasc.Architecture:
    """Every stage at depth d, every active block with kernel ks and expansion e."""
    arch = {}
    for i in range(5):
        arch[f"s{i}.depth"] = d
        for j in range(d):
            arch |= {f"s{i}.b{j}.k": ks, f"s{i}.b{j}.e": e}
    return nasc.Architecture(arch, space="ofa_mbv3", params=params)


def test_the_space_has_7371_settings_per_stage():
    space = nasc.load("ofa_mbv3")
    assert space.count() == 7371**5 == 21_758_655_492_572_485_851
    assert space.choices()["s0.depth"].options == (2, 3, 4)
    assert space.choices()["s4.b3.k"].options == (3, 5, 7)
    assert space.choices()["s4.b3.e"].options == (3, 4, 6)


@pytest.mark.parametrize("width", sorted(REFERENCE))
@pytest.mark.parametrize("setting", [(7, 6, 4), (3, 3, 2)], ids=["largest", "smallest"])
def test_sub_networks_match_the_reference(width, setting):
    params, macs = REFERENCE[width][setting]
    space = nasc.load("ofa_mbv3", width=width)
    graph = space.resolve(uniform(*setting, width=width)).graph
    assert cost(graph, "params", input_size=224) == params
    assert cost(graph, "macs", input_size=224) == macs


def test_the_largest_network_instantiates_with_the_reference_parameters():
    space = nasc.load("ofa_mbv3")
    net = nasc.instantiate(space, uniform(7, 6, 4)).eval()
    assert sum(p.numel() for p in net.parameters()) == REFERENCE[1.0][(7, 6, 4)][0]
    se = [m for m in net.modules() if type(m).__name__ == "SqueezeExcitation"]
    # SE in stages 1, 3 and 4 (widths 40, 112, 160), 4 blocks each, squeezing hidden / 4 rounded
    # to 8s: the reference's SEModule reduce widths, block by block
    assert [m.fc1.out_channels for m in se] == [40, 64, 64, 64, 120, 168, 168, 168, 168, 240,
                                                240, 240]
    with torch.no_grad():
        assert net(torch.randn(1, 3, 64, 64)).shape == (1, 1000)


def test_a_sampled_sub_network_runs_at_a_small_size():
    space = nasc.load("ofa_mbv3", classes=10, width=0.5)
    arch = space.sample(seed=3)
    net = nasc.instantiate(space, arch).eval()
    graph = space.resolve(arch).graph
    assert sum(p.numel() for p in net.parameters()) == cost(graph, "params", input_size=32)
    with torch.no_grad():
        assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)
