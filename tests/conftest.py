"""Shared test settings: a hypothesis profile sized for CI's two cores, and one torch thread
for the modules whose tensors are tiny (``one_thread``, ``one_thread_module``)."""

import contextlib
import os

import pytest
import torch
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.register_profile("dev", deadline=None, max_examples=50)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@contextlib.contextmanager
def _torch_threads(n: int):
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture
def one_thread():
    """One intra-op thread for a test: tiny tensors only pay synchronisation for more, two
    threads contend with other processes on a shared two-core machine, and runs are
    bit-identical only with a fixed thread count."""
    with _torch_threads(1):
        yield


@pytest.fixture(scope="module")
def one_thread_module():
    """``one_thread`` for every test of a module
    (``pytestmark = pytest.mark.usefixtures("one_thread_module")``)."""
    with _torch_threads(1):
        yield
