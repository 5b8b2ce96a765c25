"""The kernel tests run Triton's interpreter on the CPU: triton reads ``TRITON_INTERPRET`` when
a kernel is defined, so it is set here, before any test imports a kernel module (the dispatch
imports them at their first use)."""

import os
import sys
from pathlib import Path

import pytest
import torch

os.environ["TRITON_INTERPRET"] = "1"
sys.path.insert(0, str(Path(__file__).parent))

try:
    import triton  # noqa: F401
except ImportError:  # (triton is a Linux-only dependency)
    collect_ignore_glob = ["test_*.py"]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One torch thread: tiny tensors on a shared 2-core machine are slowest with more."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def kernels_mode(monkeypatch):
    """``kernels_mode("torch")`` sets ``NASC_KERNELS`` for the rest of the test."""
    return lambda mode: monkeypatch.setenv("NASC_KERNELS", mode)
