"""Values that exist while a ``.nas`` program is elaborated.

Tensors are handles on IR nodes; ops, blocks and bound candidates are callables; a pick is a
list whose members exist only when the input choice picks them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
from nasc.dsl import ast
from nasc.ir.location import SourceLoc
from nasc.ir.printer import format_value
from nasc.ir.sym import Sym
from nasc.ir.types import TensorType


@attrs.frozen(kw_only=True)
class Tensor:
    """A tensor produced by IR node ``node``; ``index`` is its position in a pick."""

    node: int
    type: TensorType
    index: int | None = None


@attrs.frozen(kw_only=True, eq=False)
class OpValue:
    """A declared primitive op."""

    decl: ast.OpDecl
    module: Any  # ModuleEnv

    @property
    def name(self) -> str:
        return self.decl.name


@attrs.frozen(kw_only=True, eq=False)
class BlockValue:
    """A ``block`` or ``cell`` (or ``space``) definition."""

    decl: ast.BlockDef | ast.SpaceDef
    module: Any  # ModuleEnv

    @property
    def name(self) -> str:
        return self.decl.name


@attrs.frozen(kw_only=True, eq=False)
class BuiltinValue:
    name: str
    fn: Callable[..., Any]


@attrs.frozen(kw_only=True, eq=False)
class BoundValue:
    """``f[k=3, e=6]``: a callable with some keyword arguments fixed."""

    fn: Any
    kwargs: tuple[tuple[str, Any], ...]

    @property
    def name(self) -> str:
        inner = ", ".join(f"{k}={format_value(v)}" for k, v in self.kwargs)
        return f"{callable_name(self.fn)}[{inner}]"


@attrs.frozen(kw_only=True, eq=False)
class ModuleValue:
    """A module imported with ``import m as name``: its definitions are ``name.x``."""

    name: str
    env: Any  # ModuleEnv


@attrs.define(kw_only=True, eq=False)
class PickValue:
    """``pick k of items @label``: members exist only when picked; merge with sum/concat."""

    label: str
    k_min: int
    k_max: int
    items: list[Any]
    loc: SourceLoc
    consumed: bool = False


@attrs.frozen(kw_only=True)
class RangeValue:
    start: int
    stop: int

    def __len__(self) -> int:
        return max(0, self.stop - self.start)


CALLABLES = (OpValue, BlockValue, BuiltinValue, BoundValue)


def callable_name(v: Any) -> str:
    if isinstance(v, BoundValue):
        return v.name
    return v.name


def type_name(v: Any) -> str:
    """How a value's type is named in diagnostics."""
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if isinstance(v, str):
        return "str"
    if isinstance(v, Sym):
        return "value choice"
    if isinstance(v, Tensor):
        return f"tensor {v.type}"
    if isinstance(v, list | tuple):
        return "list"
    if isinstance(v, RangeValue):
        return "range"
    if isinstance(v, PickValue):
        return "pick"
    if isinstance(v, OpValue):
        return "op"
    if isinstance(v, BlockValue):
        return "block"
    if isinstance(v, BoundValue | BuiltinValue):
        return "function"
    if isinstance(v, ModuleValue):
        return "module"
    if v is None:
        return "nothing"
    return type(v).__name__


def show(v: Any) -> str:
    """A value as a person would write it in ``.nas``."""
    if isinstance(v, Tensor):
        return f"tensor {v.type}"
    if isinstance(v, CALLABLES):
        return callable_name(v)
    if isinstance(v, list):
        return "[" + ", ".join(show(x) for x in v) + "]"
    if isinstance(v, RangeValue):
        return f"{v.start}..{v.stop}"
    return format_value(v)
