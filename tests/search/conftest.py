"""Fixtures of the search tests (``one_thread`` is in tests/conftest.py: results are
bit-identical only with a fixed thread count) and ``same_run`` (two run
directories hold the same result)."""

import json
from pathlib import Path

import pytest
import torch

from nasc.training import load_checkpoint


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
