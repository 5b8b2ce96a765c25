"""Built-in data sets, all offline and real.

``digits``: scikit-learn's bundled handwritten digits (1,797 real 8x8 scans of the UCI
optical-recognition set; no download). Splits are stratified and fixed by a seed: 20 % test,
and the rest halved into ``train_a`` (weights) and ``train_b`` (architecture), the bilevel
split of DARTS and DCNAS (§3.4: trainA/trainB).
"""

from __future__ import annotations

import attrs
import torch


@attrs.frozen(kw_only=True)
class Splits:
    """Tensors of one data set: images N x C x H x W (float) and labels N (long)."""

    name: str
    classes: int
    in_channels: int
    train_a: tuple[torch.Tensor, torch.Tensor]
    train_b: tuple[torch.Tensor, torch.Tensor]
    test: tuple[torch.Tensor, torch.Tensor]

    @property
    def train(self) -> tuple[torch.Tensor, torch.Tensor]:
        """trainA and trainB together (retraining a derived network uses both)."""
        return (
            torch.cat([self.train_a[0], self.train_b[0]]),
            torch.cat([self.train_a[1], self.train_b[1]]),
        )


def digits(seed: int = 0) -> Splits:
    """scikit-learn's digits, scaled to [0, 1], mean-centred per pixel on the training data."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(d.target, dtype=torch.long)
    idx = list(range(len(y)))
    rest, test = train_test_split(idx, test_size=0.2, random_state=seed, stratify=d.target)
    a, b = train_test_split(
        rest, test_size=0.5, random_state=seed, stratify=[int(d.target[i]) for i in rest]
    )
    mean = x[rest].mean(dim=0, keepdim=True)
    x = x - mean
    pick = lambda ids: (x[ids], y[ids])  # noqa: E731
    return Splits(
        name="digits", classes=10, in_channels=1, train_a=pick(a), train_b=pick(b), test=pick(test)
    )


DATASETS = {"digits": digits}


def load_data(name: str, seed: int = 0) -> Splits:
    if name not in DATASETS:
        raise ValueError(f"no data set {name!r}; built in: {', '.join(sorted(DATASETS))}")
    return DATASETS[name](seed)
