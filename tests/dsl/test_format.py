"""The formatter: a line width, wrapping at bracket boundaries, comments and blank lines kept,
idempotent, meaning-preserving; and every stdlib file is formatted (``nasc fmt --check``)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nasc.dsl.format import WIDTH, format_module
from nasc.dsl.parser import parse_module
from nasc.ir.printer import print_graph

import nasc
from nasc import stdlib
from nasc.cli import main
from nasc.testing import space_sources

STDLIB = {name: stdlib.path_of(name).read_text() for name in stdlib.names()}
#: Places where a line may break: a line longer than the width has none of them left.
_BREAKS = re.compile(
    r", | for | if | \? | : | (\+|-|\*|//|/|%|and|or|==|!=|<|<=|>|>=|in|not in) | @\""
)
_STRING = re.compile(r'"([^"\\\n]|\\.)*"')


def _breakable(line: str) -> bool:
    """Whether ``line`` (code, not a comment) still holds a break point after its first token."""
    code = _STRING.sub('""', line).split("#", 1)[0].strip()
    code = re.sub(r"^(\+|-|\*|//|/|%|and|or|\?|:|if|@|let|output|return|assert|} else if)\s",
                  "", code)
    code = re.sub(r"^(for [\w, ]+ in |[\w, ]+ [-+*]?= |output \w+ = )", "", code)
    return bool(_BREAKS.search(code))


def check_formatted(text: str, width: int) -> str:
    """Format ``text`` at ``width``; check idempotence, the width and the comments kept."""
    module = parse_module(text, "t.nas")
    once = format_module(module, width=width)
    assert format_module(parse_module(once, "t.nas"), width=width) == once
    for line in once.splitlines():
        if len(line) > width and not line.lstrip().startswith("#"):
            assert not _breakable(line), f"line over {width} columns with a break point:\n{line}"
    comments = [c.text.strip() for c in module.comments]
    assert [c.text.strip() for c in parse_module(once).comments] == comments
    return once


def ir(text: str, file: str = "t.nas", **params) -> str:
    return print_graph(nasc.parse(text, file=file, **params).graph, locations=False)


# ---- the stdlib ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(STDLIB))
def test_every_stdlib_file_is_formatted(name, capsys):
    """``nasc fmt --check stdlib/NAME.nas`` passes (the CI check)."""
    assert main(["fmt", "--check", str(stdlib.path_of(name))]) == 0, capsys.readouterr().err
    assert all(len(line) <= WIDTH for line in STDLIB[name].splitlines()), name


@settings(max_examples=40, deadline=None)
@given(name=st.sampled_from(sorted(STDLIB)), width=st.integers(16, 140))
def test_stdlib_formats_idempotently_at_any_width(name, width):
    check_formatted(STDLIB[name], width)


SPACES = {  # small configurations, to stay fast
    "nas_bench_201": dict(N=1),
    "darts": dict(layers=2),
    "mobilenet_chain": {},
    "enas": dict(layers=1),
    "nasnet": dict(N=1),
    "densenas": {},
    "proxylessnas": {},
    "auto_deeplab": dict(L=2),
}


@pytest.mark.parametrize("name", sorted(SPACES))
def test_narrowly_formatted_stdlib_spaces_elaborate_to_the_same_ir(name):
    narrow = check_formatted(STDLIB[name], 40)
    params = SPACES[name]
    assert ir(narrow, f"{name}.nas", **params) == ir(STDLIB[name], f"{name}.nas", **params)


# ---- generated spaces ----------------------------------------------------------------------
@settings(max_examples=30, deadline=None)
@given(text=space_sources(), width=st.integers(16, 100))
def test_generated_spaces_keep_their_meaning_at_any_width(text, width):
    formatted = check_formatted(text, width)
    assert ir(formatted) == ir(text)


# ---- layout ------------------------------------------------------------------------------
def test_long_calls_wrap_visually_under_the_bracket():
    text = ("import nn\nspace s(C: int = 8) {\n    input x: image(3)\n"
            "    output conv2d(x, C, k=3, stride=1, dilation=1, groups=1, bias=false)\n}\n")
    out = check_formatted(text, 50)
    assert out.splitlines()[3:5] == [
        "    output conv2d(x, C, k=3, stride=1, dilation=1,",
        "                  groups=1, bias=false)",
    ]


def test_comprehensions_break_before_for_and_if():
    text = "let a = [x * 2 for x in [1, 2, 3, 4, 5, 6, 7] if x > 2]\n"
    assert check_formatted(text, 30) == (
        "let a = [x * 2\n"
        "         for x in [1, 2, 3, 4,\n"
        "                   5, 6, 7]\n"
        "         if x > 2]\n"
    )


def test_a_bracket_too_far_right_hangs():
    text = 'let a_long_name = some_function_name([1, 2], "a string that is long", 3)\n'
    out = check_formatted(text, 40)
    assert out == ('let a_long_name = some_function_name(\n'
                   '    [1, 2], "a string that is long", 3\n'
                   ')\n')


def test_op_declarations_put_the_output_and_each_require_on_their_own_lines():
    text = ('op f(x: image, C: int, k: int = 3, stride: int = 1, dilation: int = 2) -> '
            'image(C, x.stride * stride) require k % 2 == 1, "odd" require C > 0\n')
    assert format_module(parse_module(text)) == (
        "op f(x: image, C: int, k: int = 3, stride: int = 1, dilation: int = 2)\n"
        "    -> image(C, x.stride * stride)\n"
        '    require k % 2 == 1, "odd"\n'
        "    require C > 0\n"
    )


def test_comments_and_blank_line_groups_are_kept():
    text = ("# header\n\nimport nn\n\n\n# the space\nspace s() {  # trailing\n"
            "    input x: image(3)\n\n    # before the output\n    let y = relu(x)  # why\n"
            "    output y\n}\n")
    assert check_formatted(text, 100) == (
        "# header\n\nimport nn\n\n# the space\nspace s() {  # trailing\n"
        "    input x: image(3)\n\n    # before the output\n    let y = relu(x)  # why\n"
        "    output y\n}\n"
    )


def test_one_line_bodies_stay_when_they_fit():
    text = "block b(x) { return x }\nblock c(x) {\n    return x\n}\n"
    assert check_formatted(text, 100) == text
    assert check_formatted(text, 20).splitlines()[:3] == ["block b(x) {", "    return x", "}"]


def test_fmt_line_width_option(tmp_path, capsys):
    p = tmp_path / "t.nas"
    p.write_text("let a = [1111, 2222, 3333, 4444]\n")
    assert main(["fmt", "--line-width", "20", str(p)]) == 0
    assert capsys.readouterr().out == "let a = [1111, 2222,\n         3333, 4444]\n"
    assert main(["fmt", "--check", str(p)]) == 0
    assert main(["fmt", "--check", "--line-width", "20", str(p)]) == 1
