"""Loading ``.nas`` modules and resolving imports (stdlib names and file paths).

A module's top level holds imports, op declarations, blocks, spaces and ``let`` constants. A plain
``import m`` brings ``m``'s definitions into scope; ``import m as x`` makes them ``x.name``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
from nasc.dsl import ast
from nasc.dsl.diagnostics import NasError, Sources, did_you_mean
from nasc.dsl.files import read_regular
from nasc.dsl.parser import MAX_FILE_BYTES, decode, parse_module
from nasc.dsl.values import BlockValue, ModuleValue, OpValue

from nasc import stdlib

MAX_IMPORT_DEPTH = 32
ANNOTATIONS = (
    "int",
    "float",
    "bool",
    "str",
    "tensor",
    "image",
    "vector",
    "tokens",
    "op",
    "list",
    "any",
)


@attrs.define(kw_only=True, eq=False)
class ModuleEnv:
    """One loaded module: its AST and the names it defines or imports."""

    name: str
    file: str
    ast: ast.Module
    defs: dict[str, Any] = attrs.field(factory=dict)  # defined here
    scope: dict[str, Any] = attrs.field(factory=dict)  # defined here and imported (exported)
    origin: dict[str, ast.Stmt] = attrs.field(factory=dict)

    def spaces(self) -> list[str]:
        return [
            k
            for k, v in self.defs.items()
            if isinstance(v, BlockValue) and isinstance(v.decl, ast.SpaceDef)
        ]


class Loader:
    """Parses modules once each, follows imports, and detects import cycles."""

    def __init__(self, sources: Sources, on_module: Callable[[ModuleEnv], None]) -> None:
        self.sources = sources
        self.on_module = on_module
        self.loaded: dict[str, ModuleEnv] = {}
        self._loading: list[str] = []

    def load_text(self, text: str | bytes, file: str, name: str) -> ModuleEnv:
        text = decode(text, file)
        self.sources.add(file, text)
        module = parse_module(text, file)
        return self._build(module, name, file)

    def load_file(self, path: Path, name: str | None = None) -> ModuleEnv:
        try:
            key = str(path.resolve())
        except (OSError, RuntimeError):  # a symlink loop (RuntimeError before Python 3.13)
            raise NasError(f"cannot read {path}: a loop of symbolic links") from None
        if key in self.loaded:
            return self.loaded[key]
        data = read_regular(path, MAX_FILE_BYTES)  # only a regular file, never over the limit
        file = str(path) if name is None else f"{name}.nas"
        if key in self._loading:
            chain = " -> ".join(self._loading + [key])
            raise NasError(f"import cycle: {chain}")
        self._loading.append(key)
        try:
            env = self.load_text(data, file, name or path.stem)
        finally:
            self._loading.pop()
        self.loaded[key] = env
        return env

    def resolve_import(self, imp: ast.Import, importer: ModuleEnv) -> ModuleEnv:
        if len(self._loading) > MAX_IMPORT_DEPTH:
            raise self.sources.error(f"imports nested deeper than {MAX_IMPORT_DEPTH}", imp.loc)
        try:
            return self._resolve(imp, importer)
        except NasError as e:
            if e.loc is None:  # say which import led there (a cycle, an unreadable file)
                raise self.sources.error(e.message, imp.loc) from None
            raise

    def _resolve(self, imp: ast.Import, importer: ModuleEnv) -> ModuleEnv:
        if imp.is_path:
            base = Path(importer.file).parent
            path = Path(imp.module)
            path = path if path.is_absolute() else base / path
            if not path.is_file():
                raise self.sources.error(f"no file {imp.module!r} to import", imp.loc)
            return self.load_file(path)
        local = Path(importer.file).parent / f"{imp.module}.nas"
        if local.is_file() and not _is_stdlib_file(importer.file):
            return self.load_file(local)
        path = stdlib.path_of(imp.module)
        if path is None:
            hint = did_you_mean(imp.module, stdlib.names())
            raise self.sources.error(f"no stdlib module {imp.module!r}{hint}", imp.loc)
        return self.load_file(path, name=imp.module)

    def _build(self, module: ast.Module, name: str, file: str) -> ModuleEnv:
        env = ModuleEnv(name=name, file=file, ast=module)
        for item in module.items:
            for p in getattr(item, "params", ()):
                self._check_ann(p.ann, p)
            if isinstance(item, ast.Import):
                self._import(item, env)
            elif isinstance(item, ast.OpDecl):
                self._define(env, item.name, OpValue(decl=item, module=env), item)
            elif isinstance(item, ast.BlockDef | ast.SpaceDef):
                self._define(env, item.name, BlockValue(decl=item, module=env), item)
        self.on_module(env)
        return env

    def _check_ann(self, ann: ast.TypeAnn | None, p: ast.Param) -> None:
        if ann is None:
            return
        if ann.name not in ANNOTATIONS:
            hint = did_you_mean(ann.name, ANNOTATIONS)
            raise self.sources.error(f"unknown type {ann.name!r} for {p.name!r}{hint}", p.loc)
        if ann.arg is not None and ann.name != "list":
            raise self.sources.error(f"{ann.name} takes no type argument", p.loc)
        self._check_ann(ann.arg, p)

    def _import(self, imp: ast.Import, env: ModuleEnv) -> None:
        other = self.resolve_import(imp, env)
        if imp.alias is not None:
            self._define(env, imp.alias, ModuleValue(name=other.name, env=other), imp, local=False)
            return
        for k, v in other.scope.items():  # its definitions and what it imports itself
            self._define(env, k, v, other.origin.get(k, imp), local=False)

    def _define(self, env: ModuleEnv, name: str, value: Any, where: ast.Stmt, local=True) -> None:
        old = env.scope.get(name)
        if old is not None and old is not value and not _same_decl(old, value):
            first = env.origin.get(name)
            notes = [self.sources.note(first.loc, "first defined here")] if first else []
            raise self.sources.error(f"{name!r} is defined twice", where.loc, notes)
        env.scope[name] = value
        env.origin.setdefault(name, where)
        if local:
            env.defs[name] = value


def _same_decl(a: Any, b: Any) -> bool:
    """Two declarations of one op with the same signature (e.g. printed inline and imported)."""
    if isinstance(a, OpValue) and isinstance(b, OpValue):
        strip = lambda d: attrs.evolve(d, loc=None)  # noqa: E731
        try:
            return strip(a.decl) == strip(b.decl)
        except Exception:  # noqa: BLE001
            return False
    return False


def _is_stdlib_file(file: str) -> bool:
    return stdlib.path_of(Path(file).stem) is not None and file == f"{Path(file).stem}.nas"
