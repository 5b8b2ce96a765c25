"""oneDNN's AVX2 1x1 convolution corrupts memory in the weight gradient of a strided 1x1 conv
of an NHWC input with few channels (oneDNN issue 6035; ``backends/torch/conv.py``): nasc must
never issue that call. ``ONEDNN_MAX_CPU_ISA=AVX2`` makes any x86 CPU take the AVX2 kernels.

The guard runs one training step of every stdlib space (``onednn_worker.py``) in a process of
its own, so that a crash or a hang fails this test instead of ending the suite; the other
tests check the rule itself: which convs are built subsampled, that the two forms agree, and
that export and tracing keep working."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from nasc.backends.torch.conv import SubsampledConv2d, conv2d, make_conv2d
from nasc.export import python_source, to_onnx
from torch import nn

import nasc

pytestmark = pytest.mark.usefixtures("one_thread_module")  # tiny tensors

WORKER = Path(__file__).with_name("onednn_worker.py")
TIMEOUT = 600  # about 25 s of CPU time; a loaded 2-core machine may take several times that


def test_every_stdlib_space_trains_the_same_in_channels_last_under_avx2():
    env = {**os.environ, "ONEDNN_MAX_CPU_ISA": "AVX2", "OMP_NUM_THREADS": "1"}
    try:
        run = subprocess.run([sys.executable, str(WORKER)], env=env, capture_output=True,
                             text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else e.stdout or ""
        pytest.fail(f"hangs (no end in {TIMEOUT} s) after:\n{out[-2000:]}")
    lines = run.stdout.splitlines()
    assert run.returncode == 0, (
        f"exit code {run.returncode} in {lines[-1] if lines else 'the first case'}:\n"
        + "\n".join(line for line in lines if line.startswith("FAIL")) + run.stderr[-2000:])
    assert sum(line.startswith("ok ") for line in lines) >= 30


def test_the_guard_covers_every_stdlib_space():
    """A space added to the stdlib is added to the guard's cases (op libraries are not)."""
    import importlib.util
    import re

    import nasc.stdlib

    spec = importlib.util.spec_from_file_location("onednn_worker", WORKER)
    worker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(worker)
    spaces = {n for n in nasc.stdlib.names()
              if re.search(r"^space \w+", nasc.stdlib.path_of(n).read_text(), re.M)}
    assert spaces <= {case[0] for case in worker.CASES}


# ---- the rule ------------------------------------------------------------------------------
SPACES = [("darts", dict(C=8, layers=3, steps=2, multiplier=2), "pc-darts"),
          ("darts", dict(C=4, layers=3, steps=2, multiplier=2), "darts"),
          ("nas_bench_201", dict(C=4, N=1), "darts"),
          ("nasnet", dict(C=4, N=1, blocks=2), "darts"),
          ("auto_deeplab", dict(L=2, F=2, blocks=1, stem=2, classes=3), "darts"),
          ("dcnas", dict(L=1, F=8, classes=3), "dcnas"),
          ("hrnas", dict(stem=[4, 4], widths=[[4], [4, 8]], blocks=[[1], [1, 1]], head=[4, 8],
                         last=8, r=1, tokens=3, s=2, d=4, classes=3), "hrnas")]


def _strided_pointwise(model: nn.Module) -> list[str]:
    """The plain ``nn.Conv2d`` s of ``model`` with a 1x1 kernel and a stride > 1."""
    return [n for n, m in model.named_modules() if type(m) is nn.Conv2d
            and m.kernel_size == (1, 1) and m.stride != (1, 1)]


@pytest.mark.parametrize("name, params, method", SPACES)
def test_no_module_nasc_builds_runs_a_strided_1x1_conv(name, params, method):
    space = nasc.load(name, **params)
    options = {"edge_weights": "inputs"} if name == "auto_deeplab" else {}
    net = nasc.compile(space, method=method, device="meta", **options)
    subsampled = [m for m in net.modules() if isinstance(m, SubsampledConv2d)]
    assert _strided_pointwise(net) == []
    model = nasc.instantiate(space, space.sample(0), device="meta")
    assert _strided_pointwise(model) == []
    if name in ("darts", "nasnet", "hrnas"):  # FactorizedReduce; MixConv's strided residual
        assert subsampled


@settings(max_examples=25)
@given(cin=st.integers(1, 6), cout=st.integers(1, 6), stride=st.sampled_from([2, 3, (2, 1)]),
       padding=st.sampled_from([0, 1, (1, 0)]), groups=st.sampled_from([1, "depthwise"]),
       bias=st.booleans(), size=st.integers(1, 9), channels_last=st.booleans())
def test_a_subsampled_conv_computes_what_nn_conv2d_computes(cin, cout, stride, padding, groups,
                                                            bias, size, channels_last):
    if groups == "depthwise":
        groups, cout = cin, cin
    torch.manual_seed(0)
    ours = make_conv2d(cin, cout, 1, stride, padding, groups=groups, bias=bias)
    assert type(ours) is SubsampledConv2d
    ref = nn.Conv2d(cin, cout, 1, stride, padding, groups=groups, bias=bias)
    ref.load_state_dict(ours.state_dict())
    assert ours.state_dict().keys() == ref.state_dict().keys()
    x = torch.randn(2, cin, size, size + 1, dtype=torch.float64)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    ours, ref = ours.double(), ref.double()
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    ya, yb = ours(xa), ref(xb)
    torch.testing.assert_close(ya, yb)
    r = torch.randn(ya.shape, dtype=torch.float64)
    (ya * r).sum().backward()
    (yb * r).sum().backward()
    torch.testing.assert_close(xa.grad, xb.grad)
    for (name, p), q in zip(ours.named_parameters(), ref.parameters()):
        torch.testing.assert_close(p.grad, q.grad, msg=name)
    w = ours.weight.detach()
    torch.testing.assert_close(conv2d(x, w, None, stride, padding, groups=groups),
                               F.conv2d(x, w, None, stride, padding, groups=groups))


def test_only_strided_1x1_convs_are_subsampled():
    assert type(make_conv2d(4, 8, 1)) is nn.Conv2d
    assert type(make_conv2d(4, 8, 3, stride=2)) is nn.Conv2d
    assert type(make_conv2d(4, 8, (1, 7), stride=(1, 2))) is nn.Conv2d
    assert type(make_conv2d(4, 8, 1, stride=(1, 2))) is SubsampledConv2d
    assert type(make_conv2d(4, 8, (1, 1), stride=2, groups=4)) is SubsampledConv2d


# ---- export and tracing --------------------------------------------------------------------
NAS = """
import nn
space strided(C: int = 4) {
    input x: image(3)
    let y = conv2d(relu(conv2d(x, C, k=3)), 2 * C, k=1, stride=2)
    output linear(global_avg_pool(y), 5)
}
"""


def test_the_exported_file_keeps_the_subsampled_form_and_the_weights():
    space = nasc.parse(NAS, file="strided.nas")
    net = nasc.instantiate(space)
    assert [type(m) for m in net.modules()].count(SubsampledConv2d) == 1
    x = torch.randn(2, 3, 16, 16)
    src = python_source(net, inputs=(x,))  # (checks the outputs bit for bit)
    assert "SubsampledConv2d(4, 8, 1, stride=2, bias=False)" in src
    assert "class _Restored" not in src and "nasc" not in src.split('"""', 2)[2]
    scope: dict = {}
    exec(compile(src, "exported.py", "exec"), scope)  # noqa: S102 - the file under test
    copy = scope["Network"]()
    copy.load_state_dict(net.state_dict(), strict=True)
    assert _strided_pointwise(copy) == []
    copy = copy.to(memory_format=torch.channels_last)
    copy(x.contiguous(memory_format=torch.channels_last)).sum().backward()


def test_networks_with_subsampled_convs_trace_and_export(tmp_path):
    space = nasc.parse(NAS, file="strided.nas")
    net = nasc.instantiate(space).eval()
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        want = net(x)
        traced = torch.fx.symbolic_trace(net)
        torch.testing.assert_close(traced(x), want)
        program = torch.export.export(net, (x,))
        torch.testing.assert_close(program.module()(x), want)
    onnx = pytest.importorskip("onnx")
    from onnx.reference import ReferenceEvaluator

    path = to_onnx(net, (x,), tmp_path / "net.onnx")
    (got,) = ReferenceEvaluator(onnx.load(str(path))).run(None, {"input": x.numpy()})
    torch.testing.assert_close(torch.from_numpy(got), want, rtol=1e-4, atol=1e-5)
