"""The ``nasc`` command line, driven through ``nasc.cli.main(argv)``.

User errors exit with status 1 and print ``FILE:LINE:COL: error: ...`` to stderr, never a
traceback; bugs in nasc exit with status 2.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import nasc.cli
from nasc.cli import main

GOOD = """\
import nn

space tiny(C: int = 4) {
    input x: image(3)
    let y = choose [conv2d, conv2d[k=5]] @"op" (x, C)
    output linear(global_avg_pool(y), 10)
}
"""

# valid, but not in canonical form
UGLY = """import nn
space   tiny( C : int=4 ) { input x: image(3)   # the input
  let y = choose [conv2d,conv2d[k=5]] @"op" (x,C) ; output linear(global_avg_pool(y),10) }
"""

BAD = """\
import nn

space tiny() {
    input x: image(3)
    let y = conv2d(x, 8, kk=3)
    output y
}
"""


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_clean_error(code: int, err: str) -> None:
    assert code == 1, err
    assert "Traceback" not in err
    assert "internal error" not in err
    assert err.strip()


@pytest.fixture
def good(tmp_path: Path) -> Path:
    p = tmp_path / "tiny.nas"
    p.write_text(GOOD)
    return p


@pytest.fixture(autouse=True)
def _no_graphviz(monkeypatch):
    """``show --dot`` also runs Graphviz when it is installed; keep the tests hermetic."""
    monkeypatch.setattr(nasc.cli.shutil, "which", lambda name: None)


# ---- count / check / show -------------------------------------------------------------------
def test_count_darts(capsys):
    assert run(capsys, "count", "darts") == (0, "1076746950455072400\n", "")


def test_count_nas_bench_201(capsys):
    assert run(capsys, "count", "nas_bench_201") == (0, "15625\n", "")


def test_count_file(capsys, good):
    assert run(capsys, "count", str(good)) == (0, "2\n", "")


def test_check_stdlib_name(capsys):
    code, out, err = run(capsys, "check", "nas_bench_201")
    assert code == 0, err
    assert out.startswith("ok: space 'nas_bench_201': ")
    assert "6 labels" in out and "15,625 architectures" in out


def test_check_file_path(capsys, good):
    code, out, err = run(capsys, "check", str(good))
    assert code == 0, err
    assert re.fullmatch(r"ok: space 'tiny': \d+ nodes, 1 labels, 2 architectures\n", out)


def test_check_file_in_the_current_directory(capsys, good, monkeypatch):
    monkeypatch.chdir(good.parent)
    code, out, _ = run(capsys, "check", good.name)
    assert code == 0 and "space 'tiny'" in out


def test_show_darts(capsys):
    code, out, err = run(capsys, "show", "darts")
    assert code == 0, err
    assert out.startswith("space darts(C=16, layers=8")
    assert "36 choices" in out
    for label in ("normal.n0.in", "normal.n0.op0", "reduce.n0.in"):
        assert label in out
    assert "sep_conv_3x3" in out
    assert "input  x: image[C=3, s=1]" in out
    assert "architectures: 1,076,746,950,455,072,400" in out


def test_show_all_and_ir(capsys, good):
    code, out, err = run(capsys, "show", str(good), "--all", "--ir")
    assert code == 0, err
    assert "1 choices" in out and "op" in out
    assert "architectures: 2" in out


def test_show_dot_writes_a_graphviz_file(capsys, tmp_path):
    dot = tmp_path / "nb201.dot"
    code, out, err = run(capsys, "show", "nas_bench_201", "--dot", str(dot))
    assert code == 0, err
    text = dot.read_text()
    assert text.startswith("digraph")
    assert text.rstrip().endswith("}")
    assert f"wrote {dot}" in out


# ---- -D parameters --------------------------------------------------------------------------
def test_define_sets_a_parameter(capsys):
    code, out, err = run(capsys, "show", "darts", "-D", "C=8", "-D", "layers=5")
    assert code == 0, err
    assert out.startswith("space darts(C=8, layers=5,")
    assert "architectures: 1,076,746,950,455,072,400" in out


def test_define_changes_the_graph(capsys):
    _, small, _ = run(capsys, "check", "nas_bench_201", "-D", "N=1")
    _, default, _ = run(capsys, "check", "nas_bench_201")
    nodes = lambda s: int(re.search(r"(\d+) nodes", s).group(1))  # noqa: E731
    assert nodes(small) < nodes(default)


@pytest.mark.parametrize("value, shown", [
    ("true", "auxiliary=True"),
    ("false", "auxiliary=False"),
])
def test_define_bool(capsys, value, shown):
    code, out, err = run(capsys, "show", "darts", "-D", f"auxiliary={value}")
    assert code == 0, err
    assert shown in out


def test_define_unknown_parameter(capsys):
    code, out, err = run(capsys, "count", "darts", "-D", "unknown=1")
    assert_clean_error(code, err)
    assert "space 'darts' has no parameter 'unknown'" in err
    assert "its parameters: C, layers" in err
    assert out == ""


def test_define_misspelled_parameter_suggests_the_right_one(capsys):
    code, _, err = run(capsys, "count", "darts", "-D", "layer=5")
    assert_clean_error(code, err)
    assert "(did you mean 'layers'?)" in err


@pytest.mark.parametrize("arg, phrase", [
    ("C", "-D expects name=value"),
    ("=3", "is not a parameter name"),
    ("C=x", "'C' must be int, got str \"x\""),
    ("C=1 // 0", "division by zero"),
    ("C=0", "channels must be a positive integer, got 0"),
])
def test_bad_define(capsys, arg, phrase):
    code, _, err = run(capsys, "count", "darts", "-D", arg)
    assert_clean_error(code, err)
    assert phrase in err


@pytest.mark.parametrize("arg, phrase", [
    ('C=choose {8, 16} @"c"', "a choice at the top level"),  # used to be an internal error
    ('C=pick 1 of [1] @"p"', "a choice at the top level"),
    ("C=int(1e300 * 1e300)", "numbers must stay finite"),  # used to be an internal error
])
def test_define_with_an_expression_that_is_not_a_value(capsys, arg, phrase):
    code, _, err = run(capsys, "count", "darts", "-D", arg)
    assert_clean_error(code, err)
    assert phrase in err


# ---- errors ---------------------------------------------------------------------------------
def test_bad_file(capsys, tmp_path):
    p = tmp_path / "bad.nas"
    p.write_text(BAD)
    code, out, err = run(capsys, "check", str(p))
    assert_clean_error(code, err)
    assert out == ""
    lines = err.splitlines()
    assert lines[0] == f"{p}:5:13: error: conv2d has no parameter 'kk' (did you mean 'k'?)"
    assert lines[1] == "   5 |     let y = conv2d(x, 8, kk=3)"
    assert lines[2].index("^") == len("   5 | ") + 12


def test_syntax_error(capsys, tmp_path):
    p = tmp_path / "syntax.nas"
    p.write_text("space s() {\n    let a =\n}\n")
    code, _, err = run(capsys, "count", str(p))
    assert_clean_error(code, err)
    assert err.startswith(f"{p}:3:1: error: expected an expression")


@pytest.mark.parametrize("data", [
    bytes(range(256)),
    b"\x7fELF\x02\x01\x01\x00" + bytes(200),
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
    b"\xff\xfe\x00s\x00p\x00a\x00c\x00e",
])
def test_binary_garbage(capsys, tmp_path, data):
    p = tmp_path / "garbage.nas"
    p.write_bytes(data)
    for cmd in ("check", "count", "show", "fmt"):
        code, out, err = run(capsys, cmd, str(p))
        assert_clean_error(code, err)
        assert re.match(re.escape(str(p)) + r":\d+:\d+: error: ", err), err
        assert out == ""


def test_missing_file(capsys, tmp_path):
    code, _, err = run(capsys, "check", str(tmp_path / "nowhere.nas"))
    assert_clean_error(code, err)
    assert "cannot read" in err


def test_unknown_stdlib_name(capsys):
    code, _, err = run(capsys, "count", "dart")
    assert_clean_error(code, err)
    assert "no stdlib space 'dart' (did you mean 'darts'?)" in err


def test_import_cycle(capsys, tmp_path):
    (tmp_path / "a.nas").write_text('import "b.nas"\nspace s() {\n    input x: image(3)\n'
                                    '    output x\n}\n')
    (tmp_path / "b.nas").write_text('import "a.nas"\n')
    code, _, err = run(capsys, "check", str(tmp_path / "a.nas"))
    assert_clean_error(code, err)
    assert "import cycle" in err


def test_deep_expression(capsys, tmp_path):
    p = tmp_path / "deep.nas"
    p.write_text("let a = 1" + "+1" * 5000 + "\n")
    code, _, err = run(capsys, "check", str(p))
    assert_clean_error(code, err)
    assert "nested deeper than" in err


# ---- fmt ------------------------------------------------------------------------------------
def test_fmt_prints_canonical_text_that_is_stable(capsys, tmp_path):
    p = tmp_path / "ugly.nas"
    p.write_text(UGLY)
    code, once, err = run(capsys, "fmt", str(p))
    assert code == 0, err
    assert once != UGLY
    assert "# the input" in once
    assert p.read_text() == UGLY  # not written without --write
    q = tmp_path / "once.nas"
    q.write_text(once)
    code, twice, _ = run(capsys, "fmt", str(q))
    assert code == 0 and twice == once


def test_fmt_keeps_the_meaning(capsys, tmp_path):
    p = tmp_path / "ugly.nas"
    p.write_text(UGLY)
    _, before, _ = run(capsys, "count", str(p))
    assert run(capsys, "fmt", "--write", str(p))[0] == 0
    _, after, _ = run(capsys, "count", str(p))
    assert before == after == "2\n"


def test_fmt_write_rewrites_the_file(capsys, tmp_path):
    p = tmp_path / "ugly.nas"
    p.write_text(UGLY)
    _, expected, _ = run(capsys, "fmt", str(p))
    code, out, err = run(capsys, "fmt", "--write", str(p))
    assert (code, out, err) == (0, "", "")
    assert p.read_text() == expected


def test_fmt_check(capsys, tmp_path):
    p = tmp_path / "ugly.nas"
    p.write_text(UGLY)
    code, out, err = run(capsys, "fmt", "--check", str(p))
    assert code == 1
    assert out == ""
    assert f"{p}: would reformat" in err
    assert p.read_text() == UGLY

    run(capsys, "fmt", "--write", str(p))
    assert run(capsys, "fmt", "--check", str(p)) == (0, "", "")


@pytest.mark.parametrize("name", ["darts", "darts_ops", "nas_bench_201", "nn", "mobile_ops",
                                  "mobilenet_chain"])
def test_fmt_of_the_stdlib_is_stable(capsys, tmp_path, name):
    src = Path(nasc.__file__).parent.parent / "stdlib" / f"{name}.nas"
    code, once, err = run(capsys, "fmt", str(src))
    assert code == 0, err
    p = tmp_path / f"{name}.nas"
    p.write_text(once)
    assert run(capsys, "fmt", "--check", str(p)) == (0, "", "")


def test_fmt_of_a_bad_file_leaves_it_alone(capsys, tmp_path):
    p = tmp_path / "broken.nas"
    p.write_text("space s() {\n")
    code, out, err = run(capsys, "fmt", "--write", str(p))
    assert_clean_error(code, err)
    assert err.startswith(f"{p}:1:12: error: unclosed '{{'")
    assert p.read_text() == "space s() {\n"


def test_fmt_missing_file(capsys, tmp_path):
    code, _, err = run(capsys, "fmt", str(tmp_path / "nowhere.nas"))
    assert_clean_error(code, err)
    assert "cannot read" in err


# ---- the installed entry point --------------------------------------------------------------
def test_python_dash_m_nasc():
    proc = subprocess.run([sys.executable, "-m", "nasc", "count", "nas_bench_201"],
                          capture_output=True, text=True, timeout=120)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "15625\n", "")


def test_python_dash_m_nasc_error_exit_status(tmp_path):
    p = tmp_path / "bad.nas"
    p.write_text(BAD)
    proc = subprocess.run([sys.executable, "-m", "nasc", "check", str(p)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert f"{p}:5:13: error:" in proc.stderr and "Traceback" not in proc.stderr
