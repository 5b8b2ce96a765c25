"""triton is an optional dependency (``nasc[gpu]``): the CPU path never imports it, and a GPU
run without it is told so once (``NASC_KERNELS=auto``) or stopped (``NASC_KERNELS=triton``)."""

import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from nasc.backends.triton import dispatch
from nasc.backends.triton.layout import KernelError

ROOT = Path(__file__).resolve().parents[2]


def test_triton_is_an_extra_not_a_dependency():
    tomllib = pytest.importorskip("tomllib")  # (Python 3.11+)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert not any(d.startswith("triton") for d in project["dependencies"])
    extras = project["optional-dependencies"]
    for extra in ("gpu", "test"):  # the test extra runs the kernels under the interpreter
        assert any(d.startswith("triton>=3.2") for d in extras[extra]), extra


def test_a_cpu_supernet_step_never_imports_triton():
    code = (
        "import sys, torch, nasc\n"
        "net = nasc.compile(nasc.load('nas_bench_201', N=1, C=4), method='darts')\n"
        "net(torch.randn(2, 3, 8, 8)).sum().backward()\n"
        "print('triton' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, env={"NASC_KERNELS": "auto", "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


@pytest.fixture
def no_triton(monkeypatch):
    monkeypatch.setitem(sys.modules, "triton", None)  # import triton raises ImportError


def test_auto_on_cuda_without_triton_warns_and_runs_the_torch_path(no_triton, monkeypatch):
    monkeypatch.setenv("NASC_KERNELS", "auto")
    with pytest.warns(dispatch.KernelFallbackWarning, match=r"pip install 'nasc\[gpu\]'"):
        assert dispatch._triton_or_warn() is False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not dispatch.use_triton(torch.ones(2))  # CPU tensors: no warning, torch path


def test_forcing_triton_without_it_is_a_clear_error(no_triton, monkeypatch):
    monkeypatch.setenv("NASC_KERNELS", "triton")
    with pytest.raises(KernelError, match=r"triton cannot be imported.*nasc\[gpu\]"):
        dispatch.use_triton(torch.ones(2))
