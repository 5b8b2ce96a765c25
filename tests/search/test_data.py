"""Data: ``digit-scenes`` (segmentation composed from the digits) and users' own data."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from nasc.dsl.diagnostics import NasError
from nasc.search.data import BACKGROUND, _digit_split, as_splits, digit_scenes, load_data

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def scenes():
    return digit_scenes(0, sizes=(40, 30, 20))


def test_digit_scenes_shapes_and_classes(scenes):
    assert scenes.name == "digit-scenes" and scenes.classes == 11 and scenes.in_channels == 1
    assert scenes.dense
    for (x, y), n in zip((scenes.train_a, scenes.train_b, scenes.test), (40, 30, 20)):
        assert x.shape == (n, 1, 64, 64) and y.shape == (n, 64, 64)
        assert x.min() >= 0 and x.max() <= 1
        assert y.dtype == torch.long and int(y.min()) >= 0 and int(y.max()) <= BACKGROUND


def test_digit_scene_labels_are_the_drawn_digits(scenes):
    d, *_ = _digit_split(0)
    x, y = scenes.test
    src = scenes.meta["sources"]["test"]
    for i in range(len(y)):
        ink = x[i, 0] >= 0.25
        assert torch.equal(y[i] != BACKGROUND, ink)  # labelled exactly where digits are drawn
        present = set(torch.unique(y[i][ink]).tolist())
        assert present <= {int(d.target[k]) for k in src[i].tolist()}
        assert (x[i, 0][~ink] < 0.25).all()
        # each placed digit's 16x16 ink appears somewhere: count labelled pixels per class
        assert (y[i] != BACKGROUND).sum() > 0


def test_digit_scenes_are_fixed_by_the_seed(scenes):
    again = digit_scenes(0, sizes=(40, 30, 20))
    other = digit_scenes(1, sizes=(40, 30, 20))
    assert torch.equal(again.train_a[0], scenes.train_a[0])
    assert torch.equal(again.test[1], scenes.test[1])
    assert not torch.equal(other.train_a[0], scenes.train_a[0])


def test_digit_scene_splits_use_disjoint_source_digits(scenes):
    src = {k: set(v.flatten().tolist()) for k, v in scenes.meta["sources"].items()}
    assert not src["train_a"] & src["train_b"]
    assert not src["train_a"] & src["test"]
    assert not src["train_b"] & src["test"]


def test_digit_scenes_by_name():
    assert "digit-scenes" in str(pytest.raises(NasError, load_data, "nope").value)


# ---- users' data -------------------------------------------------------------------------------
def _pair(n, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 8, 8, generator=g), torch.randint(0, 4, (n,), generator=g)


def test_datasets_and_loaders_become_splits():
    x, y = _pair(50, 0)
    ds = TensorDataset(x, y)
    s = as_splits(ds, seed=3)
    assert len(s.train_a[1]) + len(s.train_b[1]) + len(s.test[1]) == 50
    assert len(s.test[1]) == 10 and s.classes == 4 and s.in_channels == 1
    both = torch.cat([s.train_a[0], s.train_b[0], s.test[0]])
    assert sorted(both[:, 0, 0, 0].tolist()) == sorted(x[:, 0, 0, 0].tolist())  # a partition
    s2 = as_splits({"train": DataLoader(ds, batch_size=7), "test": (x[:5], y[:5]),
                    "classes": 6, "name": "mine"})
    assert s2.name == "mine" and s2.classes == 6 and len(s2.test[1]) == 5
    assert len(s2.train_a[1]) + len(s2.train_b[1]) == 50
    s3 = as_splits((ds, ds, TensorDataset(x[:3], y[:3])))
    assert len(s3.train_a[1]) == 50 and len(s3.test[1]) == 3


def test_bad_user_data_is_a_clear_error():
    with pytest.raises(NasError, match="Dataset"):
        as_splits({"train": 3, "test": 4})
    with pytest.raises(NasError, match="'test'"):
        as_splits({"train_a": _pair(4, 0)})
    with pytest.raises(NasError, match="module:function"):
        load_data("nomodule:")
    with pytest.raises(NasError, match="cannot import"):
        load_data("no_such_module_xyz:f")
    with pytest.raises(NasError, match="no function"):
        load_data(f"{HERE / 'tinydata.py'}:nothing")


def test_module_function_data(monkeypatch):
    s = load_data(f"{HERE / 'tinydata.py'}:tiny")
    assert s.name == "tiny-digits" and len(s.train_a[1]) == 96
    monkeypatch.syspath_prepend(str(HERE))
    assert torch.equal(load_data("tinydata:tiny").test[1], s.test[1])


def test_search_takes_a_dataset_from_python(one_thread):
    from nasc.search.data import digits
    from nasc.search.run import search

    d = digits(0)
    ds = TensorDataset(torch.cat([d.train_a[0][:80], d.test[0][:40]]),
                       torch.cat([d.train_a[1][:80], d.test[1][:40]]))
    r = search("nas_bench_201", method="darts", data=ds, epochs=1, retrain_epochs=1, batch=16,
               progress=False, space_params={"C": 4, "N": 1},
               retrain_params={"C": 4, "N": 1})
    assert r.report["data"] == "user" and 0 <= r.report["test_accuracy"] <= 1


# ---- data a user gets wrong (issue 18): one clear NasError each, before any training ----------
import math  # noqa: E402

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from nasc.dsl.diagnostics import UserCodeError  # noqa: E402
from nasc.search.data import IGNORE, Splits, validate  # noqa: E402

FEW = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _good(n=12, classes=3, hw=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, 1, hw, hw, generator=g), torch.arange(n) % classes)


def _one_line(e: BaseException) -> str:
    text = str(e)
    assert "\n" not in text, text
    return text


def test_one_class_only_is_refused():
    x, _ = _good()
    with pytest.raises(NasError, match="one class only") as e:
        as_splits({"train": (x, torch.zeros(12, dtype=torch.long)),
                   "test": (x[:2], torch.zeros(2, dtype=torch.long))})
    _one_line(e.value)


def test_test_labels_never_seen_in_training_are_refused():
    x, y = _good()
    with pytest.raises(NasError, match=r"test labels hold class\(es\) \[5\]"):
        as_splits({"train": (x, y), "test": (x[:3], torch.tensor([0, 5, 1]))})


@FEW
@given(st.floats(0.01, 0.99), st.integers(0, 11))
def test_float_labels_are_not_truncated(frac, at):
    x, y = _good()
    yf = y.double()
    yf[at] += frac
    with pytest.raises(NasError, match="labels are floats such as") as e:
        as_splits({"train": (x, yf), "test": (x[:3], y[:3])})
    _one_line(e.value)


def test_whole_float_labels_are_class_indices():
    x, y = _good()
    s = as_splits({"train": (x, y.float()), "test": (x[:3], y[:3].float())})
    assert s.test[1].dtype == torch.long and s.test[1].tolist() == [0, 1, 2]


@FEW
@given(st.sampled_from([(1, 6, 4), (1, 4, 5), (3, 4, 4), (2, 8, 8)]))
def test_a_test_split_of_another_image_size_is_refused(chw):
    x, y = _good()
    xt = torch.randn(3, *chw)
    with pytest.raises(NasError, match="every split must have one size") as e:
        as_splits({"train": (x, y), "test": (xt, y[:3])})
    _one_line(e.value)


@FEW
@given(st.integers(3, 100) | st.integers(-100, -1))
def test_labels_out_of_range_are_refused(bad):
    x, y = _good()
    yt = y[:3].clone()
    yt[1] = bad
    with pytest.raises(NasError, match=f"labels hold {bad}, outside the classes 0..2") as e:
        as_splits({"train": (x, y), "test": (x[:3], yt), "classes": 3})
    _one_line(e.value)


def test_ignored_pixels_only_in_dense_labels():
    x, _ = _good(hw=4)
    y = torch.randint(0, 3, (12, 4, 4), generator=torch.Generator().manual_seed(0))
    y[0, 0, 0] = IGNORE
    s = as_splits({"train": (x, y), "test": (x[:3], y[:3])})
    assert s.dense and s.classes >= 3
    with pytest.raises(NasError, match="outside the classes"):
        as_splits({"train": (x, torch.arange(12) % 3),
                   "test": (x[:3], torch.tensor([0, IGNORE, 1])), "classes": 3})


@FEW
@given(st.sampled_from([(12,), (12, 5), (12, 1, 2, 3, 4), (12, 1, 1, 1, 1, 1)]))
def test_wrong_rank_inputs_are_refused(shape):
    y = torch.arange(12) % 3
    with pytest.raises(NasError, match="expected images N x C x H x W") as e:
        as_splits({"train": (torch.zeros(shape), y), "test": (torch.zeros(shape)[:3], y[:3])})
    _one_line(e.value)


def test_wrong_rank_labels_are_refused():
    x, y = _good()
    with pytest.raises(NasError, match="one class index per image"):
        as_splits({"train": (x, y[:, None]), "test": (x[:3], y[:3, None])})
    with pytest.raises(NasError, match="labels are 3x3 per image but the images 4x4"):
        as_splits({"train": (x, torch.zeros(12, 3, 3, dtype=torch.long)),
                   "test": (x[:3], torch.zeros(3, 3, 3, dtype=torch.long))})


@FEW
@given(st.integers(0, 11), st.sampled_from([math.nan, math.inf, -math.inf]))
def test_nan_and_inf_inputs_are_refused(at, value):
    x, y = _good()
    x[at, 0, 1, 2] = value
    with pytest.raises(NasError, match=f"NaN or infinite values \\(first in example {at}\\)"):
        as_splits({"train_a": (x, y), "train_b": _good(seed=1), "test": _good(3)})


@FEW
@given(st.integers(1, 40), st.integers(1, 40))
def test_inputs_and_labels_must_agree_in_number(n, m):
    x = torch.zeros(n, 1, 4, 4)
    y = torch.arange(m) % 2
    if n == m:
        return
    with pytest.raises(NasError, match=f"has {n} inputs but {m} labels") as e:
        as_splits({"train_a": (x, y), "train_b": _good(), "test": _good(3)})
    _one_line(e.value)


def test_an_empty_split_is_refused():
    x, y = _good()
    with pytest.raises(NasError, match="the train_a split is empty"):
        as_splits({"train_a": (x[:0], y[:0]), "train_b": (x, y), "test": (x, y)})
    with pytest.raises(NasError, match="the test split is empty"):
        as_splits({"train": (x, y), "test": TensorDataset(x[:0], y[:0])})


def test_splits_given_directly_are_checked_too():
    x, y = _good()
    bad = Splits(name="mine", classes=3, in_channels=2, train_a=(x, y), train_b=(x, y),
                 test=(x, y))
    with pytest.raises(NasError, match="in_channels is 2 but the images have 1"):
        as_splits(bad)
    with pytest.raises(NasError, match="classes"):
        validate(Splits(name="m", classes=2, in_channels=1, train_a=(x, y), train_b=(x, y),
                        test=(x, y)))
    with pytest.raises(NasError, match="positive integer"):
        as_splits({"train": (x, y), "test": (x, y), "classes": "ten"})


def test_an_error_in_the_users_data_function_is_theirs(tmp_path):
    f = tmp_path / "mydata.py"
    f.write_text("def load():\n    return {}['missing']\n\n"
                 "def broken(seed):\n    raise RuntimeError('disk on fire')\n")
    with pytest.raises(UserCodeError) as e:
        load_data(f"{f}:load")
    assert isinstance(e.value.__cause__, KeyError)
    assert str(e.value).startswith(f"your data function '{f}:load' raised KeyError")
    with pytest.raises(UserCodeError, match="raised RuntimeError: disk on fire") as e:
        load_data(f"{f}:broken")
    assert isinstance(e.value.__cause__, RuntimeError)


def test_an_error_in_the_users_module_or_data_set_is_theirs(tmp_path, monkeypatch):
    (tmp_path / "badmod_xyz.py").write_text("import no_such_dependency_q\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(UserCodeError, match="ModuleNotFoundError"):
        load_data("badmod_xyz:f")

    class Broken(torch.utils.data.Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            raise OSError("unreadable")

    with pytest.raises(UserCodeError, match="your whole data set raised OSError"):
        as_splits(Broken())


def test_data_errors_exit_1_on_the_command_line(tmp_path, capsys):
    from nasc.cli import main

    f = tmp_path / "d.py"
    f.write_text("import torch\n\ndef one():\n    x = torch.zeros(20, 1, 8, 8)\n"
                 "    return {'train': (x, torch.zeros(20)), 'test': (x[:4], torch.zeros(4))}\n\n"
                 "def oops():\n    raise ValueError('no')\n")
    for fn, text in (("one", "one class only"), ("oops", "your data function")):
        assert main(["search", "darts", "--data", f"{f}:{fn}", "--epochs", "1"]) == 1
        err = capsys.readouterr().err
        assert text in err and "bug in nasc" not in err


def test_items_that_make_no_tensors_are_clear_errors():
    ragged = [(torch.zeros(1, 4, 4), 0), (torch.zeros(1, 5, 5), 1)] * 3
    with pytest.raises(NasError, match="the whole items do not make tensors"):
        as_splits(ragged)
    with pytest.raises(NasError, match="each must be a pair"):
        as_splits({"train": [torch.zeros(3)] * 4, "test": _good(3)})
    with pytest.raises(NasError, match="do not make tensors"):
        as_splits({"train": [(torch.zeros(1, 2, 2), "cat")] * 4, "test": _good(3)})


@FEW
@given(st.integers(2, 5), st.integers(0, 3), st.integers(1, 3), st.integers(0, 2**31))
def test_sound_data_passes_unchanged(classes, extra, channels, seed):
    g = torch.Generator().manual_seed(seed)
    n = 2 * classes + extra
    make = lambda k: (torch.randn(k, channels, 5, 5, generator=g),  # noqa: E731
                      torch.arange(k) % classes)
    ta, tb, test = make(n), make(n), make(classes)
    s = as_splits({"train_a": ta, "train_b": tb, "test": test})
    assert s.classes == classes and s.in_channels == channels
    assert torch.equal(s.train_a[0], ta[0]) and torch.equal(s.test[1], test[1])
    assert validate(s) is s
