"""Enumerated parameter types: what an op accepts is checked from its declaration.

Every stdlib op parameter that takes a closed set of names is declared as an enumeration
(``act: "relu6" | "relu" | "hswish"``); a value outside it is a located error at the call that
lists the allowed values, and the declared values are exactly those the PyTorch builder accepts.
"""

from __future__ import annotations

import pytest
from nasc.backends.torch.library import OpCall
from nasc.backends.torch.ops import _ACTIVATIONS, BUILDERS
from nasc.dsl import ast
from nasc.dsl.parser import parse_module
from nasc.ir.nodes import Op

import nasc
from nasc import stdlib
from tests.dsl.test_diagnostics import check_render


def _stdlib_ops() -> list[tuple[str, ast.OpDecl]]:
    out = []
    for name in stdlib.names():
        module = parse_module(stdlib.path_of(name).read_bytes(), f"{name}.nas")
        out += [(name, d) for d in module.items if isinstance(d, ast.OpDecl)]
    return out


OPS = _stdlib_ops()
ENUMS = [(m, d, p) for m, d in OPS for p in d.params if p.ann is not None and p.ann.values]


def _program(module: str, d: ast.OpDecl, **kwargs: str) -> str:
    """A space calling op ``d`` once: its required arguments filled in, ``kwargs`` as given."""
    args = []
    for p in d.params:
        if p.default is not None or p.name in kwargs:
            continue
        if p.ann is not None and p.ann.name in ("image", "tensor"):
            args.append("x")
        else:
            args.append(f"{p.name}=8")
    args += [f"{k}={v}" for k, v in kwargs.items()]
    call = f"{d.name}({', '.join(args)})"
    return f"import {module}\nspace s() {{\n    input x: image(8)\n    output {call}\n}}\n"


def test_the_stdlib_declares_enumerations():
    assert {(d.name, p.name) for _, d, p in ENUMS} >= {("mbconv", "act"), ("conv_bn_act", "act")}


@pytest.mark.parametrize("op", sorted({d.name for _, d in OPS}))
def test_no_stdlib_op_takes_an_open_string(op):
    """A string parameter of an op is a name the backend must know: it is enumerated."""
    (decl,) = [d for _, d in OPS if d.name == op]
    open_strings = [p.name for p in decl.params if p.ann is not None and p.ann.name == "str"
                    and not p.ann.values]
    assert open_strings == []


@pytest.mark.parametrize("module,decl,param", ENUMS, ids=lambda x: getattr(x, "name", x))
def test_a_value_outside_the_enumeration_is_a_located_error(module, decl, param):
    text = _program(module, decl, **{param.name: '"not_a_name"'})
    with pytest.raises(nasc.NasError) as info:
        nasc.parse(text, file="t.nas")
    e = info.value
    allowed = ", ".join(ast.enum_literal(v) for v in param.ann.values)
    assert f"{decl.name}: {param.name!r} must be one of {allowed}" in e.message
    assert '"not_a_name"' in e.message
    line = text.splitlines()[3]
    check_render(e.render(), "t.nas", 4, line.index(decl.name) + 1, line)


@pytest.mark.parametrize("module,decl,param", ENUMS, ids=lambda x: getattr(x, "name", x))
def test_a_value_choice_is_checked_value_by_value(module, decl, param):
    good = ast.enum_literal(param.ann.values[-1])
    bad = '"not_a_name"' if param.ann.name == "str" else "-99"
    choice = f'choose {{{good}, {bad}}} @"c"'
    with pytest.raises(nasc.NasError, match=r"must be one of .* when c="):
        nasc.parse(_program(module, decl, **{param.name: choice}), file="t.nas")
    choice = f'choose {{{", ".join(ast.enum_literal(v) for v in param.ann.values)}}} @"c"'
    assert nasc.parse(_program(module, decl, **{param.name: choice})).count() == len(
        param.ann.values
    )


@pytest.mark.parametrize("module,decl,param", ENUMS, ids=lambda x: getattr(x, "name", x))
def test_the_enumeration_is_what_the_torch_builder_accepts(module, decl, param):
    """Every declared value builds a module; a value outside the declaration does not."""
    space = nasc.parse(_program(module, decl))
    (node,) = [r for r in space.graph.nodes_of(Op) if r.op == decl.name]
    x = space.graph[space.graph.inputs(node.id)[0]]

    def build(value):
        params = dict(node.params) | {param.name: value}
        return BUILDERS[decl.name](OpCall(op=decl.name, params=params, in_types=(x.type,),
                                          out_type=node.type))

    for value in param.ann.values:
        build(value)
    with pytest.raises(ValueError):
        build("not_a_name" if param.ann.name == "str" else -99)


def test_the_activations_are_the_backends():
    acts = {p.ann.values for _, d, p in ENUMS if p.name == "act"}
    assert acts and all(set(v) == set(_ACTIVATIONS) for v in acts)


def test_align_policies_are_checked_at_the_call():
    from nasc.ir.passes.align import POLICIES

    text = 'space s() {\n    input x: image(3)\n    output align(x, channels=8, policy="pool")\n}\n'
    with pytest.raises(nasc.NasError) as info:
        nasc.parse(text, file="t.nas")
    for name in POLICIES:
        assert f'"{name}"' in info.value.message
    check_render(info.value.render(), "t.nas", 3, 12, text.splitlines()[2])
    for name in POLICIES:
        nasc.parse(text.replace('"pool"', f'"{name}"'))


@pytest.mark.parametrize("ann,message", [
    ('"a" | 2', "strings or integers, not both"),
    ('"a" | "b" | "a"', 'lists "a" twice'),
])
def test_bad_enumerations_are_syntax_errors(ann, message):
    with pytest.raises(nasc.NasError, match=message):
        nasc.parse(f"op f(x: image, m: {ann}) -> image(3)\n", file="t.nas")


def test_integer_enumerations_and_printing():
    text = ('op f(x: image, k: 3 | 5 | 7 = 3, m: "a\\"b" | "c") -> image(4)\n'
            'space s() {\n    input x: image(3)\n    output f(x, k=choose {3, 7} @"k", m="c")\n}\n')
    assert nasc.parse(text).count() == 2
    with pytest.raises(nasc.NasError, match=r"'k' must be one of 3, 5, 7; got int 4"):
        nasc.parse(text.replace("choose {3, 7} @\"k\"", "4"))
    (decl,) = [d for d in parse_module(text).items if isinstance(d, ast.OpDecl)]
    assert str(decl.params[1].ann) == "3 | 5 | 7"
    assert str(decl.params[2].ann) == '"a\\"b" | "c"'


def test_nasc_check_reports_a_bad_activation_at_the_call(tmp_path, capsys):
    from nasc.cli import main

    p = tmp_path / "act.nas"
    p.write_text('import mobile_ops\nspace s() {\n    input x: image(3)\n'
                 '    output mbconv(x, 8, act="gelu")\n}\n')
    assert main(["check", str(p)]) == 1
    err = capsys.readouterr().err
    line = '    output mbconv(x, 8, act="gelu")'
    check_render(err, str(p), 4, 12, line)
    assert 'must be one of "relu6", "relu", "hswish"; got str "gelu"' in err
    assert "Traceback" not in err and "internal error" not in err
