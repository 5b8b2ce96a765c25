"""The ``nasc`` command line: check, count, show and format ``.nas`` spaces.

Every error in the user's input is printed as ``FILE:LINE:COL: error: message`` with the source
line and a caret, and the exit status is 1. Set ``NASC_DEBUG=1`` to see tracebacks of internal
errors.
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nasc.dsl.diagnostics import NascError, NasError


def _target(arg: str) -> tuple[str | Path, bool]:
    """A CLI argument as a file path or a stdlib name."""
    p = Path(arg)
    if arg.endswith(".nas") or "/" in arg or p.is_file():
        return p, True
    return arg, False


def _define(text: str) -> tuple[str, Any]:
    """``-D name=value``: the value is a .nas literal (int, float, bool, string, list)."""
    from nasc.dsl import ast
    from nasc.dsl.diagnostics import Sources
    from nasc.dsl.elaborate import Elaborator, Scope
    from nasc.dsl.modules import ModuleEnv
    from nasc.dsl.parser import parse_expr

    if "=" not in text:
        raise NasError(f"-D expects name=value, got {text!r}")
    name, value = text.split("=", 1)
    name = name.strip()
    if not name.isidentifier():
        raise NasError(f"-D: {name!r} is not a parameter name")
    try:
        expr = parse_expr(value, f"-D {name}")
    except NasError:
        return name, value
    if isinstance(expr, ast.Name) and expr.id not in ("true", "false"):
        return name, value  # a bare word is a string: -D act=relu
    el = Elaborator(Sources())
    el.toplevel = True  # a value, not a choice
    env = ModuleEnv(name="-D", file="-D", ast=ast.Module(file="-D", items=()))
    try:
        return name, el.eval(expr, Scope(), env)
    except RecursionError:
        raise NasError(f"-D {name}: value nested too deeply") from None


def _load(args: argparse.Namespace):
    import nasc

    params = dict(_define(d) for d in args.define or [])
    target, is_file = _target(args.space)
    extra = {"space": args.entry} if getattr(args, "entry", None) else {}
    if is_file:
        return nasc.load(
            str(target)
            if str(target).endswith(".nas") or "/" in str(target)
            else "./" + str(target),
            **extra,
            **params,
        )
    return nasc.load(str(target), **extra, **params)


def cmd_check(args: argparse.Namespace) -> int:
    space = _load(args)
    n = space.count()
    print(
        f"ok: space {space.name!r}: {len(space.graph)} nodes, {len(space.specs)} labels, "
        f"{n:,} architectures"
    )
    return 0


def cmd_count(args: argparse.Namespace) -> int:
    print(_load(args).count())
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    space = _load(args)
    console = Console(highlight=False, soft_wrap=True)
    if args.ir:
        console.out(str(space))
    g = space.graph
    console.print(
        f"[bold]space {escape(space.name)}[/bold]"
        + escape(f"({', '.join(f'{k}={v!r}' for k, v in space.params.items())})")
    )
    kinds = collections.Counter(type(r).__name__ for r in g)
    ops = collections.Counter(r.op for r in g if hasattr(r, "op") and isinstance(r.op, str))
    console.print(
        "nodes: " + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())) + f" ({len(g)} in all)"
    )
    if ops:
        console.print(escape("ops: " + ", ".join(f"{k}×{v}" for k, v in sorted(ops.items()))))
    from nasc.ir.nodes import Input, Output

    for r in g.nodes_of(Input):
        console.print(escape(f"input  {r.name}: {r.type}"))
    for r in g.nodes_of(Output):
        console.print(escape(f"output {r.name}: {r.type}"))
    specs = space.specs
    if specs:
        table = Table(title=f"{len(specs)} choices", show_lines=False)
        for col in ("label", "kind", "options", "active when"):
            table.add_column(col, overflow="fold")
        shown = list(specs.values())
        limit = None if args.all else 40
        for s in shown[:limit]:
            opts = ", ".join(str(o) for o in s.options)
            if s.kind == "input":
                k = s.k_min if s.k_min == s.k_max else f"{s.k_min}..{s.k_max}"
                opts = f"{k} of {len(s.options)}"
            table.add_row(escape(s.label), s.kind, escape(opts), escape(str(s.guard)))
        console.print(table)
        if limit is not None and len(shown) > limit:
            console.print(f"... and {len(shown) - limit} more (--all shows every choice)")
    console.print(f"architectures: {space.count():,}")
    if args.dot:
        _write_dot(space, Path(args.dot), console)
    return 0


def _write_dot(space, path: Path, console) -> None:
    from nasc.ir.dot import to_dot

    path.write_text(to_dot(space.graph, space.name))
    console.print(f"wrote {path}")
    dot = shutil.which("dot")
    if dot is None:
        console.print("(install Graphviz's 'dot' to also get PNG and SVG pictures)")
        return
    for fmt in ("svg", "png"):
        out = path.with_suffix(f".{fmt}")
        subprocess.run([dot, f"-T{fmt}", str(path), "-o", str(out)], check=True, timeout=300)
        console.print(f"wrote {out}")


def cmd_fmt(args: argparse.Namespace) -> int:
    from nasc.dsl.format import format_module
    from nasc.dsl.parser import parse_module

    path = Path(args.file)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise NasError(f"cannot read {path}: {e.strerror}") from None
    text = format_module(parse_module(data, str(path)))
    if args.check:
        same = data.decode("utf-8", "replace") == text
        if not same:
            print(f"{path}: would reformat", file=sys.stderr)
        return 0 if same else 1
    if args.write:
        path.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    import json

    from nasc.search import search

    params = dict(_define(d) for d in args.define or [])
    result = search(args.space, method=args.method, data=args.data, epochs=args.epochs,
                    retrain_epochs=args.retrain_epochs, seed=args.seed, out=args.out,
                    space_params=params)
    r = result.report
    print(f"test accuracy {r['test_accuracy']:.4f} · {r['parameters']:,} parameters · "
          f"{r['flops']:,} MACs · search {r['timings']['search_s']:.0f} s, retrain "
          f"{r['timings']['retrain_s']:.0f} s")
    print(json.dumps(r["architecture"]["choices"], sort_keys=True))
    if result.out is not None:
        print(f"wrote {result.out}/ (architecture.json, derived.nas, report.json, metrics.jsonl, "
              "checkpoint.pt, derived.dot)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="nasc", description="A compiler for neural-architecture-search spaces (.nas files)."
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def space_cmd(name: str, help_: str):
        sp = sub.add_parser(name, help=help_, description=help_)
        sp.add_argument("space", metavar="FILE|NAME", help="a .nas file or a stdlib space name")
        sp.add_argument(
            "-D",
            dest="define",
            action="append",
            metavar="NAME=VALUE",
            help="set a space parameter (repeatable), e.g. -D C=16",
        )
        sp.add_argument(
            "--space", dest="entry", metavar="SPACE", help="which space of a file with several"
        )
        return sp

    space_cmd("check", "parse, elaborate and verify a space").set_defaults(fn=cmd_check)
    space_cmd("count", "print the exact number of architectures").set_defaults(fn=cmd_count)
    sp = space_cmd("show", "summarise nodes, types and choices")
    sp.add_argument("--dot", metavar="FILE", help="write a Graphviz picture (and PNG/SVG with dot)")
    sp.add_argument("--ir", action="store_true", help="print the IR, one line per node")
    sp.add_argument("--all", action="store_true", help="list every choice")
    sp.set_defaults(fn=cmd_show)
    sr = sub.add_parser("search", help="search a space on data, derive, retrain and report",
                        description="search a space on data, derive, retrain and report")
    sr.add_argument("space", metavar="SPACE", help="a stdlib space name or a .nas file")
    sr.add_argument("--method", default="darts", help="darts, pc-darts, gdas, snas, spos, ...")
    sr.add_argument("--data", default="digits", help="a built-in data set (digits)")
    sr.add_argument("--epochs", type=int, help="search epochs (default: per data set)")
    sr.add_argument("--retrain-epochs", type=int, help="retraining epochs of the derived net")
    sr.add_argument("--seed", type=int, default=0)
    sr.add_argument("--out", metavar="DIR", help="run directory for the results")
    sr.add_argument("-D", dest="define", action="append", metavar="NAME=VALUE",
                    help="override a space parameter of the search network")
    sr.set_defaults(fn=cmd_search)
    fp = sub.add_parser(
        "fmt",
        help="format a .nas file canonically",
        description="format a .nas file canonically (to stdout by default)",
    )
    fp.add_argument("file", metavar="FILE")
    fp.add_argument("--write", action="store_true", help="rewrite the file in place")
    fp.add_argument("--check", action="store_true", help="exit 1 if the file is not formatted")
    fp.set_defaults(fn=cmd_fmt)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except NascError as e:
        print(str(e), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except (RecursionError, MemoryError) as e:
        print(f"error: input too complex to process ({type(e).__name__})", file=sys.stderr)
        return 1
    except Exception as e:  # noqa: BLE001 - a bug in nasc: say so, without a traceback
        if os.environ.get("NASC_DEBUG"):
            raise
        print(
            f"internal error: {type(e).__name__}: {e}\n(this is a bug in nasc; rerun with "
            "NASC_DEBUG=1 for a traceback)",
            file=sys.stderr,
        )
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
