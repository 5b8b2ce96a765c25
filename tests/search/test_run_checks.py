"""What a user gets wrong is caught before the run, and numbers that stop being numbers stop
it (issue 18: items 2, 3 for arguments, 4)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import nasc
from nasc.cli import main
from nasc.dsl.diagnostics import NasError
from nasc.search import settings as run_settings
from nasc.search.data import Splits
from nasc.search.run import search, train_architecture
from nasc.search.steps import NonFinite
from nasc.search.training import load_checkpoint

HERE = Path(__file__).parent
TINY = str(HERE / "tinydata.py") + ":tiny"
SMALL = {"C": 4, "N": 1}
KW = dict(data=TINY, epochs=2, retrain_epochs=1, batch=32, progress=False,
          space_params=SMALL, retrain_params=SMALL)


def _tiny() -> Splits:
    import runpy

    return runpy.run_path(str(HERE / "tinydata.py"))["tiny"]()


# ---- 18.3: every numeric argument and setting is checked up front ------------------------------
@pytest.mark.parametrize(("change", "message"), [
    ({"epochs": -1}, "epochs must be an integer >= 1"),
    ({"epochs": 0}, "epochs must be an integer >= 1"),
    ({"retrain_epochs": -3}, "retrain_epochs must be"),
    ({"batch": -5}, "batch must be an integer >= 1"),
    ({"batch": 2.5}, "batch must be an integer"),
    ({"checkpoint_every": 0}, "checkpoint_every must be an integer >= 1"),
    ({"seed": -1}, "seed must be"),
    ({"order": 3}, "order must be one of 1, 2"),
    ({"trials": 0}, "trials must be"),
    ({"spos_mutation": 1.5}, r"spos_mutation must be a finite number in \[0.0, 1.0\]"),
    ({"calibration_batches": True}, "calibration_batches must be an integer"),
    ({"auxiliary_weight": math.nan}, "auxiliary_weight must be >= 0"),
    ({"space_params": {"C": 4, "N": -1}}, "-D: space parameter N must be a finite number >= 0"),
    ({"retrain_params": {"C": math.inf, "N": 1}}, "-R: space parameter C must be a finite"),
    ({"space_params": {"C": 4, "N": 1, "x": [1, math.nan]}}, r"x\[1\] must be a finite"),
])
def test_meaningless_arguments_are_refused_before_anything_runs(tmp_path, change, message):
    with pytest.raises(NasError, match=message):
        search("nas_bench_201", out=tmp_path / "r", **{**KW, **change})
    assert not (tmp_path / "r").exists()


def test_recipe_settings_are_checked_too(tmp_path):
    for bad in (math.nan, -1.0, math.inf):
        with pytest.raises(NasError, match="cost_weight must be"):
            search("nas_bench_201", method="proxyless", cost_weight=bad, **KW)
    with pytest.raises(NasError, match="input_temperature must be"):
        search("nas_bench_201", method="dcnas", input_temperature=(5.0, math.inf), **KW)


_BAD = st.one_of(st.floats(allow_nan=True, allow_infinity=True).filter(
    lambda v: not math.isfinite(v) or v < 0), st.integers(max_value=-1), st.text(max_size=3),
    st.booleans(), st.none())


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(sorted(run_settings.RUN_SETTINGS)), value=_BAD)
def test_every_declared_setting_refuses_what_is_no_count_or_rate(name, value):
    """Negative, non-finite and non-numeric values fail every numeric setting's check; its
    default passes it."""
    s = run_settings.RUN_SETTINGS[name]
    s.check(name, s.default)
    if isinstance(s.default, bool):
        if not isinstance(value, bool):
            with pytest.raises(NasError, match=name):
                s.check(name, value)
        return
    with pytest.raises(NasError, match=name):
        s.check(name, value)


@settings(max_examples=40, deadline=None)
@given(name=st.sampled_from(sorted(run_settings.ARGUMENTS)),
       value=_BAD.filter(lambda v: v is not None))
def test_every_declared_argument_refuses_what_is_no_count(name, value):
    with pytest.raises(NasError, match=name):
        run_settings.ARGUMENTS[name].check(name, value)


def test_the_command_line_reports_them_as_user_errors(tmp_path, capsys):
    for args, message in ((["--epochs", "-1"], "epochs must be"),
                          (["--batch", "-5"], "batch must be"),
                          (["--checkpoint-every", "0"], "checkpoint_every must be"),
                          (["-D", "N=-1"], "space parameter N"),
                          (["--auxiliary-weight", "nan"], "auxiliary_weight must be")):
        assert main(["search", "nas_bench_201", "--data", TINY, "-D", "C=4", *args]) == 1
        err = capsys.readouterr().err
        assert message in err and "bug in nasc" not in err


def test_an_architecture_file_with_a_nan_parameter_is_refused(tmp_path):
    space = nasc.load("darts", C=4, layers=3)
    arch = space.sample(0)
    path = tmp_path / "a.json"
    doc = json.loads(arch.to_json())
    doc["params"] = {"C": 4, "layers": 3, "drop_path": math.nan}
    path.write_text(json.dumps(doc))
    with pytest.raises(NasError, match=r"a.json: NaN is not a number an architecture may hold"):
        train_architecture(path, data=TINY, epochs=1, batch=32, progress=False)
    with pytest.raises(NasError, match="epochs must be"):
        train_architecture(arch, data=TINY, epochs=-1, progress=False)


# ---- 18.4: the spaces and the data are checked against each other before the first step -------
def test_a_retrain_space_without_the_searched_decisions_fails_at_once(tmp_path):
    """DARTS with two layers has only reduction cells: the default retrain network's normal
    cells would have no decision (it used to fail after the whole search)."""
    with pytest.raises(NasError, match=r"cannot take the searched architectures: .*normal"):
        search("darts", data=TINY, epochs=1, retrain_epochs=1, batch=32, progress=False,
               space_params={"C": 4, "layers": 2}, out=tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_a_retrained_network_that_does_not_fit_the_images_fails_at_once(tmp_path):
    """DARTS' auxiliary head reads 8x8 maps: on 8x8 digits it has no room."""
    with pytest.raises(NasError, match=r"the retrained network \(darts\) cannot run on the "
                                       r"data's train_a split"):
        search("darts", data=TINY, epochs=1, retrain_epochs=1, batch=32, progress=False,
               space_params={"C": 4, "layers": 3}, out=tmp_path / "r",
               retrain_params={"C": 4, "layers": 3, "auxiliary": True})
    assert not (tmp_path / "r").exists()


def test_a_test_split_of_other_images_fails_at_once(tmp_path):
    d = _tiny()
    rgb = Splits(name="odd", classes=10, in_channels=1, train_a=d.train_a, train_b=d.train_b,
                 test=(d.test[0].repeat(1, 3, 1, 1), d.test[1]))
    with pytest.raises(NasError, match="test"):
        search("nas_bench_201", **{**KW, "data": rgb}, out=tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_a_search_space_without_choices_is_refused(tmp_path):
    with pytest.raises(NasError, match="has no choices: there is nothing to search"):
        search("darts", data=TINY, epochs=1, retrain_epochs=1, batch=32, progress=False,
               space_params={"C": 4, "layers": 0}, retrain_params={"C": 4, "layers": 0})


# ---- 18.2: a loss that stops being finite stops the run ----------------------------------------
def test_a_diverging_cost_term_stops_the_search_with_its_likely_cause(tmp_path):
    """ProxylessNAS' cost term divided by a reference of 1e-300: the architecture parameters
    overflow in the first architecture step; the run stops there and names the setting."""
    out = tmp_path / "r"
    with pytest.raises(NonFinite, match=r"search step 0: the architecture parameters became "
                                        r"NaN or infinite.*--cost-weight.*--cost-target"):
        search("nas_bench_201", method="proxyless", cost_target=1e-300, out=out,
               checkpoint_every=1, **{**KW, "epochs": 1})
    assert not (out / "checkpoint.pt").exists()  # no checkpoint of a diverged supernet
    assert (out / "metrics.jsonl").read_text() == ""


def test_a_loss_that_becomes_nan_stops_the_search_and_keeps_the_last_checkpoint(
        tmp_path, monkeypatch):
    from nasc.search import steps

    real, calls = steps.loss_fn, {"n": 0}

    def loss(out, y):  # the weight step's loss of step 3 is NaN
        calls["n"] += 1
        value = real(out, y)
        return value * math.nan if calls["n"] == 8 else value

    monkeypatch.setattr(steps, "loss_fn", loss)
    out = tmp_path / "r"
    with pytest.raises(NonFinite, match=r"search step 3: the training loss is nan") as info:
        search("nas_bench_201", out=out, checkpoint_every=1, **KW)
    assert f"the last good checkpoint is kept: {out / 'checkpoint.pt'}" in str(info.value)
    ckpt = load_checkpoint(out / "checkpoint.pt")
    assert ckpt["state"]["step"] == 3
    assert all(torch.isfinite(t).all() for t in ckpt["supernet"].values()
               if t.is_floating_point())


def test_a_diverging_retraining_stops_and_keeps_the_last_checkpoint(tmp_path, monkeypatch):
    from nasc.search import recipes

    real = recipes.retrain_loss
    calls = {"n": 0}

    def loss(out, y, index, weight):
        calls["n"] += y.device.type != "meta"  # (not the up-front checks)
        value = real(out, y, index, weight)
        return value * math.nan if calls["n"] == 3 else value

    monkeypatch.setattr(recipes, "retrain_loss", loss)
    out = tmp_path / "r"
    with pytest.raises(NonFinite, match=r"retrain derived network: epoch 0, batch 2: the "
                                        r"training loss is nan"):
        search("nas_bench_201", out=out, checkpoint_every=1, **KW)
    ckpt = load_checkpoint(out / "checkpoint.pt")
    assert ckpt["state"]["phase"] == "retrain" and ckpt["state"]["retrain"]["batch"] == 2
    assert all(torch.isfinite(t).all() for t in ckpt["model"].values() if t.is_floating_point())
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["phase"] for r in rows] == ["search", "search"]


def test_metrics_rows_are_json_whatever_they_hold():
    from nasc.search.state import json_safe

    row = {"a": math.nan, "b": [1.0, math.inf], "c": {"d": -math.inf}, "e": "x"}
    assert json.loads(json.dumps(json_safe(row), allow_nan=False)) == {
        "a": None, "b": [1.0, None], "c": {"d": None}, "e": "x"}


def test_a_parameter_that_is_not_finite_is_named_before_a_checkpoint():
    from nasc.search.steps import check_finite_modules

    good, bad = torch.nn.Linear(2, 2), torch.nn.Sequential(torch.nn.Linear(2, 2))
    check_finite_modules([good, None], "here")
    with torch.no_grad():
        bad[0].bias[1] = math.inf
    with pytest.raises(NonFinite, match=r"here: parameter '0.bias' became NaN or infinite"):
        check_finite_modules([good, bad], "here")
