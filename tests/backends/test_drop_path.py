"""DARTS drop path in the evaluation network: a space parameter, off by default, applied to
every op of a cell but the identities (quark0/darts cnn/model.py), scheduled by the trainer."""

import pytest
import torch
from nasc.backends.torch.ops import DropPath, set_drop_path

import nasc


def non_identity_ops(arch, layers):
    reductions = {layers // 3, 2 * layers // 3}
    count = 0
    for i in range(layers):
        kind = "reduce" if i in reductions else "normal"
        for n in range(4):
            for src in arch[f"{kind}.n{n}.in"]:
                op = arch[f"{kind}.n{n}.op{src}"]
                strided = kind == "reduce" and src < 2
                count += not (op == "skip_connect" and not strided)
    return count


@pytest.mark.parametrize("name", ["darts_v1", "darts_v2", "pc_darts"])
def test_every_op_but_the_identities_drops_its_path(name):
    arch = nasc.Architecture.load(name)
    space = nasc.load("darts", C=8, layers=5, drop_path=0.2)
    net = nasc.instantiate(space, arch)
    drops = [m for m in net.modules() if isinstance(m, DropPath)]
    assert len(drops) == non_identity_ops(arch, 5)
    assert all(m.drop_prob == 0.2 for m in drops)


def test_drop_path_changes_no_parameter_and_nothing_in_evaluation():
    arch = nasc.Architecture.load("darts_v2")
    dropped = nasc.instantiate(nasc.load("darts", C=36, layers=20, drop_path=0.3), arch)
    assert sum(p.numel() for p in dropped.parameters()) == 3_349_342  # the published 3.3M
    small = nasc.load("darts", C=8, layers=5, drop_path=0.3)
    a = nasc.instantiate(nasc.load("darts", C=8, layers=5), arch).eval()
    b = nasc.instantiate(small, arch).eval()
    # module names carry IR ids, which the drop path nodes shift; the order is the same
    b.load_state_dict(dict(zip(b.state_dict(), a.state_dict().values())))
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(a(x), b(x), rtol=0, atol=0)


def test_a_dropped_path_is_zero_and_a_kept_one_is_rescaled():
    torch.manual_seed(0)
    m = DropPath(0.25).train()
    x = torch.rand(4000, 2, 3, 3) + 1.0
    y = m(x)
    kept = (y != 0).flatten(1).all(1)
    dropped = (y == 0).flatten(1).all(1)
    assert bool((kept | dropped).all())  # a whole sample's path, never part of it
    torch.testing.assert_close(y[kept], x[kept] / 0.75)
    assert abs(kept.float().mean().item() - 0.75) < 0.03
    assert torch.equal(m.eval()(x), x)


def test_the_trainer_schedules_the_probability():
    net = nasc.instantiate(nasc.load("darts", C=8, layers=5, drop_path=0.2),
                           nasc.Architecture.load("darts_v2"))
    for fraction in (0.0, 0.5, 1.0):
        set_drop_path(net, fraction)
        probs = [m.drop_prob for m in net.modules() if isinstance(m, DropPath)]
        assert probs and all(p == pytest.approx(0.2 * fraction) for p in probs)


def test_inherited_networks_drop_the_same_paths():
    space = nasc.load("darts", C=8, layers=3, drop_path=0.2)
    net = nasc.compile(space, method="darts", seed=0)
    arch = nasc.Architecture.load("darts_v2")
    child = nasc.instantiate(space, arch, weights=net)
    assert len([m for m in child.modules() if isinstance(m, DropPath)]) == non_identity_ops(
        arch, 3)
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(child.eval()(x), net.eval().fix(arch)(x), atol=1e-5, rtol=1e-5)


def test_a_probability_of_one_is_an_error():
    with pytest.raises(nasc.NasError, match="drop path probability must be in"):
        nasc.load("darts", layers=2, drop_path=1.0)
