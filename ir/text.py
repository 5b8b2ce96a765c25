"""Reading IR text back: the inverse of :mod:`nasc.ir.printer`.

``parse_graph(print_graph(g))`` rebuilds ``g``: the same ids, records, edges, guards, symbolic
values and source locations (a location keeps its start; the printer does not show where it
ends), so printing the result gives the same text. This is what makes the printed IR a real
interchange format: a graph after any pass can be written to a file, edited by hand in a test,
and read back.

>>> from nasc.ir.printer import print_graph
>>> text = "%0: image[C=3, s=1] = input 'x'\\n%1: image[C=3, s=1] = output 'y'(%0)"
>>> print_graph(parse_graph(text)) == text
True
"""

from __future__ import annotations

import ast
import re
from typing import Any

from nasc.ir.graph import Graph
from nasc.ir.guards import Atom, Guard
from nasc.ir.location import SourceLoc
from nasc.ir.nodes import (
    Align,
    Input,
    InputChoice,
    InputMixture,
    Merge,
    Mixture,
    Node,
    Op,
    OpChoice,
    Output,
    RepeatChoice,
    ValueChoice,
)
from nasc.ir.sym import Sym
from nasc.ir.types import Layout, TensorType


class IRSyntaxError(ValueError):
    """IR text that the printer could not have written; the message names line and column."""


_TOKEN = re.compile(
    r"""(?P<ws>\s+)
      | (?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
      | (?P<ref>%\d+)
      | (?P<num>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)
      | (?P<name>[A-Za-z_][A-Za-z_0-9]*)
      | (?P<op>\.\.|==|!=|>=|<=|//|[\[\]{}(),:=@|&+\-*/%<>∋])
      | (?P<hash>\#)
    """,
    re.VERBOSE,
)
_LOC = re.compile(r"\s*(.+):(\d+):(\d+)\s*")
_BINARY = ("+", "-", "*", "//", "%", "/", "==", "!=", "<", "<=", ">", ">=")


class _Line:
    """A cursor over the tokens of one line."""

    def __init__(self, text: str, lineno: int) -> None:
        self.text, self.lineno = text, lineno
        self.toks: list[tuple[str, str, int]] = []
        self.loc: SourceLoc | None = None
        pos = 0
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if m is None:
                self._fail(pos, f"unexpected character {text[pos]!r}")
            kind = m.lastgroup
            if kind == "hash":
                lm = _LOC.fullmatch(text, m.end())
                if lm is None:
                    self._fail(m.end(), "expected a source location FILE:LINE:COL")
                self.loc = SourceLoc(file=lm.group(1), line=int(lm.group(2)),
                                     col=int(lm.group(3)))
                break
            if kind != "ws":
                self.toks.append((kind, m.group(), pos))
            pos = m.end()
        self.i = 0

    def _fail(self, pos: int, msg: str) -> None:
        raise IRSyntaxError(
            f"line {self.lineno}:{pos + 1}: {msg}\n  {self.text}\n  {' ' * pos}^")

    def peek(self, k: int = 0) -> str | None:
        j = self.i + k
        return self.toks[j][1] if j < len(self.toks) else None

    def kind(self) -> str | None:
        return self.toks[self.i][0] if self.i < len(self.toks) else None

    def next(self) -> str:
        if self.i >= len(self.toks):
            self._fail(len(self.text), "unexpected end of line")
        tok = self.toks[self.i][1]
        self.i += 1
        return tok

    def expect(self, *want: str) -> str:
        tok = self.peek()
        if tok not in want:
            pos = self.toks[self.i][2] if self.i < len(self.toks) else len(self.text)
            self._fail(pos, f"expected {' or '.join(map(repr, want))}, found {tok!r}")
        return self.next()

    def accept(self, tok: str) -> bool:
        if self.peek() == tok:
            self.i += 1
            return True
        return False

    def error(self, msg: str) -> None:
        pos = self.toks[self.i][2] if self.i < len(self.toks) else len(self.text)
        self._fail(pos, msg)

    # -- pieces ------------------------------------------------------------------------------
    def ref(self) -> int:
        if self.kind() != "ref":
            self.error("expected a node reference %N")
        return int(self.next()[1:])

    def refs(self) -> list[int]:
        """``%a, %b, ...`` (a comma after the last is consumed)."""
        out: list[int] = []
        while self.kind() == "ref":
            out.append(self.ref())
            if not self.accept(","):
                break
        return out

    def string(self) -> str:
        if self.kind() != "str":
            self.error("expected a quoted string")
        return ast.literal_eval(self.next())

    def integer(self) -> int:
        tok = self.next()
        try:
            return int(tok)
        except ValueError:
            self.i -= 1
            self.error("expected an integer")
            raise  # unreachable: error raises

    def label(self) -> str:
        self.expect("@")
        return self.string()

    def value(self) -> Any:
        kind, tok = self.kind(), self.peek()
        if kind == "str":
            return self.string()
        if kind == "num":
            self.next()
            return float(tok) if any(c in tok for c in ".eE") else int(tok)
        if tok in ("true", "false", "null", "inf", "nan"):
            self.next()
            consts = {"true": True, "false": False, "null": None}
            return consts[tok] if tok in consts else float(tok)
        if tok == "[":
            self.next()
            items = []
            while self.peek() != "]":
                items.append(self.value())
                if not self.accept(","):
                    break
            self.expect("]")
            return tuple(items)
        return self.sym()

    def sym(self) -> Any:
        tok = self.peek()
        if tok == "@":
            return Sym.var(self.label())
        if tok == "-":
            self.next()
            return -self.sym()
        if tok in ("min", "max"):
            self.next()
            self.expect("(")
            a = self.value()
            self.expect(",")
            b = self.value()
            self.expect(")")
            return Sym(op=tok, args=(a, b))
        if tok == "(":
            self.next()
            a = self.value()
            op = self.expect(*_BINARY)
            b = self.value()
            self.expect(")")
            return Sym(op=op, args=(a, b))
        self.error("expected a value")

    def type(self) -> TensorType:
        layout = self.next()
        if layout not in {x.value for x in Layout}:
            self.i -= 1
            self.error("expected a type (image, vector or tokens)")
        self.expect("[")
        self.expect("C")
        self.expect("=")
        channels = self.value()
        stride: Any = 1
        if self.accept(","):
            self.expect("s")
            self.expect("=")
            stride = self.value()
        self.expect("]")
        return TensorType(layout=Layout(layout), channels=channels, stride=stride)

    def guard(self) -> Guard:
        if self.accept("true"):
            return Guard.TRUE
        if self.accept("false"):
            return Guard.FALSE
        terms = []
        while True:
            paren = self.accept("(")
            atoms = [self.atom()]
            while self.accept("&"):
                atoms.append(self.atom())
            if paren:
                self.expect(")")
            terms.append(atoms)
            if not self.accept("|"):
                return Guard.of_terms(terms)

    def atom(self) -> Atom:
        label = self.label()
        test = {"==": "eq", "∋": "has", ">=": "ge"}[self.expect("==", "∋", ">=")]
        return Atom(label=label, test=test, value=self.value())

    def option(self) -> Any:
        kind = self.kind()
        if kind == "name":
            return self.next()
        if kind == "num":
            return self.integer()
        return self.value()

    def krange(self) -> tuple[int, int]:
        lo = self.integer()
        hi = self.integer() if self.accept("..") else lo
        return lo, hi


def _rhs(ln: _Line, fields: dict[str, Any]) -> tuple[type[Node], list[int]]:
    """The record class, the inputs, and (into ``fields``) the record's own fields."""
    head = ln.next()
    if head == "input":
        fields["name"] = ln.string()
        return Input, []
    if head == "output":
        fields["name"] = ln.string()
        ln.expect("(")
        (src,) = [ln.ref()]
        ln.expect(")")
        return Output, [src]
    if head == "align":
        ln.expect("(")
        src = ln.ref()
        if ln.accept(","):
            ln.expect("policy")
            ln.expect("=")
            fields["policy"] = ln.string()
        ln.expect(")")
        return Align, [src]
    if head == "choose" and ln.peek() == "{":
        ln.next()
        values = []
        while ln.peek() != "}":
            values.append(ln.value())
            if not ln.accept(","):
                break
        ln.expect("}")
        fields.update(values=tuple(values), label=ln.label())
        return ValueChoice, []
    if head in ("choose", "repeat", "mixture"):
        if head == "mixture":
            ln.expect("[")
            _mixture_how(ln, fields)
            ln.expect("]")
        fields["label"] = ln.label()
        ln.expect("{")
        options, computed, ins = [], [], []
        while ln.peek() != "}":
            options.append(ln.option())
            ln.expect("=")
            if head == "mixture" and ln.accept("zero"):
                computed.append(False)
            else:
                ins.append(ln.ref())
                computed.append(True)
            if not ln.accept(","):
                break
        ln.expect("}")
        if head == "choose":
            fields["options"] = tuple(options)
            return OpChoice, ins
        if head == "repeat":
            fields["depths"] = tuple(options)
            return RepeatChoice, ins
        fields.update(options=tuple(options), computed=tuple(computed))
        return Mixture, ins
    if head in ("sum", "concat") and ln.peek() == "(" and ln.peek(1) in ("pick", "mix"):
        ln.next()
        how = ln.next()
        k_min, k_max = ln.krange()
        ln.expect("of")
        ln.expect("[")
        ins = ln.refs()
        ln.expect("]")
        fields.update(label=ln.label(), n=len(ins), k_min=k_min, k_max=k_max, merge=head)
        if how == "pick":
            ln.expect(")")
            return InputChoice, ins
        ln.expect("[")
        if ln.accept("zero"):
            fields["weighting"] = "zero"
        else:
            ln.expect("beta")
            ln.expect("over")
            fields.update(weighting="softmax", normalize=ln.next())
        if ln.accept(","):
            ln.expect("sample")
            fields["paths"] = ln.integer()
            ln.expect("(")
            ln.expect("tau")
            ln.expect("=")
            fields["tau"] = float(ln.value())
            ln.expect(")")
        ln.expect("]")
        ln.expect(")")
        return InputMixture, ins
    if head in ("sum", "concat") and ln.peek() == "(":
        ln.next()
        ins = ln.refs()
        ln.expect(")")
        fields["mode"] = head
        return Merge, ins
    if ln.toks[ln.i - 1][0] != "name":
        ln.i -= 1
        ln.error("expected a node: input, output, an op call, a merge or a choice")
    ln.expect("(")
    ins = ln.refs()
    params = []
    while ln.peek() != ")":
        if params:
            ln.expect(",")
        name = ln.next()
        ln.expect("=")
        params.append((name, ln.value()))
    ln.expect(")")
    fields.update(op=head, params=tuple(params))
    return Op, ins


def _mixture_how(ln: _Line, fields: dict[str, Any]) -> None:
    fields["weighting"] = ln.expect("softmax", "gumbel")
    if ln.accept("("):
        ln.expect("tau")
        ln.expect("=")
        fields["tau"] = float(ln.value())
        if ln.accept(","):
            ln.expect("hard")
            fields["hard"] = True
        ln.expect(")")
    while ln.accept(","):
        if ln.accept("sample"):
            fields["paths"] = ln.integer()
            fields["sampling"] = ln.next()
        else:
            fields["source_kind"] = ln.next()


def parse_graph(text: str) -> Graph:
    """The graph that :func:`nasc.ir.printer.print_graph` printed as ``text``."""
    g = Graph()
    for lineno, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        ln = _Line(raw, lineno)
        nid = ln.ref()
        fields: dict[str, Any] = {"type": None}
        if ln.accept(":"):
            fields["type"] = ln.type()
        ln.expect("=")
        cls, ins = _rhs(ln, fields)
        if ln.accept("when"):
            fields["guard"] = ln.guard()
        if ln.peek() is not None:
            ln.error("unexpected text after the node")
        fields["loc"] = ln.loc
        if nid in g:
            ln.i = 0
            ln.error(f"%{nid} is defined twice")
        for src in ins:
            if src not in g:
                ln.i = 0
                ln.error(f"%{src} is used before it is defined")
        try:
            rec = cls(id=nid, **fields)
        except (TypeError, ValueError) as e:
            ln.i = 0
            ln.error(f"not a valid {cls.__name__}: {e}")
        g.nx.add_node(nid, rec=rec)
        for slot, src in enumerate(ins):
            g.nx.add_edge(src, nid, slot, slot=slot)
        g._next = max(g._next, nid + 1)
    return g


__all__ = ["IRSyntaxError", "parse_graph"]
