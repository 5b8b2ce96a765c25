"""The kernel tests run Triton's interpreter on the CPU: triton reads ``TRITON_INTERPRET`` when
a kernel is defined, so it is set here, before any test imports a kernel module (the dispatch
imports them at their first use)."""

import os
import sys
from pathlib import Path

import pytest

os.environ["TRITON_INTERPRET"] = "1"
sys.path.insert(0, str(Path(__file__).parent))

try:
    import triton  # noqa: F401
except ImportError:  # (triton is a Linux-only dependency)
    collect_ignore_glob = ["test_*.py"]


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_thread_module):
    """One torch thread: tiny tensors on a shared 2-core machine are slowest with more."""
    yield


@pytest.fixture
def kernels_mode(monkeypatch):
    """``kernels_mode("torch")`` sets ``NASC_KERNELS`` for the rest of the test."""
    return lambda mode: monkeypatch.setenv("NASC_KERNELS", mode)
