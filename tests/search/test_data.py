"""Data: ``digit-scenes`` (segmentation composed from the digits) and users' own data."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

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
    assert "digit-scenes" in str(pytest.raises(ValueError, load_data, "nope").value)


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
    with pytest.raises(ValueError, match="Dataset"):
        as_splits({"train": 3, "test": 4})
    with pytest.raises(ValueError, match="'test'"):
        as_splits({"train_a": _pair(4, 0)})
    with pytest.raises(ValueError, match="module:function"):
        load_data("nomodule:")
    with pytest.raises(ValueError, match="cannot import"):
        load_data("no_such_module_xyz:f")
    with pytest.raises(ValueError, match="no function"):
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
