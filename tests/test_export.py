"""``nasc export``: standalone PyTorch files, ONNX, resolved .nas; torch.export on the networks."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from nasc.backends.torch.library import default_library
from torch import nn, sigmoid

import nasc
from nasc.cli import main
from nasc.export import ExportError, export, load_target, python_source

# the standalone file may import these and nothing else
_ALLOWED_IMPORTS = {"__future__", "torch", "torch.nn", "torch.nn.functional", "math", "operator"}


def _randomize_bn(net: nn.Module, seed: int = 0) -> None:
    """Non-trivial BN statistics and affine parameters, so that eval outputs depend on them."""
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d) and m.track_running_stats:
            m.running_mean.copy_(torch.rand(m.num_features, generator=g) * 0.2 - 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            if m.affine:
                m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)


def _imports(text: str) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            out.add(node.module)
    return out


# Runs in a fresh interpreter (-I: no PYTHONPATH, no user site, cwd not on sys.path) where
# importing nasc fails, so the files cannot lean on it; one interpreter checks several files.
_RUNNER = textwrap.dedent("""
    import importlib.util, sys
    sys.modules["nasc"] = None  # any 'import nasc' now raises ImportError
    import torch
    for name in sys.argv[1:]:
        spec = importlib.util.spec_from_file_location(name, f"{name}.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        data = torch.load(f"{name}.pt")
        net = getattr(mod, data["class_name"])()
        net.load_state_dict(data["state"], strict=True)
        net.eval()
        with torch.no_grad():
            out = net(*data["inputs"])
        # another process may reduce in another order (threads): equal to float rounding; the
        # exporter itself checks bit-identical outputs within one process
        torch.testing.assert_close(out, data["output"], rtol=1e-5, atol=1e-6, msg=name)
        print(name, sum(p.numel() for p in net.parameters()))
""")


def _run_standalone(tmp_path: Path, files: dict[str, tuple[str, nn.Module, tuple]],
                    class_name: str = "Network") -> None:
    """Write each (text, net, inputs) as NAME.py + NAME.pt and check them in a fresh
    interpreter: strict state-dict loading and the same eval outputs."""
    want = []
    for name, (text, net, inputs) in files.items():
        assert _imports(text) <= _ALLOWED_IMPORTS, _imports(text)
        assert "import nasc" not in text and "from nasc" not in text
        (tmp_path / f"{name}.py").write_text(text)
        net.eval()
        with torch.no_grad():
            output = net(*inputs)
        torch.save({"state": net.state_dict(), "inputs": inputs, "output": output,
                    "class_name": class_name}, tmp_path / f"{name}.pt")
        want += [name, str(sum(p.numel() for p in net.parameters()))]
    res = subprocess.run([sys.executable, "-I", "-c", _RUNNER, *files], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == want


def _darts_small():
    arch = nasc.Architecture.load("darts_v2")
    space = nasc.load("darts", **{**arch.params, "C": 4, "layers": 3})
    return space, space.canonical(arch)


def _nb201():
    space = nasc.load("nas_bench_201", C=8, N=1)
    return space, space.sample(0)


def _proxyless():
    space = nasc.load("proxylessnas", stem=8, first=8, stages=[[8, 2, 2], [16, 2, 1]], last=32,
                      classes=5)
    return space, space.sample(1)


def _dcnas():
    space = nasc.load("dcnas", L=1, F=8, classes=3)
    return space, space.sample(0)


def test_python_export_runs_standalone_with_the_same_weights_and_outputs(tmp_path):
    """DARTS (custom DARTS op classes), NAS-Bench-201 (Zero), ProxylessNAS (InvertedResidual),
    DCNAS (SE, h-swish, alignment), and a user op with a module-level helper."""
    files = {}
    for name, make in (("darts_v2", _darts_small), ("nas_bench_201", _nb201),
                       ("proxylessnas", _proxyless), ("dcnas", _dcnas)):
        space, arch = make()
        torch.manual_seed(0)
        net = nasc.instantiate(space, arch)
        _randomize_bn(net)
        files[name] = (export(space, arch, "python"), net, (torch.randn(2, 3, 32, 32),))
    space, arch, lib = _user_op_space()
    net = nasc.instantiate(space, arch, library=lib)
    with torch.no_grad():
        net.half_conv_1.gain.uniform_(0.5, 1.5)
        net.half_conv_1.shift.uniform_(-1, 1)
        net.half_conv_1.norms[0].weight.uniform_(0.5, 1.5)
    text = export(space, arch, "python", library=lib)
    assert "def _halve" in text and "_SCALE = 0.5" in text and "offset = 0.25" in text
    assert "from torch import sigmoid" in text and "@staticmethod" in text
    assert "nn.GroupNorm," in text and "constants={'pos'" in text
    files["user_op"] = (text, net, (torch.randn(2, 3, 8, 8),))
    _run_standalone(tmp_path, files)


def test_python_export_writes_the_file_and_names_the_class(tmp_path):
    space, arch = _darts_small()
    out = tmp_path / "net.py"
    text = export(space, arch, "python", out, class_name="DartsV2")
    assert out.read_text() == text
    assert "class DartsV2(nn.Module):" in text
    assert "'sep_conv_3x3'" in text  # the header records the architecture
    with pytest.raises(ExportError, match="class name"):
        export(space, arch, "python", class_name="not a name")


# A user op registered from Python: its module uses a module-level helper and constant, which
# the exported file must carry along.
_SCALE = 0.5


def _halve(x: torch.Tensor) -> torch.Tensor:
    return x * _SCALE


class HalfConv(nn.Module):
    offset = 0.25  # a class constant

    def __init__(self, c_in: int, c: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c, 3, padding=1)
        self.gain = nn.Parameter(torch.ones(c, 1, 1))
        self.register_buffer("shift", torch.zeros(c, 1, 1))
        # a non-persistent buffer (in no state dict: its values go into the file), a torch
        # layer without a constructor rule (GroupNorm) and a ModuleList
        self.register_buffer("pos", torch.linspace(-1, 1, c).view(c, 1, 1), persistent=False)
        self.norms = nn.ModuleList([nn.GroupNorm(2, c), nn.Identity()])
        self.c = c

    @staticmethod
    def gate(x: torch.Tensor) -> torch.Tensor:
        return sigmoid(x[:, :1])  # a torch builtin imported by name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = _halve(self.conv(x)) * self.gain + self.shift + self.offset * self.gate(x)
        for norm in self.norms:
            y = norm(y)
        return y + self.pos


def _user_op_space():
    spec = nasc.declare_op("op half_conv(x: image, C: int) -> image(C, x.stride)")
    space = nasc.parse(
        "import nn\nspace s() { input x: image(3)\n"
        "  output choose [half_conv, conv2d[k=1]] @\"op\" (x, 4) }",
        ops=[spec],
    )
    lib = default_library().extended({"half_conv": lambda c: HalfConv(c.c_in, c.params["C"])})
    return space, {"op": "half_conv"}, lib


def test_python_source_refuses_what_it_cannot_copy():
    class Holder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fn = torch.sigmoid  # not a plain value

        def forward(self, x):
            return self.fn(x)

    class Tracer(torch.fx.Tracer):
        def is_leaf_module(self, m, name):
            return isinstance(m, Holder) or super().is_leaf_module(m, name)

    class Wrap(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.h = Holder()

        def forward(self, x):
            return self.h(x)

    root = Wrap()
    gm = torch.fx.GraphModule(root, Tracer().trace(root))
    with pytest.raises(ExportError, match="attribute 'fn'"):
        python_source(gm)


def test_python_source_checks_what_it_writes(monkeypatch):
    """A wrong constructor rule (depthwise convs written without their groups) is caught
    before the file is returned."""
    from nasc import pysource as ex

    space, arch = _nb201()
    net = nasc.instantiate(space, arch)
    monkeypatch.setitem(ex._TORCH_LAYERS, nn.Conv2d, lambda m: (
        f"nn.Conv2d({m.in_channels}, {m.out_channels}, {m.kernel_size[0]}, bias=False)"))
    with pytest.raises(ExportError, match="differently"):
        python_source(net)


# ---- .nas ------------------------------------------------------------------------------------
def test_nas_export_is_the_resolved_space(tmp_path):
    space, arch = _darts_small()
    text = export(space, arch, "nas", tmp_path / "net.nas")
    assert (tmp_path / "net.nas").read_text() == text == space.resolve(arch).to_nas()
    again = nasc.parse(text, file="net.nas")
    assert not again.specs
    n = sum(p.numel() for p in nasc.instantiate(again).parameters())
    assert n == sum(p.numel() for p in nasc.instantiate(space, arch).parameters())


# ---- ONNX ------------------------------------------------------------------------------------
def test_onnx_export_passes_the_checker_and_computes_the_same(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx.reference import ReferenceEvaluator

    space = nasc.load("nas_bench_201", C=8, N=1)
    arch = space.sample(2)
    torch.manual_seed(0)
    net = nasc.instantiate(space, arch)
    _randomize_bn(net)
    path = export(space, arch, "onnx", tmp_path / "net.onnx", input_size=(16, 16),
                  weights=net.state_dict())
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    assert [i.name for i in model.graph.input] == ["input"]
    x = torch.randn(3, 3, 16, 16)  # another batch size than the trace's: the batch is dynamic
    (got,) = ReferenceEvaluator(model).run(None, {"input": x.numpy()})
    with torch.no_grad():
        want = net.eval()(x)
    torch.testing.assert_close(torch.from_numpy(got), want, rtol=1e-4, atol=1e-4)


def test_onnx_export_without_onnx_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    space = nasc.load("nas_bench_201", C=8, N=1)
    with pytest.raises(ExportError, match=r"pip install 'nasc\[onnx\]'"):
        export(space, space.sample(0), "onnx", tmp_path / "x.onnx")


def test_onnx_export_needs_a_path():
    space = nasc.load("nas_bench_201", C=8, N=1)
    with pytest.raises(ExportError, match="output path"):
        export(space, space.sample(0), "onnx")


# ---- what ARCH is ----------------------------------------------------------------------------
def test_load_target_stdlib_architecture_and_overrides():
    space, arch = load_target("darts_v2", params={"C": 4, "layers": 3})
    assert space.name == "darts" and space.params["C"] == 4 and arch["normal.n3.op2"]
    assert dict(arch) == dict(nasc.Architecture.load("darts_v2"))


def test_load_target_reads_a_run_directory(tmp_path):
    """What `nasc search` leaves: architecture.json (space and parameters recorded) and
    derived.nas (the resolved, choice-free space)."""
    space = nasc.load("nas_bench_201", C=8, N=1)
    arch = space.canonical(space.sample(4))
    arch.save(tmp_path / "architecture.json")
    (tmp_path / "derived.nas").write_text(space.resolve(arch).to_nas())
    sp, a = load_target(tmp_path / "architecture.json")
    assert a == arch and sp.params == space.params
    sp2, a2 = load_target(tmp_path / "derived.nas")
    assert a2 is None and not sp2.specs
    n = [sum(p.numel() for p in nasc.instantiate(s, x).parameters())
         for s, x in ((sp, a), (sp2, a2))]
    assert n[0] == n[1]


def test_load_target_choice_free_stdlib_space():
    space, arch = load_target("mobilenet_v2")
    assert arch is None and space.name == "mobilenet_v2"


@pytest.mark.parametrize("target,space,message", [
    ("darts", None, "has choices"),
    ("no_such_thing", None, "no stdlib architecture"),
    ("darts_v2", "nas_bench_201", "no parameter 'auxiliary'"),
    ("mobilenet_v2", "darts", "--space only goes with an architecture"),
])
def test_load_target_errors(target, space, message):
    with pytest.raises(nasc.NasError, match=message):
        load_target(target, space)


def test_load_target_architecture_without_space(tmp_path):
    nasc.Architecture({}).save(tmp_path / "a.json")
    with pytest.raises(ExportError, match="give one with --space"):
        load_target(tmp_path / "a.json")
    space, arch = load_target(tmp_path / "a.json", "mobilenet_v2")
    assert space.name == "mobilenet_v2" and len(arch) == 0


def test_unknown_format():
    with pytest.raises(ExportError, match="unknown export format"):
        export(nasc.load("mobilenet_v2"), None, "tflite")


# ---- the command line ------------------------------------------------------------------------
def test_cli_export_python_and_nas(tmp_path, capsys):
    out = tmp_path / "net.py"
    assert main(["export", "darts_v2", "--format", "python", "-D", "C=4", "-D", "layers=3",
                 "-o", str(out)]) == 0
    assert "class Network(nn.Module):" in out.read_text()
    assert f"wrote {out}" in capsys.readouterr().err
    assert main(["export", "darts_v2", "--space", "darts", "--format", "nas",
                 "-D", "C=4", "-D", "layers=3"]) == 0
    text = capsys.readouterr().out
    space, arch = _darts_small()
    assert text == space.resolve(arch).to_nas()


def test_cli_export_onnx_default_path(tmp_path, monkeypatch, capsys):
    pytest.importorskip("onnx")
    monkeypatch.chdir(tmp_path)
    assert main(["export", "nas_bench_201_all.json", "--format", "onnx"]) == 1
    assert "no architecture file" in capsys.readouterr().err
    space = nasc.load("nas_bench_201", C=8, N=1)
    space.canonical(space.sample(0)).save(tmp_path / "nb.json")
    assert main(["export", "nb.json", "--format", "onnx", "--input-size", "8", "8"]) == 0
    assert (tmp_path / "nb.onnx").stat().st_size > 0


def test_cli_export_errors_are_messages(capsys):
    assert main(["export", "darts", "--format", "python"]) == 1
    err = capsys.readouterr().err
    assert "has choices" in err and "Traceback" not in err


# ---- torch.export on instantiated networks ---------------------------------------------------
@pytest.mark.parametrize("name", ["darts_v2", "nas_bench_201"])
def test_torch_export_works_on_instantiated_networks(name):
    if name == "darts_v2":
        arch = nasc.Architecture.load("darts_v2")
        space = nasc.load("darts", **{**arch.params, "C": 4, "layers": 3})
    else:
        space = nasc.load("nas_bench_201", C=8, N=1)
        arch = space.sample(5)
    net = nasc.instantiate(space, arch).eval()
    x = torch.randn(2, 3, 32, 32)
    program = torch.export.export(net, (x,))
    with torch.no_grad():
        torch.testing.assert_close(program.module()(x), net(x))
