"""The papers' augmentation (torch ops, seeded generators) and the batches the run loop gets:
in memory or streamed through DataLoader workers, in the order of ``epochs_of``/``Cycler``."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from officialdata import write_cifar10, write_cityscapes, write_imagenet

from nasc.search.data import load_data
from nasc.search.datasets import batches, cycled, evaluation
from nasc.search.datasets.augment import (
    CifarAugment,
    cutout,
    hflip,
    random_crop,
    resized_crop_box,
)
from nasc.search.training import Cycler, epochs_of

FEW = settings(max_examples=20, deadline=None)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@FEW
@given(st.integers(0, 2**31), st.integers(0, 4), st.integers(4, 9))
def test_random_crop_is_a_window_of_the_padded_image(seed, padding, side):
    x = torch.randn(5, 3, side, side, generator=_gen(seed))
    fill = torch.tensor([-1.0, -2.0, -3.0])
    out = random_crop(x, side, padding, fill, _gen(seed))
    padded = torch.cat([F.pad(x[:, c : c + 1], (padding,) * 4, value=float(fill[c]))
                        for c in range(3)], 1)
    for n in range(5):
        windows = [padded[n, :, i : i + side, j : j + side]
                   for i in range(2 * padding + 1) for j in range(2 * padding + 1)]
        assert any(torch.equal(out[n], w) for w in windows)
    assert torch.equal(out, random_crop(x, side, padding, fill, _gen(seed)))


def test_padding_with_normalised_black_is_padding_the_raw_image_with_zeros():
    aug = CifarAugment(mean=(0.4, 0.5, 0.6), std=(0.2, 0.25, 0.3))
    raw = torch.rand(4, 3, 32, 32, generator=_gen(0))
    m, s = torch.tensor(aug.mean).view(1, 3, 1, 1), torch.tensor(aug.std).view(1, 3, 1, 1)
    black = -torch.tensor(aug.mean) / torch.tensor(aug.std)
    ours = random_crop((raw - m) / s, 32, 4, black, _gen(5))
    theirs = (random_crop(raw, 32, 4, torch.zeros(3), _gen(5)) - m) / s
    assert torch.allclose(ours, theirs, atol=1e-5)


@FEW
@given(st.integers(0, 2**31))
def test_flip_mirrors_about_half_the_images_and_their_pixel_labels(seed):
    x = torch.randn(64, 2, 3, 5, generator=_gen(seed))
    y = torch.randint(0, 4, (64, 3, 5), generator=_gen(seed + 1))
    fx, fy = hflip(x, _gen(seed), y=y)
    flipped = [not torch.equal(fx[i], x[i]) for i in range(64)]
    for i in range(64):
        assert torch.equal(fx[i], x[i].flip(-1) if flipped[i] else x[i])
        assert torch.equal(fy[i], y[i].flip(-1) if flipped[i] else y[i])
    assert 10 < sum(flipped) < 54


@FEW
@given(st.integers(0, 2**31), st.integers(1, 16))
def test_cutout_zeroes_one_clipped_square(seed, length):
    x = torch.ones(8, 3, 16, 16)
    out = cutout(x, length, _gen(seed))
    for img in out:
        hole = img[0] == 0
        assert torch.equal(hole, (img == 0).all(0))  # every channel
        rows, cols = hole.any(1).nonzero().flatten(), hole.any(0).nonzero().flatten()
        assert 1 <= len(rows) <= length and 1 <= len(cols) <= length
        assert hole.sum() == len(rows) * len(cols)  # a rectangle
        assert len(rows) == length or rows.min() == 0 or rows.max() == 15


def test_cifar_augmentation_crops_flips_and_cuts_out_only_when_retraining():
    aug = CifarAugment(mean=(0.5,) * 3, std=(0.25,) * 3)
    x = torch.randn(16, 3, 32, 32, generator=_gen(0)) + 10
    y = torch.arange(16)
    a, ya = aug(x, y, _gen(1))
    r, _ = aug(x, y, _gen(1), retrain=True)
    assert a.shape == x.shape and torch.equal(ya, y) and not torch.equal(a, x)
    assert (a == 0).sum() == 0 and (r == 0).sum() > 0
    assert torch.equal(a, aug(x, y, _gen(1))[0])


@FEW
@given(st.integers(1, 600), st.integers(1, 600), st.integers(0, 2**31))
def test_random_resized_crops_lie_inside_the_image(w, h, seed):
    left, top, cw, ch = resized_crop_box(w, h, _gen(seed))
    assert 0 <= left and 0 <= top and 0 < cw and 0 < ch
    assert left + cw <= w and top + ch <= h


# ---- batches -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cifar(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar")
    write_cifar10(root, per_class=2)
    return load_data("cifar10", data_dir=root)


def test_unaugmented_batches_are_those_of_epochs_of_and_cycler(cifar):
    x, y = cifar.train_a
    ours = list(batches(cifar, "train_a", 8, seed=3, epoch=2, stream=0, start=1, augment=False))
    theirs = list(epochs_of(x, y, 8, 3, 2, stream=0, start=1))
    assert [i for i, _ in ours] == [i for i, _ in theirs] == list(range(1, 7))
    for (_, (a, b)), (_, (c, d)) in zip(ours, theirs):
        assert torch.equal(a, c) and torch.equal(b, d)
    cyc = Cycler(*cifar.train_b, 8, 3, 2, stream=1)
    got = list(cycled(cifar, "train_b", 8, seed=3, epoch=2, stream=1, start=4, stop=15,
                      augment=False))
    assert len(got) == 11
    for i, (a, b) in zip(range(4, 15), got):
        assert torch.equal(a, cyc[i][0]) and torch.equal(b, cyc[i][1])


def test_the_time_waiting_for_data_is_counted(cifar):
    timings = {"search_s": 1.0}
    n = len(list(batches(cifar, "train_a", 8, seed=0, epoch=0, stream=0, timings=timings)))
    m = len(list(cycled(cifar, "train_b", 8, seed=0, epoch=0, stream=1, start=0, stop=n,
                        timings=timings)))
    assert n == m == 7 and timings["data_s"] > 0 and timings["search_s"] == 1.0


def test_augmented_batches_are_reproducible_per_position(cifar):
    one = dict(batches(cifar, "train_a", 8, seed=0, epoch=1, stream=0))
    resumed = dict(batches(cifar, "train_a", 8, seed=0, epoch=1, stream=0, start=3))
    plain = dict(batches(cifar, "train_a", 8, seed=0, epoch=1, stream=0, augment=False))
    for i in range(3, 7):
        assert torch.equal(one[i][0], resumed[i][0])
        assert torch.equal(one[i][1], plain[i][1]) and not torch.equal(one[i][0], plain[i][0])
    other = dict(batches(cifar, "train_a", 8, seed=0, epoch=2, stream=0))
    assert not torch.equal(other[3][0], one[3][0])


def test_streamed_batches_are_the_same_with_and_without_workers(tmp_path):
    write_imagenet(tmp_path, train=4, val=2)
    s = load_data("imagenet", data_dir=tmp_path, size=16)
    kw = dict(seed=1, epoch=0, stream=0)
    main = list(batches(s, "train_a", 4, workers=0, **kw))
    workers = list(batches(s, "train_a", 4, workers=1, **kw))
    again = list(batches(s, "train_a", 4, workers=1, **kw))  # the persistent workers serve it
    assert len(main) == 2
    for (i, (a, b)), (j, (c, d)), (_, (e, _)) in zip(main, workers, again):
        assert i == j and torch.equal(a, c) and torch.equal(b, d) and torch.equal(a, e)
        assert a.shape[1:] == (3, 16, 16)
    # unaugmented, a streamed batch is the lazy view's rows in the order of epochs_of
    x, y = s.train_a
    (_, (a, b)), = list(batches(s, "train_a", 8, augment=False, workers=0, **kw))
    (_, (xx, yy)), = list(epochs_of(x, y, 8, 1, 0, stream=0))
    assert torch.equal(b, yy) and torch.allclose(a, xx)
    ev = list(evaluation(s, "test", 4, workers=0))
    assert torch.allclose(torch.cat([e[0] for e in ev]), s.test[0][0:len(s.test[1])])


def test_streamed_segmentation_batches_crop_images_and_labels(tmp_path):
    write_cityscapes(tmp_path, train=("aachen", 4), size=(16, 32))
    s = load_data("cityscapes", data_dir=tmp_path, size=(16, 32), crop=(8, 12))
    (i, (x, y)), = list(batches(s, "train_a", 4, seed=0, epoch=0, stream=0, workers=0))
    assert x.shape == (2, 3, 8, 12) and y.shape == (2, 8, 12) and y.dtype == torch.long
    ((xt, yt),) = list(evaluation(s, "test", 8, workers=0))
    assert xt.shape == (2, 3, 16, 32) and yt.shape == (2, 16, 32)


def test_accuracy_leaves_out_ignored_pixels(tmp_path):
    from nasc.search.data import IGNORE
    from nasc.search.datasets import accuracy

    write_cityscapes(tmp_path, size=(16, 32))
    s = load_data("cityscapes", data_dir=tmp_path, size=(16, 32))

    class Road(torch.nn.Module):  # predicts class 0 (road) everywhere
        def forward(self, x):
            out = torch.zeros(len(x), 19, *x.shape[2:])
            out[:, 0] = 1
            return out

    y = s.test[1][0:2]
    expect = float((y == 0).sum()) / float((y != IGNORE).sum())
    assert accuracy(Road(), s, "test", workers=0) == pytest.approx(expect)
