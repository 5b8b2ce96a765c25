"""Errors for people: ``file.nas:12:7: error: message``, the source line and a caret.

Errors are classified by whose fault they are, under one base :class:`NascError`:
:class:`NasError` means the user's input is wrong (their ``.nas``, a parameter, an argument, an
architecture or data file: syntax, names, types, bounds exceeded); :class:`UserCodeError` means the
user's own Python failed (their data function, their op implementations), shown as theirs;
:class:`InternalError` means nasc itself is wrong. Problems of the environment (disk,
permissions, memory) arrive as ``OSError``/``MemoryError`` and are reported as such. The command
line prints the first two kinds (and the environment's) in one clear line and exits with status 1;
only nasc's own bugs exit with 2.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence

import attrs
from nasc.ir.location import SourceLoc


class NascError(Exception):
    """Base of every error nasc raises on purpose."""


class InternalError(NascError):
    """A bug in nasc, not in the user's input."""


class UserCodeError(NascError):
    """An exception raised inside the user's own Python code (``what`` names it, e.g. "your data
    function 'mymod:load'"); the original exception is the ``__cause__`` and its traceback is
    shown as the user's, not as a bug in nasc."""

    def __init__(self, what: str, error: BaseException) -> None:
        super().__init__(f"{what} raised {type(error).__name__}: {error}")
        self.what = what
        self.error = error


@attrs.frozen
class Note:
    loc: SourceLoc | None
    message: str
    line_text: str | None = None


class NasError(NascError):
    """The user's input is wrong (a ``.nas`` file, a parameter, an argument, a data or
    architecture file). ``str()`` renders the full diagnostic, located where a location is known."""

    def __init__(
        self,
        message: str,
        loc: SourceLoc | None = None,
        line_text: str | None = None,
        notes: Sequence[Note] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.loc = loc
        self.line_text = line_text
        self.notes = tuple(notes)

    def render(self) -> str:
        out = [_render_one("error", self.loc, self.message, self.line_text)]
        out += [_render_one("note", n.loc, n.message, n.line_text) for n in self.notes]
        return "\n".join(out)

    def __str__(self) -> str:
        return self.render()


def _render_one(kind: str, loc: SourceLoc | None, message: str, line_text: str | None) -> str:
    head = f"{loc}: {kind}: {message}" if loc is not None else f"{kind}: {message}"
    if loc is None or line_text is None:
        return head
    text = line_text.expandtabs(1).rstrip("\n")
    col = max(loc.col, 1)
    width = 1
    if loc.end_line == loc.line and loc.end_col is not None and loc.end_col > col:
        width = loc.end_col - col
    width = max(1, min(width, len(text) - col + 1))
    gutter = f"{loc.line:>4} | "
    caret = " " * (len(gutter) - 2) + "| " + " " * (col - 1) + "^" + "~" * (width - 1)
    return f"{head}\n{gutter}{text}\n{caret}"


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` when a close candidate exists, else ``""``."""
    close = difflib.get_close_matches(name, sorted(set(candidates)), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


class Sources:
    """The text of every file an elaboration read, to quote lines in diagnostics."""

    def __init__(self) -> None:
        self._text: dict[str, list[str]] = {}

    def add(self, file: str, text: str) -> None:
        self._text[file] = text.splitlines()

    def line(self, loc: SourceLoc | None) -> str | None:
        if loc is None or loc.file not in self._text:
            return None
        lines = self._text[loc.file]
        return lines[loc.line - 1] if 0 < loc.line <= len(lines) else None

    def error(self, message: str, loc: SourceLoc | None, notes: Sequence[Note] = ()) -> NasError:
        notes = tuple(attrs.evolve(n, line_text=n.line_text or self.line(n.loc)) for n in notes)
        return NasError(message, loc, self.line(loc), notes)

    def note(self, loc: SourceLoc | None, message: str) -> Note:
        return Note(loc, message, self.line(loc))
