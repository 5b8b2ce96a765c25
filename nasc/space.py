"""Spaces: the elaborated IR of a ``.nas`` space, with its decisions.

>>> import nasc
>>> space = nasc.load("nas_bench_201")
>>> space.count()
15625
>>> arch = space.sample(seed=0)
>>> len(space.resolve(arch).choices())
0
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs

from nasc import stdlib
from nasc.architecture import Architecture
from nasc.dsl import ast
from nasc.dsl.diagnostics import NasError, Sources, did_you_mean
from nasc.dsl.elaborate import Elaborator, Limits, run_module_lets
from nasc.dsl.format import format_items, format_module, literal
from nasc.dsl.modules import Loader, ModuleEnv
from nasc.dsl.parser import parse_module
from nasc.dsl.values import OpValue
from nasc.ir import decisions as dec
from nasc.ir.canonical import CanonicalForm, Canonicaliser
from nasc.ir.gcpause import gc_paused
from nasc.ir.graph import Graph
from nasc.ir.nodes import (
    Align,
    Input,
    Merge,
    Op,
    Output,
)
from nasc.ir.printer import print_graph
from nasc.ir.resolve import resolve_graph
from nasc.ir.verify import verify

Choice = dec.LabelSpec

#: Spaces with more architectures than this are not enumerated to count distinct networks.
MAX_UNIQUE = 200_000


@attrs.frozen(kw_only=True)
class OpSpec:
    """An op declared from Python: ``nasc.declare_op("op my_op(x: image, C: int) -> ...")``."""

    decl: ast.OpDecl
    text: str

    @property
    def name(self) -> str:
        return self.decl.name


def declare_op(text: str) -> OpSpec:
    """Declare a primitive op for spaces loaded with ``ops=[...]``; ``text`` is an ``op`` line.

    >>> spec = declare_op("op my_conv(x: image, C: int) -> image(C, x.stride)")
    >>> spec.name
    'my_conv'
    """
    text = text.strip()
    if not text.startswith("op "):
        text = "op " + text
    module = parse_module(text, "<declare_op>")
    if len(module.items) != 1 or not isinstance(module.items[0], ast.OpDecl):
        raise NasError("declare_op() takes exactly one 'op' declaration")
    return OpSpec(decl=module.items[0], text=text)


class Space:
    """A search space: its IR graph, the parameters it was built with, and its decisions."""

    def __init__(
        self,
        *,
        name: str,
        graph: Graph,
        params: Mapping[str, Any],
        op_decls: Mapping[str, ast.OpDecl],
        program: _Program | None,
        architecture: Architecture | None = None,
    ) -> None:
        self.name = name
        self.graph = graph
        self.params = dict(params)
        self.op_decls = dict(op_decls)
        self._program = program
        self.architecture = architecture
        self._specs: dict[str, dec.LabelSpec] | None = None
        self._canon: Canonicaliser | None = None

    # ---- decisions ---------------------------------------------------------------------------
    @property
    def specs(self) -> dict[str, dec.LabelSpec]:
        if self._specs is None:
            self._specs = dec.label_specs(self.graph)
        return self._specs

    def choices(self) -> dict[str, Choice]:
        """Label → choice (``.kind``, ``.options``, ``.k`` for input choices)."""
        return dict(self.specs)

    def count(self, unique: bool = False, *, limit: int = MAX_UNIQUE) -> int:
        """The exact number of architectures: one per assignment of a decision to every active
        label (docs/language.md section 13: a label nested in a candidate, a pick's comprehension
        or a repeat step is active only when that candidate, input or depth is chosen).

        ``unique=True``: the number of distinct networks under the rules of docs/unique.md
        (two architectures whose networks differ only by a ``none`` edge, an identity or the
        order of a sum are one), exact by enumerating the space; a space with more than
        ``limit`` architectures is refused with an error naming the limit.
        """
        if not unique:
            return dec.count(self.specs)
        return sum(1 for _ in self.enumerate(unique=True, limit=limit))

    def enumerate(self, unique: bool = False, *, limit: int = MAX_UNIQUE
                  ) -> Iterator[Architecture]:
        """Every architecture once (``len(list(space.enumerate())) == space.count()``); with
        ``unique=True``, the first architecture of each distinct network, in the same order
        (``limit`` as for :meth:`count`)."""
        if not unique:
            for d in dec.enumerate_all(self.specs):
                yield self._arch(d)
            return
        total = dec.count(self.specs)
        if total > limit:
            raise NasError(
                f"space {self.name!r} has {total:,} architectures, more than the limit of "
                f"{limit:,} that distinct networks are counted up to (by enumeration); raise "
                "it with limit= (nasc count --unique --limit N) if you can wait"
            )
        canon = self._canonicaliser()
        seen: set[str] = set()
        for d in dec.enumerate_all(self.specs):
            text = canon.form(d).text
            if text not in seen:
                seen.add(text)
                yield self._arch(d)

    def sample(self, seed: int | random.Random = 0, *, budget: Any = None,
               input_size: Any = (32, 32), table: Any = None) -> Architecture:
        """One architecture, each active decision drawn uniformly in label order (so not every
        architecture is equally likely when choices nest); the same seed, the same one.

        ``budget`` (``"macs=300M,params=5M"`` or ``{"macs": 300e6}``, see
        :mod:`nasc.ir.budget`): draw until the network fits, its costs computed by the IR cost
        models at ``input_size`` (with ``table``, e.g. a latency table, for kinds beyond
        params/MACs/memory); a clear error when no draw fits."""
        rng = seed if isinstance(seed, random.Random) else random.Random(seed)
        if budget is None:
            return self._arch(dec.sample(self.specs, rng))
        from nasc.ir.budget import Budget, BudgetError, sample_within
        from nasc.ir.cost import DEFAULT

        try:
            decisions, _ = sample_within(self.graph, self.specs, Budget.parse(budget), rng,
                                         input_size=input_size, table=table or DEFAULT)
        except BudgetError as e:
            raise NasError(f"space {self.name!r}: {e}") from None
        return self._arch(decisions)

    def canonical_form(self, arch: Mapping[str, Any] | None = None) -> CanonicalForm:
        """The canonical form of ``arch``'s network (docs/unique.md); a choice-free space (a
        resolved one) needs no ``arch``."""
        if arch is None:
            if self.specs:
                raise NasError(f"space {self.name!r} has choices: give an architecture")
            decisions: dict[str, Any] = {}
        else:
            try:
                decisions = dec.canonical(self.specs, dict(arch))
            except dec.DecisionError as e:
                raise NasError(f"architecture does not fit space {self.name!r}: {e}") from None
        return self._canonicaliser().form(decisions)

    def canonical_hash(self, arch: Mapping[str, Any] | None = None) -> str:
        """A hex digest equal for two architectures exactly when they select the same network
        under the rules of docs/unique.md (``nasc.canonical_hash(space, arch)``)."""
        return self.canonical_form(arch).digest

    def _canonicaliser(self) -> Canonicaliser:
        if self._canon is None:
            self._canon = Canonicaliser(self.graph)
        return self._canon

    def canonical(self, arch: Mapping[str, Any]) -> Architecture:
        """``arch`` checked against this space, restricted to its active labels."""
        return self._arch(dec.canonical(self.specs, dict(arch)))

    def _arch(self, d: Mapping[str, Any]) -> Architecture:
        return Architecture(d, space=self.name, params=self.params)

    def resolve(self, arch: Mapping[str, Any]) -> Space:
        """The choice-free space that ``arch`` selects."""
        try:
            decisions = dec.canonical(self.specs, dict(arch))
        except dec.DecisionError as e:
            raise NasError(f"architecture does not fit space {self.name!r}: {e}") from None
        graph = resolve_graph(self.graph, decisions)
        used = {r.op for r in graph.nodes_of(Op)}
        return Space(
            name=self.name,
            graph=graph,
            params=self.params,
            op_decls={k: v for k, v in self.op_decls.items() if k in used},
            program=None,
            architecture=self._arch(decisions),
        )

    # ---- printing ----------------------------------------------------------------------------
    def to_nas(self) -> str:
        """``.nas`` text that parses back to this space: a choice-free space as a flat program
        of op calls, a space with choices as its own source, self-contained."""
        if not self.graph.choice_nodes():
            return _flat_nas(self)
        if self._program is None:
            raise NasError("this space has no source program to print")
        return self._program.to_nas(self.name, self.params)

    def __str__(self) -> str:
        return print_graph(self.graph)

    def __repr__(self) -> str:
        return f"<Space {self.name!r}: {len(self.graph)} nodes, {len(self.specs)} labels>"


@attrs.frozen(kw_only=True)
class _Program:
    """The modules a space came from, to print it back as one self-contained file."""

    entry: ModuleEnv
    modules: tuple[ModuleEnv, ...]
    extra_ops: tuple[OpSpec, ...]

    def to_nas(self, space: str, params: Mapping[str, Any]) -> str:
        items: list[ast.Stmt] = [s.decl for s in self.extra_ops]
        for env in self.modules:
            if env is self.entry or _is_stdlib(env):
                continue
            items += [i for i in env.ast.items if not isinstance(i, ast.SpaceDef)]
        items = [i for i in items if not (isinstance(i, ast.Import) and not _stdlib_import(i))]
        head = format_items(items) if items else ""
        body = format_module(
            attrs.evolve(
                self.entry.ast,
                items=tuple(
                    i
                    for i in self.entry.ast.items
                    if not (isinstance(i, ast.Import) and not _stdlib_import(i))
                ),
            ),
            space_defaults={space: dict(params)},
        )
        return (head + "\n" if head else "") + body


def _is_stdlib(env: ModuleEnv) -> bool:
    return stdlib.path_of(env.name) is not None and env.file == f"{env.name}.nas"


def _stdlib_import(i: ast.Import) -> bool:
    return not i.is_path and stdlib.path_of(i.module) is not None


# ---- loading -------------------------------------------------------------------------------
def load(
    name_or_path: str | Path,
    *,
    space: str | None = None,
    ops: tuple[OpSpec, ...] | list[OpSpec] = (),
    limits: Limits | None = None,
    **params: Any,
) -> Space:
    """A stdlib space by bare name (``load("darts", C=16)``) or a ``.nas`` file by path."""
    try:
        with gc_paused():  # (see nasc.ir.gcpause)
            return _load(name_or_path, space, ops, limits, params)
    except RecursionError:
        raise NasError("the program nests too deeply to elaborate; flatten it with 'let'") from None


def _load(name_or_path, space, ops, limits, params) -> Space:
    where = locate(name_or_path)
    sources = Sources()
    el = Elaborator(sources, limits)
    loader = Loader(sources, _module_hook(el, ops))
    if isinstance(where, str):
        path = stdlib.path_of(where)
        if path is None:
            hint = did_you_mean(where, stdlib.names())
            raise NasError(f"no stdlib space {where!r}{hint}; give a path to load a file")
        env = loader.load_file(path, name=where)
    else:
        env = loader.load_file(where)
    return _elaborate(el, loader, env, space, ops, params)


# ---- where a space comes from ----------------------------------------------------------------
def locate(arg: str | Path, *, cli: bool = False) -> Path | str:
    """The one reading of "a ``.nas`` file or a stdlib name": a ``Path`` for a file, a ``str``
    for the name of a stdlib module (it may not exist: :func:`load` says so).

    A ``Path`` is a file; a string is a file when it ends in ``.nas`` or holds a ``/``, else a
    stdlib name. On the command line (``cli=True``) a bare word that names a file in the
    working directory is that file (``nasc check myspace``).

    >>> locate("darts"), locate("spaces/my.nas")
    ('darts', PosixPath('spaces/my.nas'))
    """
    if isinstance(arg, Path):
        return arg
    text = str(arg)
    if text.endswith(".nas") or "/" in text or (cli and Path(text).is_file()):
        return Path(text)
    return text


def named_space(value: Any, *, given: str | Path | None = None, what: str) -> Path | str:
    """The space a data file names (an architecture's ``"space"``, a run's configuration):
    ``given`` when the user gave one (``--space``), else ``value`` if it is a stdlib space.

    A name read from a file is never taken as a path: the file may come from anyone, and a path
    in it could name any file of this machine (``../../etc/passwd``, ``/dev/zero``)."""
    if given is not None:
        return locate(given, cli=True)
    if value is None:
        raise NasError(f"{what} names no space; give one with --space")
    if not isinstance(value, str):
        raise NasError(f"{what}: 'space' must be a string, not {type(value).__name__}")
    if isinstance(locate(value), str) and stdlib.path_of(value) is not None:
        return value
    raise NasError(f"{what} belongs to space {_shown(value)}, which is not a stdlib space; "
                   "give its .nas file with --space")


def recorded_space(value: Any, *, what: str) -> Path | str:
    """The space of a run directory's configuration: the stdlib name or the ``.nas`` path the
    run was started with (read like any ``.nas`` file: regular, bounded; never another kind of
    file, whatever the configuration says)."""
    if not isinstance(value, str):
        raise NasError(f"{what}: the configuration's space is not a name or a path")
    where = locate(value)
    if isinstance(where, Path) and where.suffix != ".nas":
        raise NasError(f"{what}: the configuration names {_shown(value)} as its space, which is "
                       "neither a stdlib space nor a .nas file")
    return where


def fit_architecture(space: Space, arch: Mapping[str, Any], *, what: str) -> Architecture:
    """``space.canonical(arch)``, an architecture that does not fit (unknown labels, missing
    or invalid decisions) reported as the user's mistake."""
    try:
        return space.canonical(arch)
    except dec.DecisionError as e:
        raise NasError(f"{what} does not fit space {space.name!r}: {e}") from None


def _shown(value: str) -> str:
    """A name from a foreign file, shortened and quoted, for a message."""
    return repr(value if len(value) <= 80 else value[:77] + "...")


def parse(
    text: str | bytes,
    *,
    file: str = "<string>",
    space: str | None = None,
    ops: tuple[OpSpec, ...] | list[OpSpec] = (),
    limits: Limits | None = None,
    **params: Any,
) -> Space:
    """A space from ``.nas`` source text."""
    try:
        with gc_paused():  # (see nasc.ir.gcpause)
            return _parse(text, file, space, ops, limits, params)
    except RecursionError:
        raise NasError("the program nests too deeply to elaborate; flatten it with 'let'") from None


def _parse(text, file, space, ops, limits, params) -> Space:
    sources = Sources()
    el = Elaborator(sources, limits)
    loader = Loader(sources, _module_hook(el, ops))
    env = loader.load_text(text, file, Path(file).stem or "main")
    return _elaborate(el, loader, env, space, ops, params)


def _module_hook(el: Elaborator, ops):
    extra = {s.name: s for s in ops}

    def hook(env: ModuleEnv) -> None:
        for name, spec in extra.items():
            env.scope.setdefault(name, OpValue(decl=spec.decl, module=env))
        run_module_lets(el, env)

    return hook


def _elaborate(el: Elaborator, loader: Loader, env: ModuleEnv, space_name, ops, params) -> Space:
    spaces = env.spaces()
    if space_name is None:
        if len(spaces) == 1:
            space_name = spaces[0]
        elif env.name in spaces:
            space_name = env.name
        elif not spaces:
            raise NasError(f"{env.file}: no 'space' definition")
        else:
            raise NasError(
                f"{env.file}: several spaces ({', '.join(spaces)}); choose one with space="
            )
    if space_name not in spaces:
        raise NasError(f"{env.file}: no space {space_name!r}{did_you_mean(space_name, spaces)}")
    decl = env.defs[space_name].decl
    known = [p.name for p in decl.params]
    for k in params:
        if k not in known:
            raise NasError(
                f"space {space_name!r} has no parameter {k!r}{did_you_mean(k, known)}"
                + (f"; its parameters: {', '.join(known)}" if known else "")
            )
    plain = {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()}
    values = el.elaborate_space(env, decl, plain)
    try:
        dec.label_specs(el.graph)
    except dec.DecisionError as e:
        raise NasError(f"{env.file}: {e}") from None
    el.graph = el.graph.renumbered()
    verify(el.graph)
    op_decls = {}
    for rec in el.graph.nodes_of(Op):
        op_decls.setdefault(rec.op, _find_op(env, loader, rec.op, ops))
    modules = tuple(loader.loaded.values()) + (env,)
    program = _Program(entry=env, modules=modules, extra_ops=tuple(ops))
    return Space(
        name=space_name,
        graph=el.graph,
        params=_json_params(values),
        op_decls=op_decls,
        program=program,
    )


def _json_params(values: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in values.items():
        try:
            literal(v)
        except TypeError:
            continue
        out[k] = v
    return out


def _find_op(env: ModuleEnv, loader: Loader, name: str, ops) -> ast.OpDecl:
    for s in ops:
        if s.name == name:
            return s.decl
    for m in (env, *loader.loaded.values()):
        v = m.defs.get(name)
        if isinstance(v, OpValue):
            return v.decl
    for m in (env, *loader.loaded.values()):
        for v in m.scope.values():
            if isinstance(v, OpValue) and v.name == name:
                return v.decl
    raise NasError(f"op {name!r} has no declaration")


# ---- resolving -----------------------------------------------------------------------------
def _flat_nas(space: Space) -> str:
    """A choice-free space as a flat program: its op declarations and one line per node."""
    g = space.graph
    names: dict[int, str] = {}
    lines = []
    for rec in g:
        ins = [names[i] for i in g.inputs(rec.id)]
        if isinstance(rec, Input):
            names[rec.id] = rec.name
            t = rec.type
            args = f"{t.channels}" if t.layout.value == "vector" else f"{t.channels}, {t.stride}"
            lines.append(f"input {rec.name}: {t.layout.value}({args})")
            continue
        if isinstance(rec, Output):
            lines.append(f"output {rec.name} = {ins[0]}")
            continue
        v = f"v{rec.id}"
        names[rec.id] = v
        if isinstance(rec, Op):
            decl = space.op_decls[rec.op]
            tensor_params = [
                p.name
                for p in decl.params
                if p.ann is not None and p.ann.name in ("tensor", "image", "vector", "tokens")
            ]
            args = (
                [f"{n}={x}" for n, x in zip(tensor_params, ins)]
                if len(tensor_params) == len(ins)
                else list(ins)
            )
            args += [
                f"{k}={literal(list(x) if isinstance(x, tuple) else x)}" for k, x in rec.params
            ]
            rhs = f"{rec.op}({', '.join(args)})"
        elif isinstance(rec, Merge):
            rhs = f"{rec.mode}([{', '.join(ins)}])"
        elif isinstance(rec, Align):
            extra = f", policy={literal(rec.policy)}" if rec.policy else ""
            rhs = f"align({ins[0]}, channels={rec.type.channels}, stride={rec.type.stride}{extra})"
        else:  # pragma: no cover - resolve_graph leaves no choices
            raise NasError(f"cannot print {type(rec).__name__}")
        lines.append(f"let {v} = {rhs}")
    decls = format_items(list(space.op_decls.values())) if space.op_decls else ""
    header = f"# {space.name}, choice-free"
    if space.architecture is not None:
        header = f"# {space.name} resolved: {space.architecture.to_json()}"
    body = "\n".join("    " + line for line in lines)
    return f"{header}\n{decls}\nspace {space.name}() {{\n{body}\n}}\n"
