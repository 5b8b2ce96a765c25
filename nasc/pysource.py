"""The standalone Python file of a discrete network (``nasc export --format python``).

:func:`python_source` writes one ``.py`` file that imports only ``torch`` (and ``math`` /
``operator`` where a copied helper does) and defines a class building the same network as the
fx ``GraphModule`` it is given, with the same submodule names; see :mod:`nasc.export` for the
rules. The file is checked before it is returned: executed, loaded with the state dict, every
torch layer compared with the original, and the outputs at an example input compared bit for bit.
"""

from __future__ import annotations

import ast
import builtins
import inspect
import math
import textwrap
from collections.abc import Callable
from typing import Any

import torch
from torch import fx, nn

from nasc.backends.torch.conv import SubsampledConv2d
from nasc.dsl.diagnostics import NasError


class ExportError(NasError):
    """The network cannot be exported in the asked format."""


# ---- standalone Python -----------------------------------------------------------------------
_MODULE_INTERNALS = frozenset(nn.Module().__dict__)
_RESTORE = '''def _restore(cls: type, children: dict[str, nn.Module], attrs: dict, *,
             params: dict | None = None, buffers: dict | None = None,
             constants: dict | None = None) -> nn.Module:
    """A torch module rebuilt like a _Restored one, keeping torch's class (and forward)."""
    module = cls.__new__(cls)
    _Restored.__init__(module, children, attrs, params=params, buffers=buffers,
                       constants=constants)
    return module
'''
_MAX_CONSTANT = 65_536  # values of a non-persistent buffer written into the file

# The base of every copied module class: an instance is rebuilt from its children, its plain
# attributes and the shapes of its own parameters and buffers (their values come from the
# state dict; non-persistent buffers, which no state dict holds, are written out as values),
# so the copied classes need no constructor of their own.
_RESTORED = '''class _Restored(nn.Module):
    """A module rebuilt from its children, attributes and parameter/buffer shapes."""

    def __init__(self, children: dict[str, nn.Module], attrs: dict, *,
                 params: dict | None = None, buffers: dict | None = None,
                 constants: dict | None = None) -> None:
        nn.Module.__init__(self)  # (also called on torch classes by _restore)
        self.__dict__.update(attrs)
        for name, shape in (params or {}).items():
            p = None if shape is None else nn.Parameter(torch.empty(shape))
            self.register_parameter(name, p)
        for name, spec in (buffers or {}).items():
            b = None if spec is None else torch.empty(spec[0], dtype=getattr(torch, spec[1]))
            self.register_buffer(name, b)
        for name, (values, dtype) in (constants or {}).items():
            self.register_buffer(name, torch.tensor(values, dtype=getattr(torch, dtype)),
                                 persistent=False)
        for name, child in children.items():
            self.add_module(name, child)
'''


def python_source(net: fx.GraphModule, *, class_name: str = "Network", header: str = "",
                  inputs: tuple[torch.Tensor, ...] | None = None) -> str:
    """A standalone PyTorch file (imports only ``torch``) defining ``class_name``, which
    builds ``net`` with the same submodule names and the same forward.

    The file is checked before it is returned: executed, built, loaded with ``net``'s state
    dict (strict), its torch layers compared with ``net``'s and, given example ``inputs``, its
    eval-mode outputs compared with ``net``'s (bit for bit).
    """
    if not class_name.isidentifier() or class_name.startswith("_"):
        raise ExportError(f"{class_name!r} is not a public Python class name")
    if dict(net.named_parameters(recurse=False)) or dict(net.named_buffers(recurse=False)):
        raise ExportError("the network holds parameters of its own (get_attr); cannot export")
    w = _Writer()
    init = []
    for name, child in net.named_children():
        init.append(f"        self.{name} = {w.expr(child, indent=8)}")
    code = net.graph.python_code("self")
    forward = "\n".join(line.rstrip() for line in code.src.strip("\n").splitlines())
    for name in _free_names(ast.parse(forward)):
        if name in ("self", "torch") or hasattr(builtins, name):
            continue
        if name in ("inf", "nan"):
            w.imports.add(f"from math import {name}")
            continue
        raise ExportError(f"the network's forward uses {name!r}, which cannot be exported")
    body = "\n".join(init) if init else "        pass"
    network = (
        f"class {class_name}(nn.Module):\n"
        f"    def __init__(self) -> None:\n"
        f"        super().__init__()\n{body}\n\n"
        + textwrap.indent(forward, "    ")
        + "\n"
    )
    header = header.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    doc = '"""' + (header + "\n\n" if header else "") + (
        "Plain PyTorch, generated by `nasc export --format python`: load the instantiated\n"
        f"network's weights with {class_name}().load_state_dict(state_dict).\n"
    ) + '"""'
    parts = [doc, "from __future__ import annotations",
             "\n".join(sorted({"import torch", "from torch import nn", *w.imports},
                              key=lambda line: (line.startswith("from"), line)))]
    if any(d not in w.verbatim for d in w.definitions):  # (a verbatim class needs no _Restored)
        parts.append(_RESTORED)
    parts += w.definitions
    parts.append(network)
    parts.append(f'__all__ = ["{class_name}"]\n')
    parts = [part.strip("\n") for part in parts]
    text = "\n\n".join(parts[:3]) + "\n\n\n" + "\n\n\n".join(parts[3:]) + "\n"
    _check(text, class_name, net, inputs)
    return text


class _Writer:
    """Constructor expressions for module instances and the definitions they need."""

    def __init__(self) -> None:
        self.imports: set[str] = set()
        self.definitions: list[str] = []
        self.defined: dict[str, object] = {}  # name -> the object it defines
        self.verbatim: list[str] = []  # the definitions copied as written

    # -- expressions for instances --
    def expr(self, m: nn.Module, indent: int) -> str:
        cls = type(m)
        if cls in _TORCH_LAYERS:
            return _TORCH_LAYERS[cls](m)
        if cls is SubsampledConv2d:  # a strided 1x1 conv: its class comes along as written
            self._define_verbatim(cls)
            return _conv2d(m, cls.__name__)
        if cls is nn.Sequential:
            return self._container("nn.Sequential", list(m.children()), indent)
        if cls is nn.ModuleList:
            return self._container("nn.ModuleList", list(m.children()), indent, brackets="[]")
        if cls is nn.ModuleDict:
            return self._container("nn.ModuleDict", dict(m.named_children()), indent)
        if cls.__module__.startswith("torch."):
            return self._torch_generic(m, indent)
        if _forward_owner(cls) is nn.Sequential and not _own_methods(cls):
            # a Sequential subclass with nothing of its own (torchvision's Conv2dNormActivation)
            return self._container("nn.Sequential", list(m.children()), indent)
        self._define_class(cls)
        return self._custom(m, indent)

    def _container(self, ctor: str, children: list | dict, indent: int,
                   brackets: str = "") -> str:
        pad = " " * (indent + 4)
        if isinstance(children, dict):
            items = [f"{pad}{k!r}: {self.expr(c, indent + 4)}," for k, c in children.items()]
            brackets = "{}"
        else:
            items = [f"{pad}{self.expr(c, indent + 4)}," for c in children]
        if not items:
            return f"{ctor}()"
        open_, close = (brackets[0], brackets[1]) if brackets else ("", "")
        return f"{ctor}({open_}\n" + "\n".join(items) + "\n" + " " * indent + f"{close})"

    def _custom(self, m: nn.Module, indent: int) -> str:
        return f"{type(m).__name__}(\n" + self._state(m, indent)

    def _torch_generic(self, m: nn.Module, indent: int) -> str:
        """A torch module without a constructor rule, restored by ``_restore`` from its
        attributes, parameter and buffer shapes and children (its forward is torch's)."""
        cls = type(m)
        ref = (f"nn.{cls.__name__}" if getattr(nn, cls.__name__, None) is cls
               else f"{cls.__module__}.{cls.__qualname__}")
        if "_restore" not in self.defined:
            self.defined["_restore"] = _RESTORE
            self.definitions.append(_RESTORE)
        return f"_restore(\n{' ' * (indent + 4)}{ref},\n" + self._state(m, indent)

    def _state(self, m: nn.Module, indent: int) -> str:
        """Children, attributes, parameter/buffer shapes and fixed buffers of ``m`` as the
        arguments of ``_Restored``/``_restore``, closed by ``)``."""
        cls = type(m)
        attrs = {k: v for k, v in vars(m).items() if k not in _MODULE_INTERNALS}
        for k, v in attrs.items():
            if not _is_literal(v):
                raise ExportError(f"cannot export {cls.__name__}: attribute {k!r} is a "
                                  f"{type(v).__name__}, not a plain value")
        fixed = {}
        for k in sorted(m._non_persistent_buffers_set):
            b = m._buffers[k]
            if b is None or b.numel() > _MAX_CONSTANT:
                raise ExportError(f"cannot export {cls.__name__}: its non-persistent buffer "
                                  f"{k!r} is not a tensor of at most {_MAX_CONSTANT} values")
            fixed[k] = (b.tolist(), str(b.dtype).removeprefix("torch."))
        pad = " " * (indent + 4)
        children = dict(m.named_children())
        parts = []
        if children:
            items = [f"{pad}    {k!r}: {self.expr(c, indent + 8)}," for k, c in children.items()]
            parts.append("{\n" + "\n".join(items) + "\n" + pad + "}")
        else:
            parts.append("{}")
        parts.append(_dict_literal(attrs, indent + 4))
        params = {k: None if p is None else tuple(p.shape) for k, p in m._parameters.items()}
        bufs = {k: None if b is None else (tuple(b.shape), str(b.dtype).removeprefix("torch."))
                for k, b in m._buffers.items() if k not in fixed}
        if params or bufs:
            parts.append(f"params={params!r}")
            parts.append(f"buffers={bufs!r}")
        if fixed:
            parts.append(f"constants={fixed!r}")
        return ",\n".join(pad + p for p in parts) + "\n" + " " * indent + ")"

    # -- definitions --
    def _define_verbatim(self, cls: type) -> None:
        """``cls``'s own source, as written (a subclass of a torch layer that overrides its
        ``forward``: ``SubsampledConv2d``), with what its methods use."""
        if self.defined.get(cls.__name__) is cls:
            return
        if cls.__name__ in self.defined:
            raise ExportError(f"two exported objects are named {cls.__name__!r}")
        self.defined[cls.__name__] = cls
        for v in vars(cls).values():
            for fn in _method_functions(v):
                self._needs(fn, ast.parse(textwrap.dedent(inspect.getsource(fn))))
        self.verbatim.append(inspect.getsource(cls).rstrip("\n") + "\n")
        self.definitions.append(self.verbatim[-1])

    def _define_class(self, cls: type) -> None:
        if self.defined.get(cls.__name__) is cls:
            return
        if cls.__name__ in self.defined:
            raise ExportError(f"two exported objects are named {cls.__name__!r}")
        self.defined[cls.__name__] = cls
        methods: dict[str, list[Callable]] = {}
        constants: dict[str, object] = {}
        for klass in reversed(cls.__mro__):
            if klass.__module__.startswith("torch") or klass is object:
                continue
            for name, v in vars(klass).items():
                if name == "__init__" or (name.startswith("__") and name.endswith("__")
                                          and not inspect.isfunction(v)):
                    continue
                fns = _method_functions(v)
                if fns:
                    methods[name] = fns
                elif _is_literal(v):
                    constants[name] = v
                else:
                    raise ExportError(f"cannot export {cls.__name__}: class attribute {name!r} "
                                      f"is a {type(v).__name__}")
        if "forward" not in methods and _forward_owner(cls) is not nn.Module:
            owner = _forward_owner(cls)
            raise ExportError(f"cannot export {cls.__name__}: it takes its forward from "
                              f"{owner.__module__}.{owner.__name__}")
        sources = [f"    {k} = {v!r}" for k, v in constants.items()]
        for fns in methods.values():
            for fn in fns:
                src = textwrap.dedent(inspect.getsource(fn))
                self._needs(fn, ast.parse(src))
                sources.append(textwrap.indent(src.rstrip("\n"), "    "))
        doc = vars(cls).get("__doc__")  # its own, not nn.Module's
        head = f"class {cls.__name__}(_Restored):\n"
        if doc:
            doc = inspect.cleandoc(doc).replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
            head += textwrap.indent(f'"""{doc}"""', "    ") + "\n\n"
        self.definitions.append(head + "\n\n".join(sources) + "\n")

    def _needs(self, fn: Callable, tree: ast.AST) -> None:
        """Imports and definitions for the free names of ``fn``'s source."""
        scope = getattr(fn, "__globals__", {})
        for name in _free_names(tree):
            if name == "self" or hasattr(builtins, name) and name not in scope:
                continue
            if name not in scope:
                raise ExportError(f"cannot export {fn.__qualname__}: unknown name {name!r}")
            self._global(name, scope[name], fn)

    def _global(self, name: str, value: object, user: Callable) -> None:
        if inspect.ismodule(value):
            mod = value.__name__
            if mod == "torch" or mod == "math" or mod == "operator":
                self.imports.add(f"import {mod}" if name == mod else f"import {mod} as {name}")
            elif mod.startswith("torch."):
                parent, _, leaf = mod.rpartition(".")
                self.imports.add(f"from {parent} import {leaf}" if name == leaf
                                 else f"import {mod} as {name}")
            else:
                raise ExportError(f"cannot export {user.__qualname__}: it uses module {mod!r}")
            return
        if self.defined.get(name) is value:
            return
        mod = getattr(value, "__module__", None) or ""
        if (inspect.isroutine(value) or inspect.isclass(value)) and (
            mod.startswith("torch") or mod == "math"
        ):
            self.imports.add(f"from {mod} import {value.__name__}" + (
                "" if name == value.__name__ else f" as {name}"))
            return
        if name in self.defined:
            raise ExportError(f"two exported objects are named {name!r}")
        if inspect.isfunction(value):
            self.defined[name] = value
            src = textwrap.dedent(inspect.getsource(value))
            self._needs(value, ast.parse(src))
            self.definitions.append(src.rstrip("\n") + "\n")
        elif inspect.isclass(value) and issubclass(value, nn.Module):
            self._define_class(value)
        elif _is_literal(value):
            self.defined[name] = value
            self.definitions.append(f"{name} = {value!r}\n")
        else:
            raise ExportError(f"cannot export {user.__qualname__}: it uses {name!r} "
                              f"({type(value).__name__})")


def _dict_literal(d: dict, indent: int) -> str:
    one = repr(d)
    if len(one) + indent <= 96:
        return one
    pad = " " * (indent + 4)
    items = "\n".join(f"{pad}{k!r}: {v!r}," for k, v in d.items())
    return "{\n" + items + "\n" + " " * indent + "}"


def _forward_owner(cls: type) -> type:
    for klass in cls.__mro__:
        if "forward" in vars(klass):
            return klass
    return nn.Module


def _own_methods(cls: type) -> list[str]:
    return [n for klass in cls.__mro__ if not klass.__module__.startswith("torch")
            and klass is not object for n, v in vars(klass).items()
            if _method_functions(v) and n != "__init__"]


def _method_functions(v: object) -> list[Callable]:
    """The functions whose source defines a class attribute (with its decorators)."""
    if inspect.isfunction(v):
        return [v]
    if isinstance(v, staticmethod | classmethod):
        return [v.__func__]
    if isinstance(v, property):
        return [f for f in (v.fget, v.fset, v.fdel) if f is not None]
    return []


def _is_literal(v: object) -> bool:
    if v is None or isinstance(v, bool | int | str):
        return True
    if isinstance(v, float):
        return math.isfinite(v)
    if isinstance(v, tuple | list):
        return all(_is_literal(x) for x in v)
    if isinstance(v, dict):
        return all(_is_literal(k) and _is_literal(x) for k, x in v.items())
    return False


def _free_names(tree: ast.AST) -> list[str]:
    """Names read in ``tree`` that it does not bind itself (annotations skipped: the file
    postpones them with ``from __future__ import annotations``)."""
    bound: set[str] = set()
    used: list[str] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            args = node.args
            for a in (*args.posonlyargs, *args.args, *args.kwonlyargs,
                      *(x for x in (args.vararg, args.kwarg) if x)):
                bound.add(a.arg)
            for d in (*args.defaults, *(d for d in args.kw_defaults if d)):
                visit(d)
            if not isinstance(node, ast.Lambda):
                bound.add(node.name)
                for dec in node.decorator_list:
                    visit(dec)
                for stmt in node.body:
                    visit(stmt)
            else:
                visit(node.body)
            return
        if isinstance(node, ast.AnnAssign):
            visit(node.target)
            if node.value is not None:
                visit(node.value)
            return
        if isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Store | ast.Del):
                bound.add(node.id)
            elif node.id not in used:
                used.append(node.id)
            return
        if isinstance(node, ast.comprehension | ast.ExceptHandler) and getattr(
                node, "name", None):
            bound.add(node.name)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return [n for n in used if n not in bound]


# torch layers written as constructor calls; each rule reads the instance's own attributes
def _args(*pos: object, **kw: object) -> str:
    return ", ".join([repr(p) for p in pos] + [f"{k}={v!r}" for k, v in kw.items()])


def _single(v: object) -> object:
    return v[0] if isinstance(v, tuple) and len(set(v)) == 1 else v


def _conv2d(m: nn.Conv2d, ctor: str = "nn.Conv2d") -> str:
    kw: dict[str, object] = {}
    for key, default in (("stride", 1), ("padding", 0), ("dilation", 1), ("groups", 1)):
        v = _single(getattr(m, key))
        if v != default:
            kw[key] = v
    kw["bias"] = m.bias is not None
    if m.padding_mode != "zeros":
        kw["padding_mode"] = m.padding_mode
    return f"{ctor}({_args(m.in_channels, m.out_channels, _single(m.kernel_size), **kw)})"


def _batch_norm(m: nn.BatchNorm2d) -> str:
    kw: dict[str, object] = {}
    if m.eps != 1e-5:
        kw["eps"] = m.eps
    if m.momentum != 0.1:
        kw["momentum"] = m.momentum
    if not m.affine:
        kw["affine"] = False
    if not m.track_running_stats:
        kw["track_running_stats"] = False
    return f"nn.{type(m).__name__}({_args(m.num_features, **kw)})"


def _pool(m: nn.MaxPool2d | nn.AvgPool2d) -> str:
    kw: dict[str, object] = {"stride": m.stride, "padding": m.padding}
    if isinstance(m, nn.MaxPool2d):
        if m.dilation != 1:
            kw["dilation"] = m.dilation
    else:
        kw["count_include_pad"] = m.count_include_pad
        if m.divisor_override is not None:
            kw["divisor_override"] = m.divisor_override
    if m.ceil_mode:
        kw["ceil_mode"] = True
    return f"nn.{type(m).__name__}({_args(m.kernel_size, **kw)})"


def _upsample(m: nn.Upsample) -> str:
    return (f"nn.Upsample({_args(size=m.size, scale_factor=m.scale_factor, mode=m.mode)}"
            + (f", align_corners={m.align_corners!r})" if m.align_corners is not None else ")"))


def _inplace(name: str) -> Callable[[nn.Module], str]:
    return lambda m: f"nn.{name}({'inplace=True' if m.inplace else ''})"


_TORCH_LAYERS: dict[type, Callable[[Any], str]] = {
    nn.Conv2d: _conv2d,
    nn.BatchNorm2d: _batch_norm,
    nn.BatchNorm1d: _batch_norm,
    nn.Linear: lambda m: "nn.Linear(" + _args(m.in_features, m.out_features,
                                              bias=m.bias is not None) + ")",
    nn.ReLU: _inplace("ReLU"),
    nn.ReLU6: _inplace("ReLU6"),
    nn.Hardswish: _inplace("Hardswish"),
    nn.Hardsigmoid: _inplace("Hardsigmoid"),
    nn.SiLU: _inplace("SiLU"),
    nn.Sigmoid: lambda m: "nn.Sigmoid()",
    nn.Identity: lambda m: "nn.Identity()",
    nn.Dropout: lambda m: f"nn.Dropout({_args(m.p, inplace=m.inplace)})",
    nn.MaxPool2d: _pool,
    nn.AvgPool2d: _pool,
    nn.AdaptiveAvgPool2d: lambda m: f"nn.AdaptiveAvgPool2d({m.output_size!r})",
    nn.Flatten: lambda m: f"nn.Flatten({_args(m.start_dim, m.end_dim)})",
    nn.Upsample: _upsample,
}


def _check(text: str, class_name: str, net: nn.Module,
           inputs: tuple[torch.Tensor, ...] | None) -> None:
    """Execute ``text``, build the class, load ``net``'s state dict strictly, compare every
    torch layer's configuration with the original's and, given ``inputs``, the outputs."""
    scope: dict[str, Any] = {"__name__": "nasc_export_check"}
    try:
        exec(compile(text, f"<{class_name}.py>", "exec"), scope)  # noqa: S102 - our own text
        copy = scope[class_name]()
        copy.load_state_dict(net.state_dict(), strict=True)
    except Exception as e:  # noqa: BLE001 - any failure here is an exporter bug: say which
        raise ExportError(f"the generated file does not rebuild the network: "
                          f"{type(e).__name__}: {e}") from None
    ours = dict(copy.named_modules())
    for name, m in net.named_modules():
        other = ours.get(name)
        if other is None or (name and type(m).__module__.startswith("torch.") and (
                type(other) is not type(m) or other.extra_repr() != m.extra_repr())):
            raise ExportError(f"the generated file builds {name or 'the network'} differently: "
                              f"{other!r} instead of {m!r}")
    if inputs is None:
        return
    was_training = net.training
    try:
        with torch.no_grad():
            want = net.eval()(*inputs)
    except Exception as e:  # noqa: BLE001 - the network itself cannot take these inputs
        raise ExportError(f"cannot run the network on inputs of shapes "
                          f"{[tuple(x.shape) for x in inputs]} ({type(e).__name__}: {e}); "
                          "give another input size") from None
    finally:
        net.train(was_training)
    try:
        with torch.no_grad():
            got = copy.eval()(*inputs)
    except Exception as e:  # noqa: BLE001 - an exporter bug: say which
        raise ExportError(f"the generated file fails where the network runs: "
                          f"{type(e).__name__}: {e}") from None
    want = want if isinstance(want, tuple) else (want,)
    got = got if isinstance(got, tuple) else (got,)
    if len(got) != len(want) or not all(torch.equal(a, b) for a, b in zip(got, want)):
        raise ExportError("the generated file computes other outputs than the network")
