"""Exporting a discrete network: a standalone PyTorch file, ONNX, or the resolved ``.nas``.

``export(space, arch, format, path)`` writes the network that ``arch`` selects in ``space``:

* ``"nas"``: ``space.resolve(arch).to_nas()``, a choice-free ``.nas`` program.
* ``"python"``: one ``.py`` file (:func:`nasc.pysource.python_source`) that imports only
  ``torch`` (and ``math``/``operator`` where a copied helper does) and defines a class
  (``Network`` by default) building the same network as ``nasc.instantiate(space, arch)``, with
  the same submodule names, so that ``Network().load_state_dict(net.state_dict())`` works with
  ``strict=True`` and the two compute the same outputs. Its ``forward`` is the fx code of the
  instantiated ``GraphModule``. torch's common layers are written as constructor calls
  (``nn.Conv2d(16, 16, 3, padding=1, groups=16, bias=False)``; a strided 1x1 conv as
  ``SubsampledConv2d(...)``, its class copied as written from ``nasc.backends.torch.conv``),
  other torch modules are restored from their attributes by ``_restore``; every other module
  class (the op library's ``SepConv``, ``InvertedResidual``, ops registered from Python) is
  copied with its methods and class constants (found by :mod:`inspect`; the module-level
  helpers and constants they use, found by :mod:`ast`, come along) on a generic base
  ``_Restored`` that rebuilds an instance from its plain attributes, children and
  parameter/buffer shapes (non-persistent buffers are written out as values). The file is
  checked before it is returned: executed, loaded with the state dict, every torch layer
  compared with the original, and the outputs at an example input compared bit for bit.
* ``"onnx"``: ``torch.onnx.export`` of the instantiated network in eval mode at an example input
  of ``input_size`` (the ``onnx`` extra: ``pip install nasc[onnx]``), checked with
  ``onnx.checker``.

>>> import nasc
>>> from nasc.export import python_source
>>> space = nasc.load("nas_bench_201", N=1)
>>> src = python_source(nasc.instantiate(space, space.sample(0)))
>>> "import nasc" in src or "from nasc" in src
False
"""

from __future__ import annotations

import textwrap
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nasc.architecture import Architecture
from nasc.dsl.diagnostics import NasError
from nasc.pysource import ExportError, python_source
from nasc.space import Space

FORMATS = ("python", "onnx", "nas")



def export(
    space: Space,
    arch: Mapping[str, Any] | Architecture | None,
    format: str,  # noqa: A002 - the CLI's --format
    path: str | Path | None = None,
    *,
    input_size: tuple[int, int] = (32, 32),
    class_name: str = "Network",
    weights: Mapping[str, torch.Tensor] | None = None,
    library: Any = None,
) -> str | Path:
    """Export the network of ``arch`` in ``space`` (``arch=None`` for a choice-free space).

    Returns the text for ``"python"`` and ``"nas"`` (also written to ``path`` when given) and
    the written path for ``"onnx"`` (``path`` is required). ``weights`` (a state dict of the
    instantiated network) are loaded before an ONNX export; without them the ONNX file holds
    the fresh initialisation. ``library`` is the op library (``OpLibrary``) for ops
    registered from Python.
    """
    if format not in FORMATS:
        raise ExportError(f"unknown export format {format!r}; known: {', '.join(FORMATS)}")
    if format == "nas":
        resolved = space if arch is None else space.resolve(arch)
        text = resolved.to_nas()
        if path is not None:
            Path(path).write_text(text)
        return text
    from nasc.build import instantiate

    net = instantiate(space, arch, library=library)
    if format == "python":
        text = python_source(net, class_name=class_name, header=_header(space, arch),
                             inputs=example_inputs(space, input_size))
        if path is not None:
            Path(path).write_text(text)
        return text
    if path is None:
        raise ExportError("an ONNX export needs an output path")
    if weights is not None:
        net.load_state_dict(weights)
    return to_onnx(net, example_inputs(space, input_size), path)


def load_target(
    target: str | Path,
    space: str | Path | None = None,
    params: Mapping[str, Any] | None = None,
    *,
    entry: str | None = None,
) -> tuple[Space, Architecture | None]:
    """What ``nasc export ARCH`` exports: the space and the architecture (None when the space
    is choice-free).

    ``target`` is, in this order: an architecture ``.json`` file (a stdlib architecture file,
    ``nasc search``'s ``architecture.json``, ``Architecture.save``); a ``.nas`` file of a
    choice-free space (a run's ``derived.nas``); a stdlib architecture name (``darts_v2``); a
    choice-free stdlib space name (``mobilenet_v2``). The space of an architecture is
    ``space`` (a stdlib name or a ``.nas`` file) when given, else the stdlib space the
    architecture names, built with the architecture's parameters; ``params`` override them.
    """
    import nasc
    from nasc import stdlib
    from nasc.space import fit_architecture, locate, named_space

    text = str(target)
    path = Path(text)
    params = dict(params or {})
    extra = {"space": entry} if entry else {}
    if path.suffix == ".nas" or (path.is_file() and path.suffix != ".json"):
        if space is not None:
            raise ExportError(f"{text} is a space; --space only goes with an architecture")
        return _choice_free(nasc.load(locate(text, cli=True), **extra, **params), text), None
    if path.suffix == ".json" or path.is_file():
        if not path.exists():
            raise ExportError(f"no architecture file {text}")
        try:
            arch = Architecture.load(path)
        except ValueError as e:
            raise ExportError(f"{text}: {e}") from None
    else:
        try:
            arch = Architecture.load(text)
        except FileNotFoundError as e:
            if stdlib.path_of(text) is None:
                raise ExportError(f"{e.args[0]}; nor is {text!r} a stdlib space") from None
            if space is not None:
                raise ExportError(f"{text!r} is a space; --space only goes with an "
                                  "architecture") from None
            return _choice_free(nasc.load(text, **extra, **params), text), None
    try:
        where = named_space(arch.space, given=space, what=f"architecture {text}")
    except NasError as e:
        raise ExportError(e.message) from None
    sp = nasc.load(where, **extra, **{**arch.params, **params})
    return sp, fit_architecture(sp, arch, what=f"architecture {text}")


def _choice_free(sp: Space, what: str) -> Space:
    if sp.specs:
        raise ExportError(f"{what}: space {sp.name!r} has choices; export an architecture of "
                          f"it (an architecture .json with --space {what})")
    return sp


def _header(space: Space, arch: Mapping[str, Any] | None) -> str:
    lines = [f"The discrete network of space {space.name!r}"]
    if space.params:
        lines.append("space parameters: " + ", ".join(f"{k}={v!r}" for k, v in
                                                        sorted(space.params.items())))
    if arch:
        lines.append("architecture: " + ", ".join(f"{k}={v!r}" for k, v in sorted(arch.items())))
    return "\n".join(textwrap.fill(line, 96, subsequent_indent="    ") for line in lines)


def example_inputs(space: Space, input_size: tuple[int, int] = (32, 32)) -> tuple[torch.Tensor,
                                                                                  ...]:
    """One standard-normal tensor per input of ``space`` (seeded): batch 1, the input's
    channels and ``input_size`` for an image, ``(1, C)`` for a vector."""
    from nasc.ir.nodes import Input

    gen = torch.Generator().manual_seed(0)
    out = []
    for rec in space.graph.nodes_of(Input):
        ty = rec.type
        if not isinstance(ty.channels, int):
            raise ExportError(f"input {rec.name!r} has no fixed channel count ({ty})")
        layout = ty.layout.value
        if layout == "image":
            out.append(torch.randn(1, ty.channels, *input_size, generator=gen))
        elif layout == "vector":
            out.append(torch.randn(1, ty.channels, generator=gen))
        else:
            raise ExportError(f"input {rec.name!r} is {ty}: only image and vector inputs can be "
                              "traced for ONNX")
    return tuple(out)


# ---- ONNX ------------------------------------------------------------------------------------
def to_onnx(net: nn.Module, inputs: tuple[torch.Tensor, ...], path: str | Path, *,
            dynamo: bool = False) -> Path:
    """``torch.onnx.export`` of ``net`` (eval mode) at ``inputs``, checked by ``onnx.checker``.

    ``dynamo=False`` (the default) uses the TorchScript-based exporter, which needs only
    ``onnx``; ``dynamo=True`` the ``torch.export``-based one, which also needs ``onnxscript``.
    """
    try:
        import onnx
    except ImportError:
        raise ExportError(
            "ONNX export needs the 'onnx' package: pip install 'nasc[onnx]' (or pip install onnx)"
        ) from None
    path = Path(path)
    was_training = net.training
    net.eval()
    names = [f"input{i}" if len(inputs) > 1 else "input" for i in range(len(inputs))]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter
            warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\.onnx")
            torch.onnx.export(net, inputs, str(path), input_names=names,
                              output_names=["output"], dynamo=dynamo,
                              dynamic_axes={n: {0: "batch"} for n in names})
    except ModuleNotFoundError as e:
        raise ExportError(f"ONNX export needs the {e.name!r} package (pip install {e.name})"
                          ) from None
    finally:
        net.train(was_training)
    onnx.checker.check_model(onnx.load(str(path)))
    return path
