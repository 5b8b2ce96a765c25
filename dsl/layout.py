"""Line breaking for the formatter: expressions laid out within a line width.

A layout is a list of lines. The first line carries no indentation (it continues whatever the
caller has written up to column ``col``); every later line carries its own. Breaks happen only
at bracket boundaries (between the items of a call, a list, a parameter list, the parts of a
comprehension) and before the operators of a long arithmetic or boolean chain, as the stdlib
files are written:

* *visual* continuation: the items go on filling lines aligned one column right of the opening
  bracket (``conv(x, C, k=3,`` / ``     stride=2)``);
* *hanging* continuation, when that overflows: the bracket closes a line, the items go four
  columns in, and the closing bracket starts a line of its own (``sum([`` / ``    f(h)`` /
  ``    for h in hs`` / ``])``).

Newlines carry no meaning in ``.nas``, so any such break parses back to the same AST.
"""

from __future__ import annotations

from collections.abc import Callable

from nasc.dsl import ast
from nasc.dsl.printing import COMPARE, PREC, expr_flat, pick_count, prec

Lines = list[str]
LayFn = Callable[[int, int, int], Lines]  # (col, tail, ind) -> lines


class Piece:
    """Something that can be laid out: its one-line text and how to break it."""

    __slots__ = ("flat", "lay")

    def __init__(self, flat: str, lay: LayFn | None = None) -> None:
        self.flat = flat
        self.lay: LayFn = lay or (lambda col, tail, ind: [flat])


def end_col(lines: Lines, col: int) -> int:
    """The column after the last character of ``lines`` laid at ``col``."""
    return col + len(lines[0]) if len(lines) == 1 else len(lines[-1])


def excess(lines: Lines, col: int, tail: int, width: int) -> int:
    """How many characters ``lines`` (laid at ``col``, then ``tail`` more) run past ``width``."""
    widths = [col + len(lines[0])] + [len(x) for x in lines[1:]]
    widths[-1] += tail
    return sum(max(0, w - width) for w in widths)


def prefixed(prefix: str, p: Piece) -> Piece:
    """``prefix`` followed by ``p`` on the same line."""

    def lay(col: int, tail: int, ind: int) -> Lines:
        lines = p.lay(col + len(prefix), tail, ind)
        return [prefix + lines[0], *lines[1:]]

    return Piece(prefix + p.flat, lay)


def suffixed(p: Piece, suffix: str) -> Piece:
    """``p`` followed by ``suffix`` (which never breaks)."""

    def lay(col: int, tail: int, ind: int) -> Lines:
        lines = p.lay(col, tail + len(suffix), ind)
        return [*lines[:-1], lines[-1] + suffix]

    return Piece(p.flat + suffix, lay)


def joined(first: Piece, second: Piece) -> Piece:
    """``first`` then ``second`` directly after it (``second`` may break where it ends)."""

    def lay(col: int, tail: int, ind: int) -> Lines:
        a = first.lay(col, len(second.flat) + tail, ind)
        b = second.lay(end_col(a, col), tail, ind)
        return [*a[:-1], a[-1] + b[0], *b[1:]]

    return Piece(first.flat + second.flat, lay)


class Layout:
    """Lays out expressions within ``width`` columns (one instance per formatted file)."""

    def __init__(self, width: int) -> None:
        self.width = width
        self._flat: dict[int, str] = {}
        self._memo: dict[tuple[int, int, int, int, int], Lines] = {}

    # ---- pieces ------------------------------------------------------------------------------
    def flat(self, e: ast.Expr) -> str:
        key = id(e)
        if key not in self._flat:
            self._flat[key] = expr_flat(e)
        return self._flat[key]

    def piece(self, e: ast.Expr, min_prec: int = 0) -> Piece:
        """``e`` as a piece, in parentheses when its precedence is below ``min_prec``."""
        if prec(e) < min_prec:
            inner = Piece(self.flat(e), lambda c, t, i: self.expr(e, c, t, i))
            return suffixed(prefixed("(", inner), ")")
        return Piece(self.flat(e), lambda c, t, i: self.expr(e, c, t, i))

    def kwarg(self, name: str, e: ast.Expr) -> Piece:
        return prefixed(f"{name}=", self.piece(e))

    def args(self, args: tuple[ast.Expr, ...], kwargs: tuple[tuple[str, ast.Expr], ...]):
        return [self.piece(a) for a in args] + [self.kwarg(k, v) for k, v in kwargs]

    # ---- brackets ----------------------------------------------------------------------------
    def bracket(
        self,
        open_: str,
        items: list[Piece],
        close: str,
        col: int,
        tail: int,
        ind: int,
        *,
        sep: str = ",",
        fill: bool = True,
    ) -> Lines:
        """``open_ item, item, ... close``, broken visually or hanging when it does not fit."""
        flat = open_ + (sep + " ").join(p.flat for p in items) + close
        if col + len(flat) + tail <= self.width or not items:
            return [flat]
        c0, inner = col + len(open_), ind + 4
        options: list[Lines] = []
        if c0 < self.width:
            body = self.fill(items, c0, c0, len(close) + tail, c0, sep=sep, fill=fill)
            lines = [open_ + body[0], *body[1:]]
            lines[-1] += close
            options.append(lines)
        if inner < c0 or not options:
            body = self.fill(items, inner, inner, 0, inner, sep=sep, fill=fill)
            options.append([open_, " " * inner + body[0], *body[1:], " " * ind + close])
        # the first that overflows least, then has fewest lines (visual before hanging)
        return min(options, key=lambda lines: (excess(lines, col, tail, self.width), len(lines)))

    def fill(
        self,
        items: list[Piece],
        col: int,
        cont: int,
        tail: int,
        ind: int,
        *,
        sep: str = ",",
        fill: bool = True,
    ) -> Lines:
        """``items`` separated by ``sep``, from ``col``; continuation lines start at ``cont``.
        With ``fill``, as many items go on a line as fit; else one per line once any breaks.
        Items on the first line hang from ``ind``, those on later lines from ``cont``."""
        if not fill:
            flat = (sep + " ").join(p.flat for p in items)
            if col + len(flat) + tail <= self.width:
                return [flat]
        lines: Lines = [""]
        cur, fresh, force_new = col, True, False
        for k, p in enumerate(items):
            last = k == len(items) - 1
            t = tail if last else len(sep)
            if not fresh and (force_new or not fill or cur + 1 + len(p.flat) + t > self.width):
                lines.append(" " * cont)
                cur, fresh = cont, True
            gap = "" if fresh else " "
            if cur + len(gap) + len(p.flat) + t <= self.width:
                sub = [gap + p.flat]
            else:
                sub = p.lay(cur + len(gap), t, ind if len(lines) == 1 else cont)
                sub = [gap + sub[0], *sub[1:]]
            lines[-1] += sub[0]
            lines.extend(sub[1:])
            if not last:
                lines[-1] += sep
            cur = end_col(sub, cur) + (0 if last else len(sep))
            fresh, force_new = False, len(sub) > 1
        return lines

    # ---- expressions -------------------------------------------------------------------------
    def expr(self, e: ast.Expr, col: int, tail: int, ind: int) -> Lines:
        """``e`` laid at ``col`` with ``tail`` characters after it; ``ind`` is the indentation
        of the line it belongs to (hanging brackets indent from there)."""
        flat = self.flat(e)
        if col + len(flat) + tail <= self.width:
            return [flat]
        key = (id(e), col, tail, ind, self.width)
        if key not in self._memo:
            self._memo[key] = self._break(e, col, tail, ind)
        return list(self._memo[key])

    def _break(self, e: ast.Expr, col: int, tail: int, ind: int) -> Lines:
        if isinstance(e, ast.ListExpr):
            return self.bracket("[", [self.piece(x) for x in e.items], "]", col, tail, ind)
        if isinstance(e, ast.Comprehension):
            parts = [self.piece(e.elt), self._for(e.targets, e.iter)]
            if e.cond is not None:
                parts.append(prefixed("if ", self.piece(e.cond)))
            return self.bracket("[", parts, "]", col, tail, ind, sep="", fill=False)
        if isinstance(e, ast.Call):
            head = self.piece(e.func, PREC["postfix"])
            return self._call(head, "(", self.args(e.args, e.kwargs), ")", col, tail, ind)
        if isinstance(e, ast.Bind):
            head = self.piece(e.obj, PREC["postfix"])
            return self._call(head, "[", self.args((), e.kwargs), "]", col, tail, ind)
        if isinstance(e, ast.ChooseOp):
            kw = "optional" if e.optional else "choose"
            parts = [
                prefixed(f"{kw} ", self.piece(e.candidates, PREC["postfix"])),
                Piece(f"@{e.label.text}"),
            ]
            head = Piece(
                " ".join(p.flat for p in parts),
                lambda c, t, i: self.fill(parts, c, c, t, i, sep="", fill=True),
            )
            head = suffixed(head, " ")
            return self._call(head, "(", self.args(e.args, e.kwargs), ")", col, tail, ind)
        if isinstance(e, ast.ChooseValue):
            values = [self.piece(v) for v in e.values]
            choice = Piece(
                "choose {" + ", ".join(v.flat for v in values) + "}",
                lambda c, t, i: self.bracket("choose {", values, "}", c, t, i),
            )
            parts = [choice, Piece(f"@{e.label.text}")]
            return self.fill(parts, col, col, tail, ind, sep="", fill=True)
        if isinstance(e, ast.Pick):
            items = prefixed(f"pick {pick_count(e)} of ", self.piece(e.items, PREC["postfix"]))
            parts = [items, Piece(f"@{e.label.text}")]
            return self.fill(parts, col, col, tail, ind, sep="", fill=True)
        if isinstance(e, ast.BinOp) and e.op not in ("..", *COMPARE):
            return self._chain(e, col, tail, ind)
        if isinstance(e, ast.BinOp):
            p = prec(e)
            ops = [self.piece(e.left, p + 1), prefixed(f"{e.op} ", self.piece(e.right, p + 1))]
            if e.op == "..":
                return joined(suffixed(ops[0], ".."), self.piece(e.right, p + 1)).lay(
                    col, tail, ind
                )
            return self.fill(ops, col, col, tail, ind, sep="", fill=True)
        if isinstance(e, ast.CondExpr):
            parts = [
                self.piece(e.test, PREC["cond"] + 1),
                prefixed("? ", self.piece(e.then)),
                prefixed(": ", self.piece(e.orelse)),
            ]
            return self.fill(parts, col, col, tail, ind, sep="", fill=False)
        if isinstance(e, ast.Unary):
            op = "not " if e.op == "not" else "-"
            p = PREC["not"] if e.op == "not" else PREC["neg"]
            return prefixed(op, self.piece(e.operand, p)).lay(col, tail, ind)
        if isinstance(e, ast.Attr):
            return suffixed(self.piece(e.obj, PREC["postfix"]), f".{e.name}").lay(col, tail, ind)
        if isinstance(e, ast.Index | ast.Slice):
            if isinstance(e, ast.Index):
                sub = self.piece(e.index)
            else:
                lo, hi = (self.piece(x) if x is not None else Piece("") for x in (e.lo, e.hi))
                sub = joined(suffixed(lo, ":"), hi)
            return self._call(self.piece(e.obj, PREC["postfix"]), "[", [sub], "]", col, tail, ind)
        return [self.flat(e)]  # names, numbers, strings: no break point

    def _for(self, targets: tuple[str, ...], it: ast.Expr) -> Piece:
        return prefixed(f"for {', '.join(targets)} in ", self.piece(it))

    def _call(self, head: Piece, open_, items, close, col, tail, ind) -> Lines:
        """``head(items)``: the head never breaks unless it is itself a bracket."""
        h = head.lay(col, len(open_) + 1, ind)
        start = end_col(h, col)
        body = self.bracket(open_, items, close, start, tail, ind if len(h) == 1 else start)
        return [*h[:-1], h[-1] + body[0], *body[1:]]

    def _chain(self, e: ast.BinOp, col: int, tail: int, ind: int) -> Lines:
        """``a + b - c``: operands of one precedence, broken before an operator."""
        p = prec(e)
        rights: list[Piece] = []
        x: ast.Expr = e
        while isinstance(x, ast.BinOp) and x.op not in ("..", *COMPARE) and prec(x) == p:
            rights.append(prefixed(f"{x.op} ", self.piece(x.right, p + 1)))
            x = x.left
        parts = [self.piece(x, p), *reversed(rights)]
        return self.fill(parts, col, col, tail, ind, sep="", fill=True)


__all__ = ["Layout", "Piece", "end_col", "excess", "prefixed", "suffixed"]
