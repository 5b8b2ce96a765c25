"""A tiny subsample of the digits, for fast search tests (also loaded as ``file.py:tiny``)."""

from nasc.search.data import Splits, digits


def tiny(seed: int = 0, n: int = 96) -> Splits:
    """The first ``n`` images of trainA and trainB and ``n // 2`` of the test split."""
    d = digits(seed)
    cut = lambda pair, k: (pair[0][:k], pair[1][:k])  # noqa: E731
    return Splits(name="tiny-digits", classes=10, in_channels=1, train_a=cut(d.train_a, n),
                  train_b=cut(d.train_b, n), test=cut(d.test, n // 2))


def cached(seed: int = 0) -> Splits:
    """``tiny`` from the file ``$NASC_TINY_DATA`` (saved by the test): a subprocess spares
    itself scikit-learn's import."""
    import os

    import torch

    return Splits(**torch.load(os.environ["NASC_TINY_DATA"]))


def save_tiny(path, seed: int = 0) -> None:
    import torch

    s = tiny(seed)
    torch.save({"name": s.name, "classes": s.classes, "in_channels": s.in_channels,
                "train_a": s.train_a, "train_b": s.train_b, "test": s.test}, path)
