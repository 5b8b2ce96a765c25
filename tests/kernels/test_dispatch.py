"""``NASC_KERNELS`` read at call time: auto, triton and torch, and the clear errors."""

import subprocess
import sys

import pytest
import torch
from nasc.backends.triton import dispatch
from nasc.backends.triton.layout import KernelError


@pytest.fixture
def calls(monkeypatch):
    """The kernel modules the dispatch loads, in call order."""
    seen = []
    load = dispatch._kernels

    def spy(name):
        seen.append(name)
        return load(name)

    monkeypatch.setattr(dispatch, "_kernels", spy)
    return seen


def test_auto_runs_the_torch_path_on_the_cpu(kernels_mode, calls):
    kernels_mode("auto")
    x = torch.randn(1, 2, 3, 3)
    assert not dispatch.use_triton(x)
    torch.testing.assert_close(dispatch.weighted_sum(torch.tensor([0.5, 2.0]), [x, x]), 2.5 * x)
    assert calls == []


def test_unset_means_auto(monkeypatch):
    monkeypatch.delenv("NASC_KERNELS", raising=False)
    assert dispatch.kernels_mode() == "auto"
    assert not dispatch.use_triton(torch.randn(2))


def test_the_setting_is_read_at_every_call(kernels_mode, calls):
    w, xs = torch.tensor([1.0, -1.0]), [torch.randn(1, 2, 2, 2), torch.randn(1, 2, 2, 2)]
    kernels_mode("torch")
    a = dispatch.weighted_sum(w, xs)
    kernels_mode("triton")
    b = dispatch.weighted_sum(w, xs)
    kernels_mode("torch")
    c = dispatch.weighted_sum(w, xs)
    assert calls == ["mixture", "mixture"]  # (the second: the interpreter check)
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a, c)


def test_torch_never_loads_a_kernel(kernels_mode, calls):
    kernels_mode("torch")
    x = torch.randn(1, 4, 2, 2)
    assert not dispatch.use_triton(x)
    dispatch.weighted_concat(torch.ones(2), [x, x])
    assert calls == []


def test_an_unknown_setting_is_a_clear_error(kernels_mode):
    kernels_mode("cuda")
    with pytest.raises(KernelError, match="NASC_KERNELS='cuda'.*auto, triton, torch"):
        dispatch.weighted_sum(torch.ones(1), [torch.ones(2)])


def test_triton_on_the_cpu_without_the_interpreter_is_a_clear_error(kernels_mode, monkeypatch):
    kernels_mode("triton")
    monkeypatch.delenv("TRITON_INTERPRET")
    with pytest.raises(KernelError, match="needs Triton's interpreter: set TRITON_INTERPRET=1"):
        dispatch.weighted_sum(torch.ones(1), [torch.ones(2)])


def test_triton_without_triton_is_a_clear_error(kernels_mode, monkeypatch):
    kernels_mode("triton")
    monkeypatch.setitem(sys.modules, "triton", None)  # import triton raises ImportError
    with pytest.raises(KernelError, match="triton cannot be imported"):
        dispatch.use_triton(torch.ones(2))
    kernels_mode("auto")
    assert not dispatch.use_triton(torch.ones(2))


def test_kernels_defined_without_the_interpreter_are_a_clear_error_on_the_cpu():
    code = (
        "import os, torch\n"
        "os.environ.pop('TRITON_INTERPRET', None)\n"
        "import nasc.backends.triton.mixture\n"  # defined for a GPU
        "os.environ.update(TRITON_INTERPRET='1', NASC_KERNELS='triton')\n"
        "from nasc.backends.triton import dispatch\n"
        "try:\n"
        "    dispatch.weighted_sum(torch.ones(1), [torch.ones(2)])\n"
        "except dispatch.KernelError as e:\n"
        "    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert "defined without TRITON_INTERPRET=1" in out.stdout, out.stderr


def test_fx_proxies_take_the_torch_path(kernels_mode):
    kernels_mode("triton")
    from nasc.backends.torch.ops import PartialMerge

    gm = torch.fx.symbolic_trace(PartialMerge(2, 4, 2, True))
    mix, x = torch.randn(1, 2, 2, 2), torch.randn(1, 8, 4, 4)
    kernels_mode("torch")
    torch.testing.assert_close(gm(mix, x), PartialMerge(2, 4, 2, True)(mix, x))
