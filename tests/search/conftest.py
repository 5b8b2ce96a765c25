"""Fixtures of the search tests (``one_thread`` is in tests/conftest.py: results are
bit-identical only with a fixed thread count), ``same_run`` (two run directories hold the same
result) and ``foreign_default_device`` (device placement checked without a GPU)."""

import contextlib
import json
from pathlib import Path

import pytest
import torch

from nasc.search.training import load_checkpoint


def _same_run(a: Path, b: Path) -> None:
    """Two run directories hold the same result: files, metrics and every weight."""
    assert (a / "architecture.json").read_text() == (b / "architecture.json").read_text()
    ra, rb = (json.loads((d / "report.json").read_text()) for d in (a, b))
    for r in (ra, rb):
        r.pop("timings")
    assert ra == rb
    assert (a / "metrics.jsonl").read_text() == (b / "metrics.jsonl").read_text()
    ca, cb = load_checkpoint(a / "checkpoint.pt"), load_checkpoint(b / "checkpoint.pt")
    for key in ("supernet", "model"):
        if key in ca or key in cb:
            assert ca[key].keys() == cb[key].keys()
            for name in ca[key]:
                assert torch.equal(ca[key][name], cb[key][name]), (key, name)


@pytest.fixture
def same_run():
    return _same_run


@contextlib.contextmanager
def _foreign_default_device():
    """PyTorch's default device is the meta device inside the block. A run on an explicit
    device (``device="cpu"``) that creates a tensor without naming its device gets a meta
    tensor, and the first operation mixing it with the run's tensors fails: what a CUDA run
    does with a stray CPU tensor. So the device handling of every phase is tested on machines
    without a GPU."""
    torch.set_default_device("meta")
    try:
        yield
    finally:
        torch.set_default_device(None)


@pytest.fixture
def foreign_default_device():
    return _foreign_default_device
