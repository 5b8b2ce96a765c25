"""Search tests run on one thread: results are bit-identical only with a fixed thread count,
and the CI machine's two cores are shared by parallel jobs."""

import pytest
import torch


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
