"""The ``nasc`` command line: check, count, show and format ``.nas`` spaces; search, derive,
train, export and profile (``nasc --help`` lists every command).

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

from nasc.dsl.diagnostics import NascError, NasError, UserCodeError


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
    from nasc.space import locate

    params = dict(_define(d) for d in args.define or [])
    extra = {"space": args.entry} if getattr(args, "entry", None) else {}
    return nasc.load(locate(args.space, cli=True), **extra, **params)


def cmd_check(args: argparse.Namespace) -> int:
    space = _load(args)
    n = space.count()
    print(
        f"ok: space {space.name!r}: {len(space.graph)} nodes, {len(space.specs)} labels, "
        f"{n:,} architectures"
    )
    return 0


def cmd_count(args: argparse.Namespace) -> int:
    space = _load(args)
    if args.unique:
        from nasc.space import MAX_UNIQUE

        print(space.count(unique=True, limit=args.limit or MAX_UNIQUE))
    else:
        print(space.count())
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
        _write_dot(space, Path(args.dot), console, overview=args.overview)
    return 0


def _write_dot(space, path: Path, console, *, overview: bool = False) -> None:
    from nasc.ir.dot import to_dot, to_overview_dot

    draw = to_overview_dot if overview else to_dot
    path.write_text(draw(space.graph, space.name))
    console.print(f"wrote {path}")
    if overview:  # the paper's pictures: each shared cell type once (nasc.ir.diagram)
        from nasc.search.diagrams import space_picture

        console.print(space_picture(space, path.with_suffix(".png")))
        return
    dot = shutil.which("dot")
    if dot is None:
        console.print("(install Graphviz's 'dot' to also get PNG and SVG pictures)")
        return
    for fmt in ("svg", "png"):
        out = path.with_suffix(f".{fmt}")
        subprocess.run([dot, f"-T{fmt}", str(path), "-o", str(out)], check=True, timeout=300)
        console.print(f"wrote {out}")


def cmd_fmt(args: argparse.Namespace) -> int:
    from nasc.dsl.files import read_regular
    from nasc.dsl.format import format_module
    from nasc.dsl.parser import MAX_FILE_BYTES, parse_module

    path = Path(args.file)
    data = read_regular(path, MAX_FILE_BYTES)
    text = format_module(parse_module(data, str(path)), width=args.line_width)
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


#: ``nasc search`` options of the papers' recipes (nasc.search.recipes.SETTINGS).
RECIPE_OPTIONS = ("cost_table", "cost_weight", "cost_target", "cost_base", "warmup_epochs",
                  "input_temperature", "prune_every", "auxiliary_weight")


def _device_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="cpu", metavar="DEVICE",
                        help="cpu (default), cuda, cuda:N or auto; under torchrun each process "
                        "takes cuda:LOCAL_RANK (NCCL) or the CPU (gloo)")


def _data_dir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", metavar="DIR",
                        help="where cifar10, cifar100, imagenet and cityscapes live (default: "
                        "$NASC_DATA, else ~/.cache/nasc; CIFAR is downloaded there if absent)")


def _data(args: argparse.Namespace):
    """``--data``: a built-in data set (read from ``--data-dir``) or the user's
    ``module:function``, loaded here so that nasc's own checks of it read as the user's mistake;
    an error raised in the user's own code stays theirs (:mod:`nasc.faults`)."""
    from nasc.faults import user_frames
    from nasc.search.data import load_data

    try:
        return load_data(args.data, args.seed, data_dir=args.data_dir)
    except NasError as e:  # nasc's own checks of the data: say which option it was
        raise NasError(f"--data {args.data}: {e.message}") from None
    except NascError:
        raise
    except Exception as e:  # noqa: BLE001 - sorted: the user's code, or nasc's check of it
        if user_frames(e.__traceback__):
            raise UserCodeError(f"your data function {args.data!r}", e) from e
        if isinstance(e, ValueError | TypeError):
            raise NasError(f"--data {args.data}: {e}") from None
        raise


def cmd_search(args: argparse.Namespace) -> int:
    import json

    from nasc.search.distributed import launched_rank
    from nasc.search.run import search

    params = dict(_define(d) for d in args.define or [])
    retrain = dict(_define(d) for d in args.retrain_define or [])
    recipe = {k: getattr(args, k) for k in RECIPE_OPTIONS if getattr(args, k) is not None}
    result = search(args.space, method=args.method, data=_data(args), epochs=args.epochs,
                    retrain_epochs=args.retrain_epochs, seed=args.seed, out=args.out,
                    space_params=params, retrain_params=retrain, resume=args.resume,
                    order=args.order, batch=args.batch, checkpoint_every=args.checkpoint_every,
                    compare_random=args.compare_random, device=args.device, **recipe)
    if launched_rank() != 0:
        return 0  # under torchrun, rank 0 reports
    r = result.report
    miou = f" · mean IoU {r['mean_iou']:.4f}" if "mean_iou" in r else ""
    print(f"test accuracy {r['test_accuracy']:.4f}{miou} · {r['parameters']:,} parameters · "
          f"{r['flops']:,} MACs · search {r['timings']['search_s']:.0f} s, retrain "
          f"{r['timings']['retrain_s']:.0f} s")
    print(json.dumps(r["architecture"]["choices"], sort_keys=True))
    if "random_search_baseline" in r:
        base = r["random_search_baseline"]
        print(f"random search at the same budget ({base['trials']} trials of "
              f"{base['trial_epochs']} epochs): test accuracy {base['test_accuracy']:.4f}")
    for note in r.get("notes", []):
        print(f"note: {note}")
    if result.out is not None:
        written = sorted(p.name for p in result.out.iterdir() if not p.name.endswith(".tmp"))
        print(f"wrote {result.out}/ ({', '.join(written)})")
    return 0


def cmd_derive(args: argparse.Namespace) -> int:
    from nasc.search.run import derive_run

    arch = derive_run(args.run)
    print(arch.to_json(indent=2))
    print(f"wrote {Path(args.run) / 'architecture.json'}, {Path(args.run) / 'derived.nas'}",
          file=sys.stderr)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from nasc.search.distributed import launched_rank
    from nasc.search.run import train_architecture

    params = dict(_define(d) for d in args.define or [])
    r = train_architecture(args.arch, data=_data(args), epochs=args.epochs, seed=args.seed,
                           out=args.out, batch=args.batch, space_params=params,
                           device=args.device, space=args.arch_space)
    if launched_rank() != 0:
        return 0  # under torchrun, rank 0 reports
    print(f"test accuracy {r['test_accuracy']:.4f} · {r['parameters']:,} parameters · "
          f"{r['flops']:,} MACs · {r['epochs']} epochs in "
          f"{r['timings'].get('retrain_s', 0.0):.0f} s")
    if args.out is not None:
        print(f"wrote {args.out}/ (report.json, metrics.jsonl, architecture.json, checkpoint.pt)")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from nasc.export import export, load_target

    params = dict(_define(d) for d in args.define or [])
    space, arch = load_target(args.arch, args.arch_space, params)
    out = args.out
    if out is None and args.format == "onnx":
        out = f"{Path(args.arch).stem}.onnx"
    if out is not None:
        _writable(Path(out))
    result = export(space, arch, args.format, out, input_size=tuple(args.input_size),
                    class_name=args.class_name)
    if out is None:
        sys.stdout.write(str(result))
    else:
        print(f"wrote {out}", file=sys.stderr)
    return 0


def _writable(path: Path) -> None:
    """An output file's place is there (checked before the work, not after it)."""
    if path.is_dir():
        raise NasError(f"cannot write {path}: it is a directory; name a file")
    parent = path.parent
    if not parent.is_dir():
        raise NasError(f"cannot write {path}: {parent} is not a directory"
                       + ("" if parent.exists() else " (it does not exist)"))


def cmd_profile(args: argparse.Namespace) -> int:
    from nasc.ir.cost import CostError
    from nasc.search.profile import profile

    space = _load(args)

    def report(i: int, n: int, call, ms: float) -> None:
        if args.verbose:
            print(f"[{i + 1}/{n}] {ms:.4f} ms  {call.key}", file=sys.stderr)

    try:
        lut = profile(space, input_size=tuple(args.input_size), batch=args.batch,
                      warmup=args.warmup, repeats=args.repeats, threads=args.threads,
                      on_call=report)
        lut.save(args.out)
    except (CostError, OSError) as e:
        raise NasError(f"profile: {e}") from None
    print(f"wrote {args.out}: {len(lut.entries)} op calls, {lut.device}")
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
    sc = space_cmd("count", "print the exact number of architectures")
    sc.add_argument("--unique", action="store_true",
                    help="count distinct networks instead (docs/unique.md), by enumeration")
    sc.add_argument("--limit", type=int, metavar="N",
                    help="with --unique: refuse spaces of more than N architectures "
                         "(default 200,000)")
    sc.set_defaults(fn=cmd_count)
    sp = space_cmd("show", "summarise nodes, types and choices")
    sp.add_argument("--dot", metavar="FILE", help="write a Graphviz picture (and PNG/SVG with dot)")
    sp.add_argument("--overview", action="store_true",
                    help="with --dot: draw only the decisions and how data flows between them "
                         "(the papers' pictures: each shared cell once; also FILE.png)")
    sp.add_argument("--ir", action="store_true", help="print the IR, one line per node")
    sp.add_argument("--all", action="store_true", help="list every choice")
    sp.set_defaults(fn=cmd_show)
    sr = sub.add_parser("search", help="search a space on data, derive, retrain and report",
                        description="search a space on data, derive, retrain and report")
    sr.add_argument("space", metavar="SPACE", help="a stdlib space name or a .nas file")
    sr.add_argument("--method", default="darts",
                    help="darts, pc-darts, gdas, snas, spos, ..., random, evolution")
    sr.add_argument("--data", default="digits",
                    help="digits, digit-scenes, cifar10, cifar100, imagenet, cityscapes, or "
                    "module:function returning your data")
    sr.add_argument("--epochs", type=int, help="search epochs (default: per data set)")
    sr.add_argument("--retrain-epochs", type=int, help="retraining epochs of the derived net")
    sr.add_argument("--seed", type=int, default=0)
    sr.add_argument("--out", metavar="DIR", help="run directory for the results")
    sr.add_argument("-D", dest="define", action="append", metavar="NAME=VALUE",
                    help="override a space parameter of the search network")
    sr.add_argument("-R", dest="retrain_define", action="append", metavar="NAME=VALUE",
                    help="override a space parameter of the retrained network")
    sr.add_argument("--resume", action="store_true",
                    help="continue the interrupted run in --out DIR (same settings)")
    sr.add_argument("--order", type=int, default=1, choices=(1, 2),
                    help="DARTS architecture gradient: 1st or 2nd order (eq. 7-8)")
    sr.add_argument("--batch", type=int, help="batch size (default: per data set)")
    sr.add_argument("--checkpoint-every", type=int, metavar="STEPS",
                    help="also checkpoint every STEPS steps (always every epoch)")
    sr.add_argument("--compare-random", action="store_true",
                    help="also run random search at the same budget and report both")
    _device_option(sr)
    _data_dir_option(sr)
    rg = sr.add_argument_group("recipes", "each paper's settings (default: the method's)")
    rg.add_argument("--cost-table", metavar="LUT",
                    help="proxyless, densenas: a latency table (nasc profile -o LUT) for the "
                    "cost term (default: multiply-adds as the proxy)")
    rg.add_argument("--cost-weight", type=float, metavar="LAMBDA",
                    help="the cost term's weight (proxyless 0.1, densenas 0.1, hrnas 1e-4)")
    rg.add_argument("--cost-target", type=float, metavar="COST",
                    help="proxyless: the reference cost (default: the uniform expectation)")
    rg.add_argument("--cost-base", type=float, metavar="TAU",
                    help="densenas: tau of the loss CE + lambda log_tau(latency) (15)")
    rg.add_argument("--warmup-epochs", type=int, metavar="N",
                    help="densenas: epochs that train the weights only (60%% of the epochs)")
    rg.add_argument("--input-temperature", type=float, nargs=2, metavar=("START", "END"),
                    help="dcnas: the input-sampling temperature's annealing (5 0.5)")
    rg.add_argument("--prune-every", type=int, metavar="N",
                    help="hrnas: remove the units below eps every N epochs (5)")
    rg.add_argument("--auxiliary-weight", type=float, metavar="W",
                    help="retraining: the auxiliary head's loss weight (DARTS 0.4)")
    sr.set_defaults(fn=cmd_search)
    dv = sub.add_parser("derive", help="re-derive the architecture of a run directory",
                        description="re-derive the architecture from a run directory's "
                        "checkpoint; print it and write architecture.json and derived.nas")
    dv.add_argument("run", metavar="RUN", help="a run directory (nasc search --out)")
    dv.set_defaults(fn=cmd_derive)
    tr = sub.add_parser("train", help="train an architecture from scratch and report",
                        description="train an architecture from scratch on data and report "
                        "its test accuracy")
    tr.add_argument("arch", metavar="ARCH", help="an architecture .json file or a run directory")
    tr.add_argument("--data", default="digits",
                    help="digits, digit-scenes, cifar10, cifar100, imagenet, cityscapes or "
                    "module:function")
    tr.add_argument("--epochs", type=int, help="training epochs (default: per data set)")
    tr.add_argument("--batch", type=int, help="batch size (default: per data set)")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--out", metavar="DIR", help="a new directory for report.json and metrics")
    tr.add_argument("--space", dest="arch_space", metavar="FILE|NAME",
                    help="the architecture's space (default: the stdlib space it names)")
    tr.add_argument("-D", dest="define", action="append", metavar="NAME=VALUE",
                    help="override a space parameter of the network")
    _device_option(tr)
    _data_dir_option(tr)
    tr.set_defaults(fn=cmd_train)
    ex = sub.add_parser(
        "export", help="write a discrete network as PyTorch, ONNX or resolved .nas",
        description="write the network of an architecture as a standalone PyTorch file, an "
        "ONNX file or the resolved .nas. ARCH: an architecture .json file, a stdlib "
        "architecture name (darts_v2), a choice-free .nas file (a run's derived.nas) or a "
        "choice-free stdlib space (mobilenet_v2).")
    ex.add_argument("arch", metavar="ARCH", help="architecture .json, stdlib architecture, or "
                    "choice-free .nas / stdlib space")
    ex.add_argument("--format", required=True, choices=("python", "onnx", "nas"))
    ex.add_argument("--space", dest="arch_space", metavar="FILE|NAME",
                    help="the architecture's space (default: the one it names)")
    ex.add_argument("-o", dest="out", metavar="FILE",
                    help="output file (default: stdout; ARCH.onnx for onnx)")
    ex.add_argument("-D", dest="define", action="append", metavar="NAME=VALUE",
                    help="override a space parameter of the architecture, e.g. -D classes=100")
    ex.add_argument("--input-size", nargs=2, type=int, default=[32, 32], metavar=("H", "W"),
                    help="example input size: the ONNX trace, the Python file's check "
                    "(default 32 32)")
    ex.add_argument("--class-name", default="Network", help="class name in the Python file")
    ex.set_defaults(fn=cmd_export)
    pr = space_cmd("profile", "measure a latency look-up table of a space's ops on this CPU")
    pr.add_argument("-o", dest="out", required=True, metavar="FILE", help="the table (JSON)")
    pr.add_argument("--input-size", nargs=2, type=int, default=[32, 32], metavar=("H", "W"),
                    help="network input size the shapes follow (default 32 32)")
    pr.add_argument("--batch", type=int, default=1, help="images per timed run (default 1)")
    pr.add_argument("--warmup", type=int, default=5, help="untimed runs per op (default 5)")
    pr.add_argument("--repeats", type=int, default=20,
                    help="timed runs per op; the median is kept (default 20)")
    pr.add_argument("--threads", type=int, help="torch threads while timing (default: torch's)")
    pr.add_argument("-v", dest="verbose", action="store_true", help="print each measurement")
    pr.set_defaults(fn=cmd_profile)
    fp = sub.add_parser(
        "fmt",
        help="format a .nas file canonically",
        description="format a .nas file canonically (to stdout by default)",
    )
    fp.add_argument("file", metavar="FILE")
    fp.add_argument("--write", action="store_true", help="rewrite the file in place")
    fp.add_argument("--check", action="store_true", help="exit 1 if the file is not formatted")
    fp.add_argument("--line-width", type=int, default=100, metavar="N",
                    help="break lines longer than N columns where the syntax allows (default 100)")
    fp.set_defaults(fn=cmd_fmt)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. Errors are sorted by whose fault they are (:mod:`nasc.faults`): the
    user's input, the environment (disk, permissions, memory) and the user's own code exit with
    1 in one clear line (the user's code with its traceback, as theirs); only nasc's own bugs
    say "internal error" and exit with 2 (``NASC_DEBUG=1`` shows their traceback)."""
    from nasc.faults import classify

    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as e:  # noqa: BLE001 - every error, told apart by whose fault it is
        code, message = classify(e)
        if code == 2 and os.environ.get("NASC_DEBUG"):
            raise
        print(message.rstrip("\n"), file=sys.stderr)
        return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
