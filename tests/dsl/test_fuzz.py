"""Fuzzing the front end: whatever bytes come in, nasc answers with a Space or a NasError.

Sources of input: programs and statements drawn from the grammar itself (``nas.lark`` through
``hypothesis.extra.lark``), byte-level mutations of the stdlib's ``.nas`` files and of random
valid spaces (``nasc.testing.space_sources``), token soup, and plain random bytes. For everything
the parser accepts, the canonical formatter must round-trip: formatting the reformatted text
changes nothing, and the re-parsed AST is the original up to locations.
"""

from __future__ import annotations

import functools
import re
from importlib.resources import files

import attrs
import lark
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.lark import from_lark
from nasc.dsl import ast
from nasc.dsl.format import format_module
from nasc.dsl.parser import parse_module
from nasc.ir.location import SourceLoc

import nasc
from nasc.testing import space_sources

pytestmark = pytest.mark.fuzzing

#: Small bounds, so that a drawn program that happens to loop stays cheap.
LIMITS = nasc.Limits(max_steps=20_000, max_nodes=2_000, max_alloc=200_000)

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.filter_too_much],
)

GRAMMAR_TEXT = files("nasc.dsl").joinpath("nas.lark").read_text()
STDLIB = {
    p.name: p.read_bytes()
    for p in sorted(files("nasc.stdlib").iterdir(), key=lambda p: p.name)
    if p.name.endswith(".nas")
}


@functools.lru_cache(maxsize=1)
def _lark() -> lark.Lark:
    return lark.Lark(GRAMMAR_TEXT, parser="lalr", start="start")


def _keywords() -> frozenset[str]:
    """Every anonymous string terminal of the grammar that looks like a word."""
    words = set(re.findall(r'"([A-Za-z_][A-Za-z0-9_]*)"', GRAMMAR_TEXT))
    return frozenset(words)


KEYWORDS = _keywords()

# Terminal strategies: mostly fixed samples (drawing from regexes is what makes grammar fuzzing
# slow), with some regex-drawn values for variety.
names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,5}", fullmatch=True).filter(
    lambda s: s not in KEYWORDS
)
common_names = st.sampled_from(
    ["x", "y", "C", "i", "xs", "conv2d", "relu", "sum", "concat", "len", "nn", "darts_ops", "s",
     "enumerate", "range", "image", "channels", "stride", "Z9_", "_"]
)
strings = st.one_of(
    st.sampled_from(['"a"', '"{i}"', '"n{i}.op"', '""', '"a\\"b"', '"{{x}}"', '"{"', '"}"',
                     '"\\n"', '"{x.channels}"', '"é"', '"nn"', '"darts"']),
    st.from_regex(r'"([^"\\\n{}]|\\[^\n]){0,6}"', fullmatch=True),
)
ints = st.one_of(
    st.sampled_from(["0", "1", "2", "3", "8", "16", "007", "9223372036854775807",
                     "9223372036854775808", "99999999999999999999999"]),
    st.integers(0, 1000).map(str),
)
floats = st.sampled_from(["0.0", "1.5", "0.25", "1e3", "2.5E-3", "1e999", "1e-999", "0.5e+2"])
comments = st.sampled_from(["#\n", "# c\n", "# {x} ; }\n", '# "\n', "# é\n"])
spaces = st.sampled_from([" ", "\n", "\t", "  ", "\r\n"])


def _pad(s: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Tokens are mostly drawn with spaces around them: lark needs separators between words."""
    return st.one_of(s.map(lambda t: f" {t} "), s)


def _explicit(start: str) -> dict[str, st.SearchStrategy[str]]:
    terminals, _, _ = _lark().grammar.compile([start], ())
    used = {t.name for t in terminals}
    out: dict[str, st.SearchStrategy[str]] = {
        "NAME": _pad(st.one_of(common_names, common_names, names)),
        "STRING": _pad(strings),
        "INT": _pad(ints),
        "FLOAT": _pad(floats),
        "COMMENT": comments,
        "WS": spaces,
    }
    for t in _lark().terminals:
        if t.name in out or t.name in ("WS", "COMMENT"):
            continue
        if isinstance(t.pattern, lark.lexer.PatternStr):
            out[t.name] = _pad(st.just(t.pattern.value))
        else:
            out[t.name] = _pad(st.from_regex(t.pattern.to_regexp(), fullmatch=True))
    return {k: v for k, v in out.items() if k in used}


programs = from_lark(_lark(), start="start", explicit=_explicit("start"))


def _strip(x):
    """An AST with every location dropped (and comments, whose places the formatter moves)."""
    if isinstance(x, SourceLoc):
        return None
    if isinstance(x, tuple):
        return tuple(_strip(y) for y in x)
    if isinstance(x, ast.Module):
        return ("Module", _strip(x.items))
    if attrs.has(type(x)):
        return (type(x).__name__,) + tuple(
            _strip(getattr(x, f.name)) for f in attrs.fields(type(x)) if f.name != "loc"
        )
    return x


def _parse_or_error(data: str | bytes) -> None:
    """The property shared by every fuzzer: a Space or a NasError, never anything else."""
    try:
        space = nasc.parse(data, limits=LIMITS)
    except nasc.NasError as e:
        # the diagnostic itself must be printable
        assert e.render()
        return
    assert isinstance(space, nasc.Space)
    assert space.count() >= 1


def _round_trip(text: str | bytes) -> None:
    try:
        module = parse_module(text)
    except nasc.NasError:
        return
    once = format_module(module)
    again = parse_module(once, "<formatted>")
    assert format_module(again) == once
    assert _strip(again) == _strip(module)


# ---- (a) programs drawn from the grammar --------------------------------------------------
@FUZZ
@given(programs)
@example("space s() { input x: image(3) output x }")
@example("import nn space s(C: int = 8) { input x: image(3) output conv2d(x, C) }")
@example("let a = 1 // 0")
@example("let a = 9223372036854775807 + 1")
@example("let a = 1e999")
@example('let a = "{"')
@example('let a = "{1 +}"')
@example("let a = -9223372036854775807 - 1 let b = -a")
@example("let a = -(-1)")
@example("let a = (1 + 2) * 3 let b = 1 - (2 - 3)")
@example("let a = not (not true) let b = (a ? 1 : 2) ? 3 : 4")
@example("let a = [x for x in 0..3 if x > 0] # trailing\n")
@example("space s() {\n    # only a comment\n}\n")
@example('let a = "a\\"b{{c}}"')
@example("let a = -1 .. 2")
@example("let a = (1..2)..3")
@example('let a = pick (1..2) of xs @"p"')
@example(' op  x  (  x  )  ->  x  (  )  require  0  ,  "" ')  # empty message, was dropped
@example(' import  "{i}" ')  # braces of a plain string, were doubled
def test_grammar_programs(text):
    """A Space or a NasError, and the formatter round-trips whatever parses."""
    _parse_or_error(text)
    _round_trip(text)


statements = from_lark(_lark(), start="stmt", explicit=_explicit("stmt"))
PRELUDE = "import nn\nspace s(C: int = 8, xs: list = [1, 2]) {\n    input x: image(3)\n"


@settings(FUZZ, max_examples=40)  # most draws of nested statements exceed hypothesis' depth
@given(st.lists(statements, min_size=1, max_size=4))
@example(["let y = conv2d(x, C)", "x = sum([x, y])"])
@example(["repeat {0, 2} @\"d\" as i { x = relu(x) }"])
@example(["x = choose [relu, conv2d[C=3]] @\"o\" (x)"])
@example(["let p = pick 1..2 of [x, relu(x)] @\"p\"", "x = sum(p)"])
@example(["x = optional relu @\"o\" (x)", "let c = choose {1, 2} @\"c\"",
          "x = conv2d(x, 3 * c)"])
@example(["let c = choose {4, 8} @\"c\"", "x = conv2d(x, c) + conv2d(x, 12 - c)"])
def test_grammar_statements_in_a_space(stmts):
    """Statements drawn from the grammar, run inside a space that has a tensor to work on."""
    text = PRELUDE + "\n".join("    " + s for s in stmts) + "\n    output x\n}\n"
    _parse_or_error(text)
    _round_trip(text)


# ---- (b) mutations of the stdlib ------------------------------------------------------------
@st.composite
def mutated_stdlib(draw) -> bytes:
    name = draw(st.sampled_from(sorted(STDLIB)))
    return draw(mutations(STDLIB[name]))


@st.composite
def mutations(draw, original: bytes) -> bytes:
    """``original`` with 1 to 4 byte-level edits."""
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 4))):
        n = len(data)
        i = draw(st.integers(0, n))
        j = draw(st.integers(i, min(n, i + 40)))
        kind = draw(st.sampled_from(["delete", "insert", "replace", "duplicate", "truncate",
                                     "bad_utf8", "swap_byte"]))
        if kind == "delete":
            del data[i:j]
        elif kind == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "replace":
            data[i:j] = draw(st.binary(max_size=8))
        elif kind == "duplicate":
            data[j:j] = data[i:j]
        elif kind == "truncate":
            del data[i:]
        elif kind == "bad_utf8":
            data[i:i] = draw(st.sampled_from([b"\xff", b"\xc3", b"\xe2\x82", b"\xed\xa0\x80",
                                              b"\xc0\xaf", b"\x00", b"\xef\xbb\xbf"]))
        elif kind == "swap_byte" and n:
            k = min(i, n - 1)
            data[k] = draw(st.sampled_from(b"{}()[]@\"#;,.:=+-*/%?<>!\n \t0aZ_"))
    return bytes(data)


@FUZZ
@given(mutated_stdlib())
@example(STDLIB["darts.nas"][:300])
@example(STDLIB["nn.nas"] + b"\xff")
@example(STDLIB["nas_bench_201.nas"].replace(b"for j in 1..4", b"for j in 1..40"))
def test_mutated_stdlib_gives_a_space_or_a_nas_error(data):
    _parse_or_error(data)
    _round_trip(data)


@FUZZ
@given(space_sources(), st.data())
def test_mutated_generated_spaces_give_a_space_or_a_nas_error(text, data):
    """The same mutations over random valid spaces that use every choice kind."""
    formatted = format_module(parse_module(text))
    assert nasc.parse(formatted).count() == nasc.parse(text).count()
    mutated = data.draw(mutations(text.encode()))
    _parse_or_error(mutated)
    _round_trip(mutated)


# ---- (c) random bytes -----------------------------------------------------------------------
@FUZZ
@given(st.binary(max_size=300))
@example(b"")
@example(b"\x00")
@example(b"\xff\xfe")
@example(b"{" * 100)
@example(b'"' * 3)
def test_random_bytes_give_a_nas_error(data):
    with pytest.raises(nasc.NasError):
        nasc.parse(data, limits=LIMITS)


_SOUP = ["{", "}", "(", ")", "[", "]", "@", '"', '"a"', "#", ";", ",", ".", "..", ":", "=",
         "+", "-", "*", "//", "%", "?", "<", "==", "!", "\n", "x", "i", "0", "1", "3", "let",
         "space", "s()", "for", "in", "if", "else", "choose", "pick", "of", "input", "output",
         "image(3)", "repeat", "return", "block", "op", "->", "require", "import", "nn",
         "conv2d(x, 8)", "@\"a\""]


@FUZZ
@given(st.lists(st.sampled_from(_SOUP), max_size=40),
       st.lists(st.sampled_from([" ", "", "\n", "\t"]), min_size=1, max_size=40))
@example(["space", "s()", "{", "input", "x", ":", "image(3)", "output", "x", "}"], [" "])
def test_token_soup_gives_a_space_or_a_nas_error(tokens, seps):
    text = "".join(t + seps[i % len(seps)] for i, t in enumerate(tokens))
    _parse_or_error(text)
    _round_trip(text)


# ---- pinned failures ------------------------------------------------------------------------
@pytest.mark.parametrize("text", [
    'import "a{b}.nas"\n',  # braces in strings that are not templates used to be doubled
    'op f(x: image) -> like(x)\n    require true, "keep {x} as is"\n',
    'op f(x: image) -> like(x)\n    require true, ""\n',  # an empty message used to be dropped
])
def test_format_keeps_plain_strings(text):
    module = parse_module(text)
    once = format_module(module)
    assert once == text
    assert _strip(parse_module(once)) == _strip(module)
