"""Each paper's recipe (nasc.search.recipes): its pieces against the papers' equations, and one tiny
search per method on its stdlib space, end to end."""

import json
import math

import pytest
import torch
from nasc.dsl.diagnostics import NasError
from nasc.ir.nodes import InputMixture
from nasc.ir.passes.sample import draw

import nasc
from nasc.search import hrnas, recipes

#: Tiny versions of the stdlib spaces (8x8 digits; 64x64 digit scenes).
PROXYLESS = dict(classes=10, stem=8, first=8, stages=[[8, 2, 1], [16, 2, 2]], last=16)
DENSENAS = dict(in_channels=1, classes=10, stem=8, widths=[8, 8, 16, 16, 24],
                strides=[1, 1, 2, 2, 4], stages=[0, 1, 2, 2, 3], layers=[0, 1, 1, 1, 0],
                last=16, m=3)  # fmt: skip
DCNAS = dict(in_channels=1, classes=11, L=2, F=8)
HRNAS = dict(task="segmentation", in_channels=1, classes=11, stem=[4, 4], widths=[[4], [4, 8]],
             blocks=[[1], [1, 1]], head=[4, 8], last=8, r=1, tokens=2, s=2, d=4)


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    yield


def _net(space, method, **params):
    torch.manual_seed(0)
    return nasc.compile(nasc.load(space, **params), method=method)


def _randomise(net, seed=1):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for a in net.arch_parameters():
            a.copy_(torch.randn(a.shape, generator=gen))


# ---- losses ------------------------------------------------------------------------------------
def test_densenas_eq8_cost_term_value_and_gradient():
    cost = torch.tensor(225.0, requires_grad=True)
    loss = recipes.densenas_cost_loss(cost, 0.1, 15.0)
    assert loss.item() == pytest.approx(0.2)  # 0.1 * log_15(225) = 0.1 * 2
    loss.backward()
    assert cost.grad.item() == pytest.approx(0.1 / (225.0 * math.log(15.0)))


def test_proxyless_cost_term_is_lambda_times_relative_excess():
    cost = torch.tensor(150.0, requires_grad=True)
    loss = recipes.proxyless_cost_loss(cost, 0.1, 100.0)
    assert loss.item() == pytest.approx(0.05)
    loss.backward()
    assert cost.grad.item() == pytest.approx(0.001)


def test_arch_loss_adds_the_expected_macs_and_their_gradient_reaches_alpha():
    net = _net("densenas", "densenas", **DENSENAS)
    rec = recipes.recipe("densenas", {}, epochs=4, input_size=(8, 8))
    assert (rec.cost_weight, rec.cost_base, rec.cost_kind, rec.warmup_epochs) == (
        0.1, 15.0, "macs", 2)  # fmt: skip
    x, y = torch.randn(4, 1, 8, 8), torch.tensor([0, 1, 2, 3])
    net.sample(0, 0, paths=2)
    out = net(x)
    macs = net.expected_cost("macs", input_size=(8, 8))
    loss = recipes.arch_loss(net, rec, out, y)
    expected = recipes.loss_fn(out, y) + 0.1 * torch.log(macs) / math.log(15.0)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    loss.backward()
    assert all(a.grad is not None for a in net.arch_parameters())


# ---- two-path architecture step (ProxylessNAS; DenseNAS eq. 9) --------------------------------
@pytest.mark.parametrize("space, method, params, shape", [
    ("proxylessnas", "proxyless", PROXYLESS, (4, 3, 8, 8)),
    ("densenas", "densenas", DENSENAS, (4, 1, 8, 8)),
])  # fmt: skip
def test_two_path_step_keeps_the_unsampled_softmax_weights(space, method, params, shape):
    net = _net(space, method, **params)
    _randomise(net)
    rec = recipes.recipe(method, {}, epochs=1, input_size=(8, 8))
    opt = torch.optim.Adam(net.arch_parameters(), lr=0.5)
    before = [a.detach().clone() for a in net.arch_parameters()]
    x, y = torch.randn(*shape), torch.tensor([0, 1, 2, 3])
    recipes.two_path_arch_step(net, opt, rec, x, y, seed=3, step=7)
    drawn = draw(net.graph, dict(zip(net.labels, [b.tolist() for b in before])), seed=3, step=7,
                 paths=2)
    op_labels = {r.label for r in net.graph.relaxed_nodes() if not isinstance(r, InputMixture)}
    changed = 0
    for lab, a, b in zip(net.labels, net.arch_parameters(), before):
        p_new, p_old = torch.softmax(a.detach(), -1), torch.softmax(b, -1)
        if lab not in op_labels:  # DenseNAS beta: no draw, an ordinary update
            continue
        picked = list(drawn[lab])
        assert len(picked) == min(2, len(b))
        rest = [i for i in range(len(b)) if i not in picked]
        torch.testing.assert_close(p_new[rest], p_old[rest], rtol=1e-5, atol=1e-7)
        # eq. 9: the sampled options share the mass they had
        assert p_new[picked].sum().item() == pytest.approx(p_old[picked].sum().item(), rel=1e-5)
        changed += int(not torch.allclose(a.detach()[picked], b[picked]))
    assert changed > 0


def test_rebalance_sampled_matches_the_equation():
    net = _net("proxylessnas", "proxyless", **PROXYLESS)
    _randomise(net)
    old = [a.detach().clone() for a in net.arch_parameters()]
    lab = net.labels[0]
    with torch.no_grad():
        new = old[0] + torch.tensor([0.3, -0.2, 0.5, 0.1, 0.0, 0.7, 0.2][: len(old[0])])
        next(net.arch_parameters()).copy_(new)
    recipes.rebalance_sampled(net, old, {lab: (1, 2)})
    a = next(net.arch_parameters()).detach()
    bias = math.log(sum(math.exp(old[0][i]) for i in (1, 2))) - math.log(
        sum(math.exp(new[i]) for i in (1, 2)))
    assert a[1].item() == pytest.approx(new[1].item() + bias, rel=1e-5)
    assert a[0].item() == pytest.approx(old[0][0].item())  # unsampled: back to its value


# ---- DCNAS temperature -------------------------------------------------------------------------
def test_input_temperature_anneals_exponentially_from_start_to_end():
    ts = [recipes.input_temperature(e, 5, (5.0, 0.5)) for e in range(5)]
    assert ts[0] == pytest.approx(5.0) and ts[-1] == pytest.approx(0.5)
    assert ts[2] == pytest.approx(math.sqrt(5.0 * 0.5))
    assert all(a > b for a, b in zip(ts, ts[1:]))


def test_supernet_input_temperature_sets_eq5_probabilities_and_draws():
    net = _net("dcnas", "dcnas", **DCNAS)
    _randomise(net)
    rec = next(r for r in net.graph.nodes_of(InputMixture) if r.paths)
    beta = net.weights_by_label()[rec.label]
    net.set_input_temperature(0.3)
    probs = net.probabilities(net.space.graph)[rec.label]
    torch.testing.assert_close(probs, torch.softmax(torch.tensor(beta) / 0.3, -1))
    # the draw is the graph's draw with tau = 0.3 on every input mixture
    g = net.graph.copy()
    for r in g.nodes_of(InputMixture):
        g.update(r.id, tau=0.3)
    for step in range(5):
        net.sample(0, step)
        want = draw(g, net.weights_by_label(), seed=0, step=step)
        assert {k: v for k, v in net.drawn.items() if k.endswith(".in")} == {
            k: v for k, v in want.items() if k.endswith(".in")}
    net.set_input_temperature(None)
    assert net.input_tau is None


# ---- recipe settings ---------------------------------------------------------------------------
def test_recipe_defaults_and_overrides(tmp_path):
    rec = recipes.recipe("proxyless", {"cost_weight": 0.5}, epochs=3, input_size=(8, 8))
    assert rec.two_path and rec.cost_weight == 0.5 and rec.cost_kind == "macs"
    assert recipes.recipe("densenas", {"warmup_epochs": 1}, epochs=10,
                          input_size=(8, 8)).warmup_epochs == 1
    assert not recipes.recipe("densenas", {}, epochs=10, input_size=(8, 8)).arch_active(5)
    assert recipes.recipe("dcnas", {"input_temperature": [2, 1]}, epochs=2,
                          input_size=(64, 64)).input_temperature == (2.0, 1.0)
    with pytest.raises(NasError, match="does not apply to method 'darts'"):
        recipes.recipe("darts", {"cost_weight": 1.0}, epochs=1, input_size=(8, 8))
    with pytest.raises(NasError, match="no latency table"):
        recipes.recipe("densenas", {"cost_table": str(tmp_path / "x.json")}, epochs=1,
                       input_size=(8, 8))
    with pytest.raises(NasError, match="cost_base"):
        recipes.recipe("densenas", {"cost_base": 1.0}, epochs=1, input_size=(8, 8))
    with pytest.raises(NasError, match="input_temperature"):
        recipes.recipe("dcnas", {"input_temperature": [1.0, 0.0]}, epochs=1,
                       input_size=(8, 8))


def test_a_latency_table_gives_the_cost(tmp_path):
    from nasc.search.profile import profile

    space = nasc.load("densenas", **DENSENAS)
    lut = tmp_path / "lut.json"
    profile(space, input_size=8, warmup=0, repeats=1).save(lut)
    rec = recipes.recipe("densenas", {"cost_table": str(lut)}, epochs=1, input_size=(8, 8))
    assert rec.cost_kind == "latency"
    net = _net("densenas", "densenas", **DENSENAS)
    latency = recipes.expected_cost(net, rec)
    assert latency.item() > 0 and latency.requires_grad


# ---- HR-NAS ------------------------------------------------------------------------------------
def test_hrnas_shrinks_every_few_epochs_but_not_after_the_last():
    rec = recipes.recipe("hrnas", {"prune_every": 2}, epochs=7, input_size=(64, 64))
    assert [e for e in range(7) if rec.prunes_after(e, 7)] == [1, 3, 5]
    assert not recipes.recipe("hrnas", {"prune_every": 0}, epochs=7,
                              input_size=(64, 64)).prunes_after(1, 7)
    assert rec.arch_free and not rec.arch_active(3)


def test_hrnas_weight_penalty_is_lambda_times_eq7():
    net = _net("hrnas", "hrnas", **HRNAS)
    rec = recipes.recipe("hrnas", {"cost_weight": 0.01}, epochs=1, input_size=(64, 64))
    pen = recipes.weight_penalty(net, rec)
    assert pen.item() == pytest.approx(
        0.01 * hrnas.resource_penalty(net, input_size=(64, 64)).item())
    assert recipes.weight_penalty(net, recipes.recipe("darts", {}, epochs=1,
                                                      input_size=(8, 8))) is None


def test_shrink_step_removes_units_recalibrates_bn_and_replays():
    net = _net("hrnas", "hrnas", **HRNAS)
    factors = hrnas.importance_factors(net)
    lab = sorted(factors)[0]
    with torch.no_grad():
        factors[lab][:] = 0.0  # every unit of one label dies
    before = hrnas.derive(net)
    calib = [torch.randn(4, 1, 64, 64) for _ in range(2)]
    small, kept = recipes.shrink_step(net, calib)
    assert kept == before and kept[lab] == 0 and hrnas.derive(small)[lab] == 0
    assert len(small.graph) <= len(net.graph)
    assert sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in net.parameters())
    bns = [m for m in small.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert all(int(m.num_batches_tracked) == 2 for m in bns)  # re-calibrated on 2 batches
    # a resumed run rebuilds the shrunk supernet from the kept counts and loads its weights
    again = recipes.replay_shrinks(_net("hrnas", "hrnas", **HRNAS), [kept])
    again.load_state_dict(small.state_dict())
    small.eval(), again.eval()
    x = torch.randn(2, 1, 64, 64)
    torch.testing.assert_close(again(x), small(x))


def test_moved_optimizer_continues_the_schedule():
    w = [torch.nn.Parameter(torch.randn(3))]
    opt = torch.optim.SGD(w, lr=0.1, momentum=0.9, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, 10, eta_min=1e-3)
    for _ in range(4):
        opt.step()
        sched.step()
    new_w = [torch.nn.Parameter(torch.randn(2))]
    new, new_sched = recipes.moved_optimizer(opt, sched, new_w)
    assert new.param_groups[0]["lr"] == pytest.approx(opt.param_groups[0]["lr"])
    opt.step(), sched.step(), new.step(), new_sched.step()
    assert new.param_groups[0]["lr"] == pytest.approx(opt.param_groups[0]["lr"])
    assert new.param_groups[0]["momentum"] == 0.9


# ---- metrics and retraining --------------------------------------------------------------------
def test_segmentation_metrics_of_a_confusion_matrix():
    m = torch.tensor([[3, 1, 0], [0, 2, 0], [0, 0, 0]])
    got = recipes.segmentation_metrics(m)
    assert got["pixel_accuracy"] == pytest.approx(5 / 6)
    assert got["iou"][:2] == pytest.approx([3 / 4, 2 / 3]) and got["iou"][2] is None
    assert got["mean_iou"] == pytest.approx((3 / 4 + 2 / 3) / 2)


def test_confusion_counts_pixels_of_upsampled_logits():
    class Const(torch.nn.Module):
        def forward(self, x):  # class 1 everywhere, at half the label's size
            out = torch.zeros(x.shape[0], 3, x.shape[2] // 2, x.shape[3] // 2)
            out[:, 1] = 1.0
            return out

    y = torch.tensor([[[1, 1], [0, 2]]])
    m = recipes.confusion(Const(), torch.zeros(1, 1, 2, 2), y, 3)
    assert m.tolist() == [[0, 1, 0], [0, 2, 0], [0, 1, 0]]


def test_darts_retraining_adds_the_auxiliary_loss_and_schedules_drop_path():
    space = nasc.load("darts", C=4, layers=3, classes=10, in_channels=1, auxiliary=True,
                      drop_path=0.2)
    torch.manual_seed(0)
    model = nasc.instantiate(space, space.sample(0))
    idx = recipes.main_output(space)
    assert idx == 1 and recipes.main_output(nasc.load("nas_bench_201", N=1)) is None
    x, y = torch.randn(4, 1, 32, 32), torch.tensor([0, 1, 2, 3])  # (the head needs 8x8 maps)
    model.eval()
    out = model(x)
    want = recipes.loss_fn(out[1], y) + 0.4 * recipes.loss_fn(out[0], y)
    assert recipes.retrain_loss(out, y, idx, 0.4).item() == pytest.approx(want.item())
    assert recipes.MainOutput(model, idx)(x).shape == (4, 10)
    from nasc.backends.torch.ops import DropPath

    assert recipes.start_retrain_epoch(model, 3, 4) == 0.75
    probs = [m.drop_prob for m in model.modules() if isinstance(m, DropPath)]
    assert probs and probs == [pytest.approx(0.15)] * len(probs)


# ---- each recipe end to end on its stdlib space ------------------------------------------------
def _tiny_digits(rgb: bool = False):
    from nasc.search.data import Splits, digits

    d = digits(0)

    def cut(pair, k):
        x = pair[0][:k]
        return (x.repeat(1, 3, 1, 1) if rgb else x), pair[1][:k]

    return Splits(name="digits", classes=10, in_channels=3 if rgb else 1,
                  train_a=cut(d.train_a, 48), train_b=cut(d.train_b, 48), test=cut(d.test, 32))


def _tiny_scenes():
    from nasc.search.data import digit_scenes

    return digit_scenes(0, sizes=(16, 16, 8))


HRNAS_RUN = {k: v for k, v in HRNAS.items() if k not in ("in_channels", "classes")}
DENSENAS_RUN = {k: v for k, v in DENSENAS.items() if k not in ("in_channels", "classes")}
PROXYLESS_RUN = {k: v for k, v in PROXYLESS.items() if k != "classes"}


@pytest.mark.parametrize("space, method, data, params, settings", [
    ("proxylessnas", "proxyless", _tiny_digits, PROXYLESS_RUN, {}),
    ("densenas", "densenas", _tiny_digits, DENSENAS_RUN, {"warmup_epochs": 1}),
    ("dcnas", "dcnas", _tiny_scenes, {"L": 2, "F": 8}, {}),
    ("hrnas", "hrnas", _tiny_scenes, HRNAS_RUN, {"prune_every": 1, "cost_weight": 1e-3}),
])  # fmt: skip
def test_each_recipe_searches_derives_and_retrains_its_space(space, method, data, params,
                                                             settings, tmp_path,
                                                             foreign_default_device):
    from nasc.cli import main
    from nasc.search.run import search

    out = tmp_path / "run"
    splits = data()
    with foreign_default_device():  # every tensor of the run on its device (see conftest)
        result = search(space, method=method, data=splits, epochs=2, retrain_epochs=1,
                        batch=8, out=out, progress=False, space_params=params,
                        retrain_params=params, device="cpu", **settings)
    report = json.loads((out / "report.json").read_text())
    assert report["method"] == method and 0.0 <= report["test_accuracy"] <= 1.0
    assert report["parameters"] > 0 and report["flops"] > 0
    arch = nasc.Architecture.load(out / "architecture.json")
    common = {"classes": splits.classes, "in_channels": splits.in_channels}
    retrain_space = nasc.load(space, **params, **common)
    assert retrain_space.canonical(arch) == arch == result.architecture
    assert nasc.load(str(out / "derived.nas")).count() == 1
    assert main(["check", str(out / "derived.nas")]) == 0
    saved = (out / "architecture.json").read_text()
    assert main(["derive", str(out)]) == 0  # re-derived from the checkpoint's supernet
    assert (out / "architecture.json").read_text() == saved
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    search_rows = [r for r in rows if r["phase"] == "search"]
    assert len(search_rows) == 2
    if method == "densenas":  # the warm-up epoch trains weights only
        assert search_rows[0]["arch_steps"] is False and search_rows[1]["arch_steps"] is True
        assert report["recipe"]["cost_base"] == 15.0
    if method == "proxyless":
        assert report["recipe"]["cost_kind"] == "macs"
    if method == "dcnas":
        t = [r["input_temperature"] for r in search_rows]
        assert t == [pytest.approx(5.0), pytest.approx(0.5)]
    if method in ("dcnas", "hrnas"):  # segmentation metrics on digit-scenes
        assert 0.0 <= report["mean_iou"] <= 1.0
        assert report["pixel_accuracy"] == pytest.approx(report["test_accuracy"])
    if method == "hrnas":
        assert report["shrinks"] == 1  # after epoch 0 (never after the last)


class _Crash(Exception):
    pass


def test_an_hrnas_run_resumes_across_a_shrink(tmp_path, monkeypatch):
    """The checkpoint after a shrink holds the smaller supernet: a resumed run rebuilds it from
    the recorded kept counts and continues to the uninterrupted result."""
    import nasc.search.training
    from nasc.search.run import search
    from nasc.search.training import load_checkpoint

    kw = dict(method="hrnas", data=_tiny_scenes(), epochs=2, retrain_epochs=1, batch=8,
              progress=False, space_params=HRNAS_RUN, retrain_params=HRNAS_RUN, prune_every=1,
              cost_weight=1e-3)
    full = search("hrnas", out=tmp_path / "full", **kw)
    real = nasc.search.training.Writer.checkpoint
    count = {"n": 0}

    def checkpoint(self, state, name="checkpoint.pt"):  # die at the second epoch's checkpoint
        if count["n"] >= 1:
            raise _Crash
        count["n"] += 1
        real(self, state, name)

    with monkeypatch.context() as m:
        m.setattr(nasc.search.training.Writer, "checkpoint", checkpoint)
        with pytest.raises(_Crash):
            search("hrnas", out=tmp_path / "cut", **kw)
    state = load_checkpoint(tmp_path / "cut" / "checkpoint.pt")["state"]
    assert state["epoch"] == 1 and len(state["shrinks"]) == 1
    resumed = search("hrnas", out=tmp_path / "cut", resume=True, **kw)
    assert resumed.architecture == full.architecture
    a, b = (json.loads((d / "report.json").read_text()) for d in (tmp_path / "full",
                                                                   tmp_path / "cut"))
    a.pop("timings"), b.pop("timings")
    assert a == b and a["shrinks"] == 1
    ca, cb = (load_checkpoint(d / "checkpoint.pt") for d in (tmp_path / "full",
                                                              tmp_path / "cut"))
    assert all(torch.equal(ca["supernet"][k], cb["supernet"][k]) for k in ca["supernet"])


def test_the_command_line_takes_a_latency_table_and_the_recipe_settings(tmp_path, capsys):
    from pathlib import Path

    from nasc.cli import main
    from nasc.search.profile import profile
    from nasc.search.run import DEFAULTS

    sizes = DEFAULTS["digits"]["spaces"]["densenas"]["search"]
    lut = tmp_path / "lut.json"
    profile(nasc.load("densenas", in_channels=1, classes=10, **sizes), input_size=8, warmup=0,
            repeats=1).save(lut)
    tiny = str(Path(__file__).with_name("tinydata.py")) + ":tiny"
    out = tmp_path / "run"
    assert main(["search", "densenas", "--method", "densenas", "--data", tiny, "--epochs", "2",
                 "--retrain-epochs", "1", "--batch", "32", "--cost-table", str(lut),
                 "--cost-weight", "0.2", "--warmup-epochs", "1", "--out", str(out)]) == 0
    rec = json.loads((out / "report.json").read_text())["recipe"]
    assert (rec["cost_kind"], rec["cost_weight"], rec["warmup_epochs"]) == ("latency", 0.2, 1)
    assert main(["search", "densenas", "--method", "dcnas", "--data", tiny, "--epochs", "1",
                 "--cost-weight", "0.2"]) == 1
    assert "does not apply to method 'dcnas'" in capsys.readouterr().err


def test_a_space_with_a_fixed_input_is_checked_against_the_data(tmp_path):
    from nasc.search.settings import common_params as _common

    path = tmp_path / "fixed.nas"
    path.write_text("import nn\n\nspace fixed(classes: int = 10) {\n    input x: image(3)\n"
                    "    output logits = linear(global_avg_pool(x), classes)\n}\n")
    rgb = _tiny_digits(rgb=True)
    assert _common(str(path), rgb) == {"classes": 10}
    with pytest.raises(NasError, match="reads 3-channel images and has no in_channels"):
        _common(str(path), _tiny_digits())
    assert _common("densenas", rgb) == {"classes": 10, "in_channels": 3}


def test_nasc_train_retrains_darts_with_its_auxiliary_head_and_drop_path(tmp_path):
    """DARTS' evaluation network on 32x32 images (its auxiliary head reads 8x8 maps)."""
    from nasc.search.data import Splits
    from nasc.search.run import train_architecture

    d = _tiny_digits()
    up = lambda p: (p[0].repeat_interleave(4, 2).repeat_interleave(4, 3), p[1])  # noqa: E731
    data = Splits(name="digits32", classes=10, in_channels=1, train_a=up(d.train_a),
                  train_b=up(d.train_b), test=up(d.test))
    space = nasc.load("darts", C=4, layers=3)
    arch = space.sample(0)
    report = train_architecture(arch, data=data, epochs=2, batch=32, progress=False,
                                out=tmp_path / "t",
                                space_params={"C": 4, "layers": 3, "auxiliary": True,
                                              "drop_path": 0.2})
    assert 0.0 <= report["test_accuracy"] <= 1.0
    rows = [json.loads(line) for line in (tmp_path / "t" / "metrics.jsonl").read_text()
            .splitlines()]
    assert len(rows) == 2 and all(math.isfinite(r["train_loss"]) for r in rows)
