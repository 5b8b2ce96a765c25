"""The builtin functions of ``.nas`` (``sum``, ``concat``, ``len``, ``align``, ...).

Each is ``fn(el, args, kwargs, loc)`` and uses only the elaborator's public interface:
``error``, ``add``, ``merge``, ``iterate``, ``text``, ``types`` and ``budget``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import attrs
from nasc.dsl.typecheck import is_num
from nasc.dsl.values import BuiltinValue, RangeValue, Tensor, show, type_name
from nasc.ir.nodes import Align
from nasc.ir.sym import Sym

if TYPE_CHECKING:
    from nasc.dsl.elaborate import Elaborator


def _b_sum(el: Elaborator, args, kwargs, loc):
    _arity(el, "sum", args, kwargs, 1, loc)
    return el.merge(args[0], "sum", loc)


def _b_concat(el: Elaborator, args, kwargs, loc):
    _arity(el, "concat", args, kwargs, 1, loc)
    return el.merge(args[0], "concat", loc)


def _b_len(el: Elaborator, args, kwargs, loc):
    _arity(el, "len", args, kwargs, 1, loc)
    v = args[0]
    if isinstance(v, list | str | RangeValue):
        return len(v)
    raise el.error(f"len() of {type_name(v)}", loc)


def _b_minmax(name):
    def f(el: Elaborator, args, kwargs, loc):
        if kwargs:
            raise el.error(f"{name}() takes no keyword arguments", loc)
        vals = el.iterate(args[0], loc) if len(args) == 1 else args
        if not vals:
            raise el.error(f"{name}() of nothing", loc)
        out = vals[0]
        for v in vals[1:]:
            if not is_num(v) or not is_num(out):
                raise el.error(f"{name}() of {type_name(v)}", loc)
            out = Sym.binary(name, out, v)
        return out

    return f


def _b_align(el: Elaborator, args, kwargs, loc):
    if len(args) != 1 or not isinstance(args[0], Tensor):
        raise el.error("align(x, channels=..., stride=..., policy=...) takes one tensor", loc)
    x = args[0]
    extra = set(kwargs) - {"channels", "stride", "policy"}
    if extra:
        raise el.error(f"align() has no argument {sorted(extra)[0]!r}", loc)
    ty = x.type
    if "channels" in kwargs:
        ty = ty.with_channels(el.types.dim(kwargs["channels"], loc, "channels"))
    if "stride" in kwargs:
        ty = attrs.evolve(ty, stride=el.types.dim(kwargs["stride"], loc, "stride"))
    policy = kwargs.get("policy")
    if policy is not None:
        from nasc.ir.passes.align import POLICIES  # lazily: the passes need not load with dsl

        if not isinstance(policy, str) or policy not in POLICIES:
            known = ", ".join(f'"{k}"' for k in sorted(POLICIES))
            raise el.error(f"align(policy=...) must be one of {known}; got {show(policy)}", loc)
    if ty == x.type:
        return x
    nid = el.add(Align, [x.node], type=ty, policy=policy, loc=loc)
    return Tensor(node=nid, type=ty)


def _b_identity(el: Elaborator, args, kwargs, loc):
    if len(args) < 1 or not isinstance(args[0], Tensor):
        raise el.error("identity(x) takes a tensor", loc)
    return args[0]


def _b_enumerate(el: Elaborator, args, kwargs, loc):
    _arity(el, "enumerate", args, kwargs, 1, loc)
    return [[i, v] for i, v in enumerate(el.iterate(args[0], loc))]


def _b_zip(el: Elaborator, args, kwargs, loc):
    lists = [el.iterate(a, loc) for a in args]
    return [list(t) for t in zip(*lists)]


def _b_str(el: Elaborator, args, kwargs, loc):
    _arity(el, "str", args, kwargs, 1, loc)
    return el.text(args[0])


def _b_int(el: Elaborator, args, kwargs, loc):
    _arity(el, "int", args, kwargs, 1, loc)
    v = args[0]
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise el.error(f"int() of {type_name(v)}", loc)
    if isinstance(v, float) and not math.isfinite(v):
        raise el.error(f"int() of {v}", loc)
    return el.budget.int_(int(v), loc)


def _arity(el: Elaborator, name: str, args, kwargs, n: int, loc) -> None:
    if len(args) != n or kwargs:
        raise el.error(f"{name}() takes {n} argument{'s' if n > 1 else ''}", loc)


BUILTINS: dict[str, BuiltinValue] = {
    name: BuiltinValue(name=name, fn=fn)
    for name, fn in {
        "sum": _b_sum,
        "concat": _b_concat,
        "len": _b_len,
        "min": _b_minmax("min"),
        "max": _b_minmax("max"),
        "align": _b_align,
        "identity": _b_identity,
        "enumerate": _b_enumerate,
        "zip": _b_zip,
        "str": _b_str,
        "int": _b_int,
    }.items()
}


__all__ = ["BUILTINS"]
