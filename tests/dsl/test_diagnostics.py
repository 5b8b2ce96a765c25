"""Diagnostics: every class of user error gives a NasError at the right line and column.

Each test checks the location, a key phrase of the message, and that ``render()`` quotes the
source line with a caret under the reported column (``file:LINE:COL: error: message``, the line,
the caret). Tests marked ``xfail(strict=True)`` pin library bugs found while writing them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from nasc.dsl.parser import MAX_BRACKET_DEPTH, MAX_EXPR_DEPTH, MAX_INT, parse_expr, parse_module

import nasc

FILE = "t.nas"
HEAD = "import nn\nspace s() {\n    input x: image(3)\n"  # lines 1-3 of most programs below


def diag(text: str | bytes, **kwargs) -> nasc.NasError:
    """The NasError that ``text`` raises (anything else fails the test)."""
    with pytest.raises(nasc.NasError) as info:
        nasc.parse(text, file=FILE, **kwargs)
    return info.value


def check_render(rendered: str, file: str, line: int, col: int, source: str,
                 kind: str = "error") -> None:
    """``rendered`` starts with ``file:line:col: kind:``, quotes ``source``, carets ``col``."""
    lines = rendered.splitlines()
    assert len(lines) >= 3, f"no source line or caret in:\n{rendered}"
    assert lines[0].startswith(f"{file}:{line}:{col}: {kind}: "), rendered
    gutter = f"{line:>4} | "
    assert lines[1] == gutter + source.expandtabs(1).rstrip(), rendered
    caret = lines[2]
    assert caret.startswith(" " * (len(gutter) - 2) + "| "), rendered
    assert caret.index("^") == len(gutter) + col - 1, rendered
    assert set(caret[len(gutter):]) <= {" ", "^", "~"}, rendered


def check(e: nasc.NasError, text: str, line: int, col: int, phrase: str,
          file: str = FILE) -> None:
    """Location, message and rendering of ``e``, raised for source ``text``."""
    assert e.loc is not None, e.render()
    assert (e.loc.file, e.loc.line, e.loc.col) == (file, line, col), e.render()
    assert phrase in e.message, e.message
    check_render(e.render(), file, line, col, text.splitlines()[line - 1])
    assert str(e) == e.render()


def check_note(note, text: str, line: int, col: int, phrase: str, file: str = FILE) -> None:
    assert note.loc is not None
    assert (note.loc.file, note.loc.line, note.loc.col) == (file, line, col)
    assert phrase in note.message


def nn_line(number: int) -> str:
    return (Path(nasc.__file__).parent.parent / "stdlib" / "nn.nas").read_text().splitlines()[
        number - 1
    ]


# ---- syntax ---------------------------------------------------------------------------------
def test_unclosed_brace_is_reported_at_the_end_of_the_file():
    text = "space s() {\n    let a = 1\n"
    e = diag(text)
    check(e, text, 2, 14, "unclosed '{'")
    assert "unclosed '{'" in e.message


def test_missing_expression():
    text = "space s() {\n    let a =\n}\n"
    e = diag(text)
    check(e, text, 3, 1, "expected an expression")
    assert "(found '}')" in e.message


def test_missing_label_after_a_choice():
    text = "space s() {\n    let a = choose {1, 2}\n}\n"
    e = diag(text)
    check(e, text, 3, 1, "a choice needs a label: '@\"name\"' after its candidates")


def test_missing_label_after_a_choice_anywhere_in_a_body():
    text = HEAD + "    let a = choose {1, 2}\n    output x\n}\n"
    e = diag(text)
    check(e, text, 5, 5, "a choice needs a label")
    assert "(found 'output')" in e.message


def test_stray_top_level_statement():
    text = "for i in 0..3 { }\n"
    e = diag(text)
    check(e, text, 1, 1, "only 'import', 'op', 'block', 'cell', 'space' and 'let' may appear")
    assert "(found 'for')" in e.message


def test_expression_as_a_statement():
    text = "space s() {\n    1\n}\n"
    check(diag(text), text, 2, 5, "expressions alone are not statements")


def test_definition_without_parameter_list():
    text = "space s {\n}\n"
    check(diag(text), text, 1, 9, "a definition needs a name and a parameter list")


@pytest.mark.parametrize("text, line, col, phrase", [
    ("space s() {\n    let a = [1, 2\n}\n", 3, 1, "unclosed '[' in a list"),
    ("space s() {\n    let a = f(1\n}\n", 3, 1, "unclosed '(' in a call"),
    ("space s() {\n    let a\n}\n", 3, 1, "'let' needs '=' and a value"),
])
def test_other_table_messages(text, line, col, phrase):
    check(diag(text), text, line, col, phrase)


def test_unexpected_character():
    text = HEAD + "    let a = 1 $ 2\n    output x\n}\n"
    check(diag(text), text, 4, 15, "unexpected character '$'")


@pytest.mark.parametrize("text, line, col", [
    (HEAD + '    let a = "abc\n    output x\n}\n', 4, 13),
    ('let a = "abc\nlet b = 1\n', 1, 9),
    ('let a = "abc\\"\n', 1, 9),
])
def test_unterminated_string(text, line, col):
    check(diag(text), text, line, col, "unterminated string")


# The table of example errors (parser._EXAMPLES) names the problem wherever it happens, not
# only in the first statement of a body (lark compares parser states by stack depth).
@pytest.mark.parametrize("text, line, col, phrase", [
    (HEAD + "    let a =\n}\n", 5, 1, "expected an expression"),
    (HEAD + "    let a = 1 + 2\n", 4, 18, "unclosed '{'"),
    ("import nn\nx = 1\n", 2, 1, "may appear at the top level"),
    ("let a = 1\nlet b =\n", 2, 8, "expected an expression"),
    ("block b(x) {\n    for i in 0..2 {\n        let a = [1, 2\n    }\n}\n", 4, 5,
     "unclosed '[' in a list"),
])
def test_table_messages_do_not_depend_on_the_position_in_the_file(text, line, col, phrase):
    check(diag(text), text, line, col, phrase)


def test_unclosed_brace_after_a_statement_ending_in_a_name():
    text = HEAD + "    output x\n"
    check(diag(text), text, 4, 13, "unclosed '{'")


def test_syntax_error_in_the_second_statement_is_still_located():
    text = HEAD + "    input y: image(3)\n    let a = 1 +\n}\n"
    e = diag(text)
    check(e, text, 6, 1, "expected an expression")


@pytest.mark.parametrize("text, line, col, phrase", [
    ("space s() {\n    let a, b = 1, 2, 3\n}\n", 2, 5, "2 names but 3 values"),
    ("space s() {\n    let a = f(x=1, 2)\n}\n", 2, 20, "positional argument after a keyword"),
    ("space s() {\n    let a = f(x=1, x=2)\n}\n", 2, 22, "argument 'x' given twice"),
    ('let a = "{}"\n', 1, 9, "empty '{}' in string interpolation"),
    ('let a = "}"\n', 1, 9, "single '}' in string; write '}}'"),
    ('let a = "{x"\n', 1, 9, "unclosed '{' in string interpolation"),
])
def test_errors_found_while_building_the_ast(text, line, col, phrase):
    check(diag(text), text, line, col, phrase)


def test_syntax_error_inside_string_interpolation():
    text = 'let a = "v{1 +}"\n'
    e = diag(text)
    check(e, text, 1, 9, "in '{1 +}': unexpected end of file")


def test_errors_in_an_imported_file_are_located_in_that_file(tmp_path):
    (tmp_path / "main.nas").write_text(
        'import "lib.nas"\nspace s() {\n    input x: image(3)\n    output x\n}\n')
    lib = "let a = 1\nlet b = 1 // 0\n"
    (tmp_path / "lib.nas").write_text(lib)
    with pytest.raises(nasc.NasError) as info:
        nasc.load(str(tmp_path / "main.nas"))
    check(info.value, lib, 2, 9, "division by zero", file=str(tmp_path / "lib.nas"))


# ---- bytes and bounds of the parser ---------------------------------------------------------
def test_invalid_utf8():
    e = diag(b'space s() {\n    let a = "\xff"\n}\n')
    check(e, 'space s() {\n    let a = "\ufffd"\n}\n', 2, 14, "not valid UTF-8 (byte 0xff)")


@pytest.mark.parametrize("text", [
    "space s() {\n    let a\x00 = 1\n}\n",
    b"space s() {\n    let a\x00 = 1\n}\n",
])
def test_nul_byte(text):
    e = diag(text)
    assert (e.loc.file, e.loc.line, e.loc.col) == (FILE, 2, 10)
    assert "NUL byte" in e.message
    lines = e.render().splitlines()
    assert lines[0].startswith(f"{FILE}:2:10: error: NUL byte")
    assert lines[2].index("^") == len("   2 | ") + 9


def test_tabs_and_crlf_keep_the_caret_aligned():
    text = ("import nn\r\nspace s() {\r\n\tinput x: image(3)\r\n\tlet a = 1 // 0\r\n"
            "\toutput x\r\n}\r\n")
    e = diag(text)
    check(e, text, 4, 10, "division by zero")
    assert e.render().splitlines()[1] == "   4 |  let a = 1 // 0"


def test_utf8_byte_order_mark_is_accepted():
    space = nasc.parse(b"\xef\xbb\xbfspace s() {\n    input x: image(3)\n    output x\n}\n")
    assert space.count() == 1


def test_file_too_large():
    e = diag(b"#" * (2 << 20))
    assert "limit" in e.message


def test_integer_literal_too_large():
    text = "let a = 99999999999999999999\n"
    e = diag(text)
    check(e, text, 1, 9, f"integer literal too large (the limit is {MAX_INT})")
    assert e.render().splitlines()[2].endswith("^" + "~" * 19)


def test_largest_integer_literal_is_accepted():
    parse_module(f"let a = {MAX_INT}\n")


def test_integer_literal_with_leading_zeros():
    parse_module("let a = 00000000000000000001\n")
    text = "let a = 0000000000000000000099999999999999999999\n"
    check(diag(text), text, 1, 9, "integer literal too large")


def test_brackets_nested_too_deep():
    n = MAX_BRACKET_DEPTH + 6
    text = "let a = " + "[" * n + "]" * n + "\n"
    e = diag(text)
    check(e, text, 1, 9 + MAX_BRACKET_DEPTH, f"brackets nested deeper than {MAX_BRACKET_DEPTH}")


def test_brackets_in_strings_and_comments_do_not_count():
    n = MAX_BRACKET_DEPTH + 6
    parse_module('let a = "' + "(" * n + '"  # ' + "[" * n + "\nlet b = \"\\\\\" # {\n")


def test_expression_nested_too_deep_is_an_error_not_a_recursion_error():
    text = "let a = 1" + "+1" * 5000 + "\n"
    e = diag(text)
    # the deepest operand past the limit: the right operand of the BinOp at depth 200
    check(e, text, 1, 9 + 2 * (5000 - MAX_EXPR_DEPTH), f"nested deeper than {MAX_EXPR_DEPTH}")
    assert "split it with 'let'" in e.message


@pytest.mark.parametrize("expr", [
    "1" + "+1" * 5000,
    "not " * 5000 + "true",
    "-" * 5000 + "1",
    "x" + ".a" * 5000,
    "f" + "()" * 5000,
    "x" + "[0]" * 5000,
    "a" + " ? a : a" * 3000,
    "1" + " or 1" * 3000,
], ids=["plus", "not", "neg", "attr", "call", "index", "ternary", "or"])
def test_deep_expressions_are_refused(expr):
    with pytest.raises(nasc.NasError, match="nested deeper than"):
        parse_module(f"let a = {expr}\n")
    with pytest.raises(nasc.NasError, match="nested deeper than"):
        parse_expr(expr)


def test_expression_at_the_depth_limit_is_accepted():
    parse_module("let a = 1" + "+1" * (MAX_EXPR_DEPTH - 1) + "\n")


# ---- names and calls ------------------------------------------------------------------------
def test_undefined_name_suggests_a_close_one():
    text = "import darts_ops\nspace s() {\n    input x: image(3)\n" \
           "    let y = sep_conv_3x4(x, 16)\n    output y\n}\n"
    e = diag(text)
    check(e, text, 4, 13, "'sep_conv_3x4' is not defined")
    assert "(did you mean 'sep_conv_3x3'?)" in e.message
    assert e.render().splitlines()[2].endswith("^" + "~" * (len("sep_conv_3x4") - 1))


def test_undefined_name_without_a_close_one():
    text = HEAD + "    let y = zzz(x)\n    output y\n}\n"
    e = diag(text)
    check(e, text, 4, 13, "'zzz' is not defined")
    assert "did you mean" not in e.message


def test_unknown_parameter_of_a_call():
    text = HEAD + "    let y = conv2d(x, 16, kk=3)\n    output y\n}\n"
    e = diag(text)
    check(e, text, 4, 13, "conv2d has no parameter 'kk'")
    assert "(did you mean 'k'?)" in e.message


def test_unknown_parameter_of_a_stdlib_space():
    with pytest.raises(nasc.NasError) as info:
        nasc.load("darts", CC=16)
    e = info.value
    assert "space 'darts' has no parameter 'CC'" in e.message
    assert "(did you mean 'C'?)" in e.message
    assert "its parameters: C, layers" in e.message
    assert e.render().startswith("error: space 'darts' has no parameter 'CC'")


def test_unknown_parameter_of_a_parsed_space():
    e = diag("space s(width: int = 1) {\n    input x: image(3)\n    output x\n}\n", widht=3)
    assert "space 's' has no parameter 'widht' (did you mean 'width'?)" in e.message


def test_unknown_stdlib_space():
    with pytest.raises(nasc.NasError, match=r"no stdlib space 'dart' \(did you mean 'darts'"):
        nasc.load("dart")


def test_bad_value_for_a_space_parameter_points_at_the_space():
    text = "space s(C: int = 1) {\n    input x: image(3)\n    output x\n}\n"
    e = diag(text, C="wide")
    check(e, text, 1, 1, "s: 'C' must be int, got str \"wide\"")


def test_missing_argument():
    text = HEAD + "    let y = conv2d(x)\n    output y\n}\n"
    check(diag(text), text, 4, 13, "conv2d: missing argument 'C'")


def test_too_many_arguments():
    text = HEAD + "    let y = relu(x, 1)\n    output y\n}\n"
    check(diag(text), text, 4, 13, "relu takes 1 arguments, got 2")


def test_wrong_argument_type():
    text = HEAD + "    let y = conv2d(x, x)\n    output y\n}\n"
    e = diag(text)
    check(e, text, 4, 13, "conv2d: 'C' must be int, got tensor image[C=3, s=1]")
    assert e.message.count("image[C=3, s=1]") == 1  # the type once, not type and value


def test_wrong_argument_type_shows_the_value():
    text = HEAD + "    let y = conv2d(x, 8, bias=1)\n    output y\n}\n"
    check(diag(text), text, 4, 13, "conv2d: 'bias' must be bool, got int 1")


def test_value_choice_of_the_wrong_type_for_a_parameter():
    text = HEAD + "    let c = choose {8, 1.5} @\"c\"\n    output conv2d(x, c)\n}\n"
    check(diag(text), text, 5, 12, "conv2d: 'C' must be int, but value choice 'c' can be 1.5")


def test_calling_a_non_callable():
    text = HEAD + "    let a = 3\n    let y = a(x)\n    output y\n}\n"
    check(diag(text), text, 5, 13, "is not callable")


def test_calling_a_space():
    text = HEAD + "    output s()\n}\n"
    check(diag(text), text, 4, 12, "'s' is a space; only blocks and ops can be called")


# ---- tensor types ---------------------------------------------------------------------------
def test_sum_of_tensors_with_different_channels():
    text = HEAD + ("    let a = conv2d(x, 32)\n    let b = conv2d(x, 64)\n"
                   "    output sum([a, b])\n}\n")
    e = diag(text)
    check(e, text, 6, 12, "sum of tensors with different types")
    assert "image[C=32, s=1]" in e.message and "image[C=64, s=1]" in e.message
    assert len(e.notes) == 2
    check_note(e.notes[0], text, 4, 13, "item 0 has type image[C=32, s=1]")
    check_note(e.notes[1], text, 5, 13, "item 1 has type image[C=64, s=1]")
    rendered = e.render().split("\n")
    assert len(rendered) == 9
    check_render("\n".join(rendered[3:6]), FILE, 4, 13, text.splitlines()[3], kind="note")
    check_render("\n".join(rendered[6:9]), FILE, 5, 13, text.splitlines()[4], kind="note")


def test_plus_of_tensors_with_different_channels():
    text = HEAD + "    let a = conv2d(x, 32)\n    output a + x\n}\n"
    e = diag(text)
    check(e, text, 5, 12, "sum of tensors with different types")
    assert "image[C=32, s=1]" in e.message and "image[C=3, s=1]" in e.message


def test_op_choice_candidates_with_different_output_types():
    text = ("import nn\nblock c32(x) { return conv2d(x, 32) }\n"
            "block c64(x) { return conv2d(x, 64) }\nspace s() {\n    input x: image(3)\n"
            "    let y = choose [c32, c64] @\"op\" (x)\n    output y\n}\n")
    e = diag(text)
    check(e, text, 6, 13, "choice of tensors with different types")
    assert "candidate 'c32' is image[C=32, s=1]" in e.message
    assert "candidate 'c64' is image[C=64, s=1]" in e.message
    check_note(e.notes[0], text, 2, 23, "candidate 'c32' has type image[C=32, s=1]")
    check_note(e.notes[1], text, 3, 23, "candidate 'c64' has type image[C=64, s=1]")


def test_concat_of_different_strides():
    text = HEAD + ("    let a = conv2d(x, 8)\n    let b = conv2d(x, 8, stride=2)\n"
                   "    output concat([a, b])\n}\n")
    e = diag(text)
    check(e, text, 6, 12, "concat of tensors with different types")
    assert "s=1" in e.message and "s=2" in e.message
    check_note(e.notes[1], text, 5, 13, "item 1 has type image[C=8, s=2]")


def test_op_requirement_failing_uses_the_message_of_the_declaration():
    text = HEAD + "    let y = conv2d(x, 16, groups=2)\n    output y\n}\n"
    e = diag(text)
    check(e, text, 4, 13, "conv2d: channels must divide into groups")
    assert "groups=2" in e.message
    (note,) = e.notes
    assert (note.loc.file, note.loc.line, note.loc.col) == ("nn.nas", 7, 13)
    assert note.message == "required here"
    check_render(e.render().split("\n", 3)[3], "nn.nas", 7, 13, nn_line(7), kind="note")


def test_op_requirement_failing_under_one_value_of_a_choice():
    text = HEAD + "    let g = choose {1, 2} @\"g\"\n    output conv2d(x, 8, groups=g)\n}\n"
    e = diag(text)
    check(e, text, 5, 12, "channels must divide into groups")
    assert "when g=2" in e.message


def test_op_output_type_error_points_at_the_call():
    text = HEAD + "    output conv2d(x, 0)\n}\n"
    e = diag(text)
    check(e, text, 4, 12, "conv2d: channels must be a positive integer, got 0")
    (note,) = e.notes
    assert (note.loc.file, note.loc.line, note.loc.col) == ("nn.nas", 6, 8)
    assert note.message == "in the declaration of 'conv2d'"
    check_render(e.render().split("\n", 3)[3], "nn.nas", 6, 8, nn_line(6), kind="note")


@pytest.mark.parametrize("expr, phrase", [
    ("conv2d(x, c - 4)", "conv2d: channels must be a positive integer, but is -2 when c=2"),
    ("conv2d(x, 8, stride=c - 2)", "conv2d: stride must be a positive integer, but is 0 when c=2"),
])
def test_value_choice_giving_a_non_positive_dimension(expr, phrase):
    text = HEAD + f"    let c = choose {{2, 4}} @\"c\"\n    output {expr}\n}}\n"
    check(diag(text), text, 5, 12, phrase)


# ---- choices --------------------------------------------------------------------------------
def test_value_choice_in_an_if_condition():
    text = HEAD + ("    let c = choose {16, 32} @\"c\"\n    if c > 16 {\n"
                   "        x = conv2d(x, 8)\n    }\n    output x\n}\n")
    e = diag(text)
    check(e, text, 5, 8, "a value choice cannot decide structure")
    assert "use an op choice, 'optional' or 'repeat'" in e.message


@pytest.mark.parametrize("stmt, col", [
    ("let a = [x, x][c]", 20),
    ("for i in 0..c { }", 14),
    ("let a = c == 1 ? 1 : 2", 13),
])
def test_value_choice_deciding_structure_elsewhere(stmt, col):
    text = HEAD + f"    let c = choose {{0, 1}} @\"c\"\n    {stmt}\n    output x\n}}\n"
    check(diag(text), text, 5, col, "a value choice cannot decide structure")


def test_label_reused_for_different_decisions():
    text = HEAD + ("    let a = choose {16, 32} @\"w\"\n    let b = choose {8, 64} @\"w\"\n"
                   "    output conv2d(x, a + b)\n}\n")
    e = diag(text)
    check(e, text, 5, 13, "label 'w' names two different decisions")
    assert "{8, 64}" in e.message and "{16, 32}" in e.message
    (note,) = e.notes
    check_note(note, text, 4, 13, "first used here")
    check_render(e.render().split("\n", 3)[3], FILE, 4, 13, text.splitlines()[3], kind="note")


def test_label_reused_for_the_same_decision_is_shared():
    text = HEAD + ("    let a = choose {16, 32} @\"w\"\n    let b = choose {16, 32} @\"w\"\n"
                   "    output conv2d(x, a + b)\n}\n")
    assert nasc.parse(text).count() == 2


def test_pick_never_merged():
    text = HEAD + "    let a = conv2d(x, 8)\n    let p = pick 1 of [x, a] @\"p\"\n    output a\n}\n"
    e = diag(text)
    check(e, text, 5, 13, "this pick is never merged")


def test_pick_of_too_many():
    text = HEAD + "    output sum(pick 3 of [x, x] @\"p\")\n}\n"
    check(diag(text), text, 4, 16, "cannot pick 3..3 of 2 inputs")


def test_repeat_body_that_changes_no_tensor():
    text = HEAD + ("    repeat {1, 2} @\"d\" {\n        let t = conv2d(x, 8)\n    }\n"
                   "    output x\n}\n")
    e = diag(text)
    check(e, text, 4, 5, "the repeated body changes no tensor outside it")


def test_repeat_that_changes_the_type():
    text = HEAD + "    repeat {0, 1} @\"d\" {\n        x = conv2d(x, 8)\n    }\n    output x\n}\n"
    e = diag(text)
    check(e, text, 4, 5, "repeat of tensors with different types")
    assert "depth 0 is image[C=3, s=1], depth 1 is image[C=8, s=1]" in e.message


def test_value_choice_listing_a_value_twice():
    text = HEAD + "    let c = choose {1, 1} @\"c\"\n    output x\n}\n"
    check(diag(text), text, 4, 13, "a value choice lists a value twice")


# ---- statements -----------------------------------------------------------------------------
def test_let_redefinition():
    text = HEAD + "    let a = 1\n    let a = 2\n    output x\n}\n"
    e = diag(text)
    check(e, text, 5, 5, "'a' is already defined here; use 'a = ...'")


def test_top_level_let_defined_twice():
    text = "let a = 1\nlet a = 2\nspace s() {\n    input x: image(3)\n    output x\n}\n"
    e = diag(text)
    check(e, text, 2, 1, "'a' is defined twice")
    check_note(e.notes[0], text, 1, 1, "first defined here")


def test_assignment_to_undefined_name():
    text = HEAD + "    let count = 1\n    cuont = 2\n    output x\n}\n"
    e = diag(text)
    check(e, text, 5, 5, "assignment to undefined 'cuont'; use 'let'")
    assert "(did you mean 'count'?)" in e.message


def test_augmented_assignment_to_undefined_name():
    text = HEAD + "    total += 1\n    output x\n}\n"
    check(diag(text), text, 4, 5, "'total' is not defined")


def test_space_without_output():
    text = "space s() {\n    input x: image(3)\n}\n"
    check(diag(text), text, 1, 1, "space 's' has no 'output'")


def test_output_of_a_non_tensor():
    text = HEAD + "    output 3\n}\n"
    check(diag(text), text, 4, 12, "'output' must be a tensor, got int")


def test_assertion_with_message():
    text = HEAD + "    assert 1 == 2, \"one is {1 + 1}\"\n    output x\n}\n"
    check(diag(text), text, 4, 5, "assertion failed: one is 2")


# ---- modules --------------------------------------------------------------------------------
def test_import_of_unknown_stdlib_module():
    text = "import nnn\nspace s() {\n    input x: image(3)\n    output x\n}\n"
    e = diag(text)
    check(e, text, 1, 1, "no stdlib module 'nnn'")
    assert "(did you mean 'nn'?)" in e.message


def test_import_of_missing_file(tmp_path):
    text = 'import "nowhere.nas"\nspace s() {\n    input x: image(3)\n    output x\n}\n'
    (tmp_path / "main.nas").write_text(text)
    with pytest.raises(nasc.NasError) as info:
        nasc.load(str(tmp_path / "main.nas"))
    check(info.value, text, 1, 1, "no file 'nowhere.nas' to import",
          file=str(tmp_path / "main.nas"))


def _cycle(tmp_path: Path) -> Path:
    (tmp_path / "a.nas").write_text(
        'import "b.nas"\nspace s() {\n    input x: image(3)\n    output x\n}\n')
    (tmp_path / "b.nas").write_text('import "a.nas"\n')
    return tmp_path / "a.nas"


def test_import_cycle_between_two_files(tmp_path):
    with pytest.raises(nasc.NasError) as info:
        nasc.load(str(_cycle(tmp_path)))
    msg = info.value.message
    assert msg.startswith("import cycle: ")
    assert msg.count("a.nas") == 2 and msg.count("b.nas") == 1
    assert msg.index("a.nas") < msg.index("b.nas") < msg.rindex("a.nas")


def test_import_cycle_by_module_name(tmp_path):
    (tmp_path / "c.nas").write_text(
        'import d\nspace s() {\n    input x: image(3)\n    output x\n}\n')
    (tmp_path / "d.nas").write_text("import c\n")
    with pytest.raises(nasc.NasError, match="import cycle: .*c.nas -> .*d.nas -> .*c.nas"):
        nasc.load(str(tmp_path / "c.nas"))


def test_import_cycle_is_located_at_the_import(tmp_path):
    with pytest.raises(nasc.NasError) as info:
        nasc.load(str(_cycle(tmp_path)))
    check(info.value, 'import "a.nas"\n', 1, 1, "import cycle", file=str(tmp_path / "b.nas"))


# ---- bounds of elaboration ------------------------------------------------------------------
def test_max_nodes():
    text = HEAD + "    for i in 0..100 {\n        x = relu(x)\n    }\n    output x\n}\n"
    e = diag(text, limits=nasc.Limits(max_nodes=50))
    check(e, text, 5, 9, "the space has over 50 nodes")


LOOP = HEAD + ("    for i in 0..100000 {\n        for j in 0..100000 {\n        }\n    }\n"
               "    output x\n}\n")


def test_max_steps():
    e = diag(LOOP, limits=nasc.Limits(max_steps=1000))
    check(e, LOOP, 5, 9, "elaboration takes over 1000 steps")


def test_default_max_steps_stops_a_ten_billion_step_loop():
    e = diag(LOOP)
    check(e, LOOP, 5, 9, f"elaboration takes over {nasc.Limits().max_steps} steps")


RECURSIVE = "block f(x, n: int) {\n    return f(x, n + 1)\n}\n" \
            "space s() {\n    input x: image(3)\n    output f(x, 0)\n}\n"


@pytest.mark.parametrize("limits", [nasc.Limits(max_call_depth=10), None])
def test_max_call_depth(limits):
    depth = (limits or nasc.Limits()).max_call_depth
    e = diag(RECURSIVE, limits=limits)
    check(e, RECURSIVE, 2, 12, f"calls nested deeper than {depth}")


@pytest.mark.parametrize("depth", [10, 150])
def test_recursion_inside_an_expression_is_a_nas_error(depth):
    # Python's stack grows with call depth times expression depth: this used to escape as a
    # RecursionError with max_call_depth=64 and an expression only 11 deep
    text = ("block f(n: int) {\n    return f(n + 1)" + " + 0" * depth + "\n}\n"
            "space s() {\n    input x: image(3)\n    let a = f(0)\n    output x\n}\n")
    e = diag(text)
    assert e.loc is not None and e.loc.file == FILE
    assert "too deeply" in e.message or "nested deeper than" in e.message


def test_recursion_limit_is_not_hit_by_the_default_bounds_with_shallow_expressions():
    # the same recursion with a plain body stops at max_call_depth
    text = ("block f(n: int) {\n    return f(n + 1)\n}\n"
            "space s() {\n    input x: image(3)\n    let a = f(0)\n    output x\n}\n")
    assert sys.getrecursionlimit() >= 1000
    check(diag(text), text, 2, 12, "calls nested deeper than")


def test_max_list_for_a_comprehension_over_a_range():
    text = HEAD + "    let a = [i for i in 0..50]\n    output x\n}\n"
    check(diag(text, limits=nasc.Limits(max_list=10)), text, 4, 25,
          "a range of 50 items exceeds 10")


def test_max_list_for_a_growing_list():
    text = HEAD + "    let a = [1, 2, 3]\n    for i in 0..5 {\n        a = a + a\n    }\n" \
                  "    output x\n}\n"
    check(diag(text, limits=nasc.Limits(max_list=10)), text, 6, 13, "a list longer than 10 items")


def test_max_str():
    text = HEAD + "    let a = \"ab\"\n    for i in 0..5 {\n        a = a + a\n    }\n" \
                  "    output x\n}\n"
    check(diag(text, limits=nasc.Limits(max_str=10)), text, 6, 13,
          "string longer than 10 characters")


def test_max_alloc():
    text = HEAD + "    for i in 0..100 {\n        let a = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n" \
                  "    }\n    output x\n}\n"
    check(diag(text, limits=nasc.Limits(max_alloc=100)), text, 5, 17,
          "elaboration built over 100 list items")


def test_max_options():
    text = HEAD + "    let c = choose {1..100} @\"c\"\n    output conv2d(x, c)\n}\n"
    check(diag(text, limits=nasc.Limits(max_options=10)), text, 4, 21,
          "a choice with over 10 options")


def test_max_int():
    text = "let a = 1000 * 1000\nspace s() {\n    input x: image(3)\n    output x\n}\n"
    check(diag(text, limits=nasc.Limits(max_int=1000)), text, 1, 9,
          "integer 1000000 exceeds the limit of 1000")


def test_indexing_a_huge_range_does_not_build_it():
    big = MAX_INT
    text = HEAD + (f"    assert (0..{big})[5] == 5\n"
                   f"    assert (0..{big})[-1] == {big - 1}\n"
                   f"    assert (0..{big})[1:3] == 1..3\n"
                   f"    assert len((0..{big})[10:]) == {big - 10}\n"
                   "    output x\n}\n")
    assert nasc.parse(text).count() == 1


def test_index_out_of_range_of_a_range():
    text = HEAD + "    let a = (0..10)[-100]\n    output x\n}\n"
    check(diag(text), text, 4, 21, "index -100 out of range for length 10")


# ---- arithmetic -----------------------------------------------------------------------------
@pytest.mark.parametrize("expr, value", [
    ("9223372036854775807 + 1", 9223372036854775808),
    ("4611686018427387904 * 4", 18446744073709551616),
    ("-9223372036854775807 - 2", -9223372036854775809),
])
def test_integer_overflow_at_elaboration(expr, value):
    text = f"let a = {expr}\nspace s() {{\n    input x: image(3)\n    output x\n}}\n"
    e = diag(text)
    check(e, text, 1, 9, f"integer {value} exceeds the limit of {MAX_INT}")


@pytest.mark.parametrize("expr", ["1 // 0", "1 % 0", "1.0 / 0.0", "7 % 0.0"])
def test_division_by_zero(expr):
    text = HEAD + f"    let a = {expr}\n    output x\n}}\n"
    check(diag(text), text, 4, 13, "division by zero")


def test_division_by_a_value_choice_that_can_be_zero():
    text = HEAD + "    let c = choose {0, 2} @\"c\"\n    output conv2d(x, 8 // c)\n}\n"
    check(diag(text), text, 5, 22, "division by zero when c=0")


@pytest.mark.parametrize("expr, col", [("int(1e300 * 1e300)", 17), ("1e308 + 1e308", 13)])
def test_arithmetic_giving_a_non_finite_float(expr, col):
    text = HEAD + f"    let a = {expr}\n    output x\n}}\n"
    check(diag(text), text, 4, col, "numbers must stay finite")


def test_int_of_a_large_float_respects_max_int():
    text = HEAD + "    let a = int(1e300)\n    output x\n}\n"
    check(diag(text), text, 4, 13, f"exceeds the limit of {MAX_INT}")


@pytest.mark.parametrize("index, col", [("3", 15), ("-4", 15)])
def test_index_out_of_range(index, col):
    text = HEAD + f"    let a = [1, 2, 3]\n    let b = a[{index}]\n    output x\n}}\n"
    check(diag(text), text, 5, col, f"index {index} out of range for length 3")


def test_operator_on_wrong_types():
    text = HEAD + "    let a = \"a\" * 3\n    output x\n}\n"
    check(diag(text), text, 4, 13, "cannot apply '*' to str and int")
