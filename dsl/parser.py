"""Text to AST. The grammar is ``nas.lark`` beside this file; lark's errors never leave here.

>>> m = parse_module('space s(C: int = 16) { input x: image(3) output x }', "s.nas")
>>> m.items[0].name
's'
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

import attrs
import lark
from lark import Token, Transformer_NonRecursive, v_args
from nasc.dsl import ast
from nasc.dsl.diagnostics import NasError, Sources
from nasc.ir.location import SourceLoc

#: Bounds on what a file may ask of the parser.
MAX_FILE_BYTES = 1 << 20
MAX_BRACKET_DEPTH = 64
MAX_EXPR_DEPTH = 200
MAX_INT = (1 << 63) - 1


@functools.lru_cache(maxsize=1)
def _parser() -> lark.Lark:
    grammar = resources.files("nasc.dsl").joinpath("nas.lark").read_text()
    return lark.Lark(
        grammar,
        parser="lalr",
        strict=True,
        propagate_positions=True,
        maybe_placeholders=True,
        start=["start", "expr"],
    )


# Example bad inputs for each message (lark's ``match_examples``): the first that fails in the
# same parser state as the user's input names the problem.
_EXAMPLES: dict[str, list[str]] = {
    "unclosed '{': a body needs a closing '}'": [
        "space s() {",
        "space s() { let a = 1",
        "block b(x) { for i in 0..2 { let a = 1 }",
    ],
    "expected an expression": [
        "space s() { let a = }",
        "let a =",
        "space s() { let a = 1 + }",
        "space s() { output }",
    ],
    "unclosed '(' in a call or parameter list": [
        "space s() { let a = f(1 }",
        "space s( {",
        "space s() { let a = f(1, }",
    ],
    "unclosed '[' in a list": ["space s() { let a = [1, 2 }", "let a = [1"],
    "a choice needs a label: '@\"name\"' after its candidates": [
        "space s() { let a = choose {1, 2} }",
        "space s() { let a = choose OPS (x) }",
        "space s() { let a = pick 2 of xs }",
        "space s() { repeat {1, 2} { } }",
    ],
    "'let' needs '=' and a value": ["space s() { let a }", "let a 3"],
    "only 'import', 'op', 'block', 'cell', 'space' and 'let' may appear at the top level": [
        "a = 1",
        "import nn\nx = 1",
        "for i in 0..3 { }",
        "output x",
        "1",
    ],
    "a statement must start with a keyword or a name; expressions alone are not statements": [
        "space s() { 1 }",
        "space s() { f(x) }",
        "space s() { (x) }",
    ],
    "a definition needs a name and a parameter list in '(...)'": [
        "space { }",
        "block b { }",
        "space s { }",
    ],
}


def parse_module(text: str | bytes, file: str = "<string>") -> ast.Module:
    """Parse a whole file. Raises :class:`NasError` with a location on any problem."""
    text = decode(text, file)
    sources = Sources()
    sources.add(file, text)
    comments = _check_brackets(text, file, sources)
    try:
        tree = _parser().parse(text, start="start")
    except lark.exceptions.UnexpectedInput as e:
        raise _syntax_error(e, text, file, sources) from None
    module = _transform(_ToAst(file, sources), tree)
    _check_depth(module, sources)
    blank = tuple(i for i, line in enumerate(text.split("\n"), 1) if not line.strip())
    return attrs.evolve(module, comments=tuple(comments), blank_lines=blank)


def parse_expr(text: str, file: str = "<expr>", base: SourceLoc | None = None) -> ast.Expr:
    """Parse one expression (used for ``-D name=value`` and string interpolation)."""
    sources = Sources()
    sources.add(file, text)
    _check_brackets(text, file, sources)
    try:
        tree = _parser().parse(text, start="expr")
    except lark.exceptions.UnexpectedInput as e:
        err = _syntax_error(e, text, file, sources)
        if base is not None:
            raise NasError(err.message, base) from None
        raise err from None
    expr = _transform(_ToAst(file, sources, base=base), tree)
    _check_depth(expr, sources)
    return expr


def _transform(t: _ToAst, tree: lark.Tree) -> Any:
    try:
        return t.transform(tree)
    except lark.exceptions.VisitError as e:
        if isinstance(e.orig_exc, NasError):
            raise e.orig_exc from None
        raise


def decode(text: str | bytes, file: str) -> str:
    if isinstance(text, bytes):
        if len(text) > MAX_FILE_BYTES:
            raise NasError(
                f"file is {len(text)} bytes; the limit is {MAX_FILE_BYTES}", _loc(file, 1, 1)
            )
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as e:
            line = text.count(b"\n", 0, e.start) + 1
            start = text.rfind(b"\n", 0, e.start) + 1
            end = text.find(b"\n", e.start)
            shown = text[start : end if end >= 0 else len(text)].decode("utf-8", "replace")
            loc = SourceLoc(
                file=file, line=line, col=len(text[start : e.start].decode("utf-8", "replace")) + 1
            )
            raise NasError(f"not valid UTF-8 (byte 0x{text[e.start]:02x})", loc, shown) from None
    if len(text) > MAX_FILE_BYTES:
        raise NasError(
            f"file is {len(text)} characters; the limit is {MAX_FILE_BYTES}", _loc(file, 1, 1)
        )
    text = text.removeprefix("\ufeff")  # a UTF-8 byte order mark
    bad = text.find("\x00")
    if bad >= 0:
        line = text.count("\n", 0, bad) + 1
        start = text.rfind("\n", 0, bad) + 1
        end = text.find("\n", bad)
        shown = text[start : end if end >= 0 else len(text)].replace("\x00", " ")
        raise NasError(
            "NUL byte in source (is this a binary file?)", _loc(file, line, bad - start + 1), shown
        )
    return text


def _loc(file: str, line: int, col: int, end_line: int | None = None, end_col: int | None = None):
    return SourceLoc(file=file, line=line, col=col, end_line=end_line, end_col=end_col)


def _scan(text: str):
    """Brackets, comments and strings of ``text``, as events ``(kind, line, col, detail)``:
    ``open``/``close`` (the bracket), ``comment`` (its text), ``unterminated`` (a string left
    open at a line end or the end of the file). Lexing here is only this coarse."""
    line, col, in_str, in_comment, prev = 1, 0, False, False, ""
    start = str_col = comment_col = 0
    for i, ch in enumerate(text):
        col += 1
        if ch == "\n":
            if in_str:
                yield ("unterminated", line, str_col, col)
            if in_comment:
                yield ("comment", line, comment_col, text[start:i])
            line, col, in_str, in_comment = line + 1, 0, False, False
        elif in_comment:
            pass
        elif in_str:
            if ch == '"' and prev != "\\":
                in_str = False
        elif ch == "#":
            in_comment, start, comment_col = True, i, col
        elif ch == '"':
            in_str, str_col = True, col
        elif ch in "([{":
            yield ("open", line, col, ch)
        elif ch in ")]}":
            yield ("close", line, col, ch)
        prev = "" if prev == "\\" else ch
    if in_comment:
        yield ("comment", line, comment_col, text[start:])
    if in_str:
        yield ("unterminated", line, str_col, None)


def _check_brackets(text: str, file: str, sources: Sources) -> list[ast.Comment]:
    """Refuse absurd nesting and open strings before the parser builds a tree; collect the
    comments (the formatter keeps them)."""
    comments: list[ast.Comment] = []
    depth = 0
    for kind, line, col, detail in _scan(text):
        if kind == "comment":
            comments.append(ast.Comment(line=line, col=col, text=detail))
        elif kind == "unterminated":
            raise sources.error(
                "unterminated string: a string ends on the line it starts",
                _loc(file, line, col, line, detail),
            )
        elif kind == "open":
            depth += 1
            if depth > MAX_BRACKET_DEPTH:
                raise sources.error(
                    f"brackets nested deeper than {MAX_BRACKET_DEPTH} levels", _loc(file, line, col)
                )
        else:
            depth = max(0, depth - 1)
    return comments


def _innermost_unclosed(text: str) -> tuple[str, int, int] | None:
    """The innermost bracket still open at the end of ``text`` (strings and comments aside)."""
    stack: list[tuple[str, int, int]] = []
    for kind, line, col, detail in _scan(text):
        if kind == "open":
            stack.append((detail, line, col))
        elif kind == "close" and stack:
            stack.pop()
    return stack[-1] if stack else None


def _check_depth(node: Any, sources: Sources) -> None:
    stack = [(node, 0)]
    while stack:
        x, d = stack.pop()
        if d > MAX_EXPR_DEPTH:
            raise sources.error(
                f"expression nested deeper than {MAX_EXPR_DEPTH} levels; split it with 'let'",
                getattr(x, "loc", None),
            )
        for child in _children(x):
            stack.append((child, d + 1 if isinstance(x, ast.Expr) else d))


def _children(x: Any) -> list[Any]:
    if not attrs.has(type(x)) or isinstance(x, ast.Comment | SourceLoc):
        return []
    out = []
    for f in attrs.fields(type(x)):
        v = getattr(x, f.name)
        items = v if isinstance(v, tuple) else (v,)
        for item in items:
            for y in item if isinstance(item, tuple) else (item,):
                if attrs.has(type(y)) and not isinstance(y, SourceLoc):
                    out.append(y)
    return out


def _syntax_error(e: lark.exceptions.UnexpectedInput, text: str, file: str, sources: Sources):
    line, col = max(getattr(e, "line", 1) or 1, 1), max(getattr(e, "column", 1) or 1, 1)
    at_end = isinstance(e, lark.exceptions.UnexpectedEOF) or (
        isinstance(e, lark.exceptions.UnexpectedToken) and e.token.type == "$END"
    )
    if at_end:
        lines = text.splitlines() or [""]
        line, col = len(lines), len(lines[-1]) + 1
        opened = _innermost_unclosed(text)
        if opened is not None:
            ch, oline, ocol = opened
            return sources.error(
                f"unclosed {ch!r}: the file ends before its closing "
                f"{ {'{': '}', '(': ')', '[': ']'}[ch]!r}",
                _loc(file, line, col),
                [sources.note(_loc(file, oline, ocol), "opened here")],
            )
    message = _table_message(e)
    if message is None:
        message = _generic_message(e)
    elif isinstance(e, lark.exceptions.UnexpectedToken) and e.token.type != "$END":
        message = f"{message} (found {_describe(e.token)})"
    return sources.error(message, _loc(file, line, col))


@functools.lru_cache(maxsize=1)
def _message_table() -> tuple[tuple[frozenset[str], str, str], ...]:
    """(expected terminals, offending terminal, message) for every example bad input."""
    rows = []
    for message, examples in _EXAMPLES.items():
        for example in examples:
            try:
                _parser().parse(example, start="start")
            except lark.exceptions.UnexpectedToken as err:
                rows.append((frozenset(err.expected), err.token.type, message))
            except lark.exceptions.UnexpectedInput:
                pass
    return tuple(rows)


def _table_message(e: lark.exceptions.UnexpectedInput) -> str | None:
    """The message of the example that failed the same way: same expected terminals and the
    same offending token (then the same expected terminals alone), wherever it happened."""
    if not isinstance(e, lark.exceptions.UnexpectedToken):
        return None
    expected = frozenset(e.expected)
    rows = _message_table()
    for exp, tok, message in rows:
        if exp == expected and tok == e.token.type:
            return message
    for exp, _, message in rows:
        if exp == expected:
            return message
    return None


def _generic_message(e: lark.exceptions.UnexpectedInput) -> str:
    if isinstance(e, lark.exceptions.UnexpectedCharacters):
        ch = e.char if hasattr(e, "char") else "?"
        return f"unexpected character {ch!r}"
    if isinstance(e, lark.exceptions.UnexpectedToken):
        if set(e.expected) == {"AT"}:
            found = _describe(e.token)
            return f"a choice needs a label: '@\"name\"' after its candidates (found {found})"
        expected = sorted(_pretty_terminal(t) for t in e.expected)[:8]
        tail = f"; expected {', '.join(expected)}" if expected else ""
        return f"unexpected {_describe(e.token)}{tail}"
    return "unexpected end of file"


def _describe(tok: Token) -> str:
    if tok.type == "$END":
        return "end of file"
    return f"{str(tok)!r}"


def _pretty_terminal(name: str) -> str:
    try:
        pattern = _parser().get_terminal(name).pattern
    except KeyError:
        return name.lower()
    if pattern.type == "str":
        return repr(pattern.value)
    return name.lower()


# ---- tree to AST ---------------------------------------------------------------------------
def _unescape(body: str) -> str:
    out, i = [], 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            out.append({"n": "\n", "t": "\t"}.get(nxt, nxt))
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


@v_args(meta=True)
class _ToAst(Transformer_NonRecursive):
    def __init__(self, file: str, sources: Sources, base: SourceLoc | None = None) -> None:
        super().__init__()
        self.file = file
        self.sources = sources
        self.base = base

    def _loc(self, meta: Any) -> SourceLoc:
        if self.base is not None:
            return self.base
        if getattr(meta, "empty", True):
            return _loc(self.file, 1, 1)
        return _loc(self.file, meta.line, meta.column, meta.end_line, meta.end_column)

    def _tok_loc(self, tok: Token) -> SourceLoc:
        if self.base is not None:
            return self.base
        return _loc(self.file, tok.line, tok.column, tok.end_line, tok.end_column)

    # -- module level
    def start(self, meta, items):
        return ast.Module(file=self.file, items=tuple(i for i in items if i is not None))

    def empty(self, meta, _):
        return None

    def import_stmt(self, meta, ch):
        target, alias = ch
        is_path = target.type == "STRING"
        module = _unescape(str(target)[1:-1]) if is_path else str(target)
        return ast.Import(
            loc=self._loc(meta),
            module=module,
            is_path=is_path,
            alias=str(alias) if alias is not None else None,
        )

    def op_decl(self, meta, ch):
        name, params, out, *reqs = ch
        return ast.OpDecl(
            loc=self._loc(meta),
            name=str(name),
            params=params or (),
            out=out,
            requires=tuple(reqs),
        )

    def requirement(self, meta, ch):
        test, msg = ch
        return ast.Requirement(test=test, message=_unescape(str(msg)[1:-1]) if msg else None)

    def block_kw(self, meta, ch):
        return str(ch[0])

    def block_def(self, meta, ch):
        kind, name, params, body = ch
        return ast.BlockDef(
            loc=self._loc(meta), kind=kind, name=str(name), params=params or (), body=body
        )

    def space_def(self, meta, ch):
        name, params, body = ch
        return ast.SpaceDef(loc=self._loc(meta), name=str(name), params=params or (), body=body)

    def params(self, meta, ch):
        return tuple(ch)

    def param(self, meta, ch):
        name, ann, default = ch
        return ast.Param(loc=self._loc(meta), name=str(name), ann=ann, default=default)

    def type_ann(self, meta, ch):
        return ast.TypeAnn(name=str(ch[0]), arg=ch[1])

    def enum_ann(self, meta, ch):
        values = tuple(
            int(str(t)) if t.type == "INT" else _unescape(str(t)[1:-1]) for t in ch
        )
        if len({type(v) for v in values}) > 1:
            raise self.sources.error(
                "an enumerated type lists strings or integers, not both", self._loc(meta)
            )
        if len(set(values)) != len(values):
            dup = next(v for v in values if values.count(v) > 1)
            raise self.sources.error(
                f"an enumerated type lists {ast.enum_literal(dup)} twice", self._loc(meta)
            )
        kind = "int" if isinstance(values[0], int) else "str"
        return ast.TypeAnn(name=kind, values=values)

    def type_expr(self, meta, ch):
        args, kwargs = ch[1] or ((), ())
        return ast.TypeExpr(loc=self._loc(meta), name=str(ch[0]), args=args, kwargs=kwargs)

    # -- statements
    def body(self, meta, ch):
        return tuple(s for s in ch if s is not None)

    def targets(self, meta, ch):
        return tuple(str(t) for t in ch)

    def exprlist(self, meta, ch):
        return tuple(ch)

    def let_stmt(self, meta, ch):
        return self._assign(ast.Let, meta, ch)

    def assign_stmt(self, meta, ch):
        return self._assign(ast.Assign, meta, ch)

    def _assign(self, cls, meta, ch):
        targets, values = ch
        if len(values) != len(targets) and len(values) != 1:
            raise self.sources.error(
                f"{len(targets)} names but {len(values)} values", self._loc(meta)
            )
        return cls(loc=self._loc(meta), targets=targets, values=values)

    def aug_assign(self, meta, ch):
        name, op, value = ch
        return ast.AugAssign(loc=self._loc(meta), target=str(name), op=str(op)[0], value=value)

    def for_stmt(self, meta, ch):
        targets, it, body = ch
        return ast.For(loc=self._loc(meta), targets=targets, iter=it, body=body)

    def if_stmt(self, meta, ch):
        test, body, *rest = ch
        orelse = rest.pop() if rest and (rest[-1] is None or rest[-1][0] == "else") else None
        branches = ((test, body),) + tuple(b for b in rest)
        return ast.If(
            loc=self._loc(meta),
            branches=branches,
            orelse=orelse[1] if orelse is not None else None,
        )

    def elif_clause(self, meta, ch):
        return (ch[0], ch[1])

    def else_clause(self, meta, ch):
        return ("else", ch[0])

    def return_stmt(self, meta, ch):
        return ast.Return(loc=self._loc(meta), values=ch[0])

    def input_stmt(self, meta, ch):
        return ast.InputStmt(loc=self._loc(meta), name=str(ch[0]), type=ch[1])

    def output_stmt(self, meta, ch):
        name, value = ch
        return ast.OutputStmt(
            loc=self._loc(meta), name=str(name) if name is not None else None, value=value
        )

    def repeat_stmt(self, meta, ch):
        depths, label, var, body = ch
        return ast.Repeat(
            loc=self._loc(meta),
            depths=depths,
            label=label,
            var=str(var) if var is not None else None,
            body=body,
        )

    def assert_stmt(self, meta, ch):
        return ast.Assert(loc=self._loc(meta), test=ch[0], message=ch[1])

    # -- expressions
    def cond(self, meta, ch):
        return ast.CondExpr(loc=self._loc(meta), test=ch[0], then=ch[1], orelse=ch[2])

    def or_(self, meta, ch):
        return ast.BinOp(loc=self._loc(meta), op="or", left=ch[0], right=ch[1])

    def and_(self, meta, ch):
        return ast.BinOp(loc=self._loc(meta), op="and", left=ch[0], right=ch[1])

    def not_(self, meta, ch):
        return ast.Unary(loc=self._loc(meta), op="not", operand=ch[0])

    def comp_op(self, meta, ch):
        return " ".join(str(t) for t in ch)

    def compare(self, meta, ch):
        return ast.BinOp(loc=self._loc(meta), op=ch[1], left=ch[0], right=ch[2])

    def range_(self, meta, ch):
        return ast.BinOp(loc=self._loc(meta), op="..", left=ch[0], right=ch[1])

    def binop(self, meta, ch):
        return ast.BinOp(loc=self._loc(meta), op=str(ch[1]), left=ch[0], right=ch[2])

    def neg(self, meta, ch):
        return ast.Unary(loc=self._loc(meta), op="-", operand=ch[0])

    def call(self, meta, ch):
        args, kwargs = ch[1] or ((), ())
        return ast.Call(loc=self._loc(meta), func=ch[0], args=args, kwargs=kwargs)

    def index(self, meta, ch):
        obj, sub = ch
        if isinstance(sub, tuple) and sub and sub[0] == "slice":
            return ast.Slice(loc=self._loc(meta), obj=obj, lo=sub[1], hi=sub[2])
        return ast.Index(loc=self._loc(meta), obj=obj, index=sub)

    def slice(self, meta, ch):
        return ("slice", ch[0], ch[1])

    def bind(self, meta, ch):
        return ast.Bind(loc=self._loc(meta), obj=ch[0], kwargs=ch[1])

    def kwargs(self, meta, ch):
        return tuple(ch)

    def kwarg_(self, meta, ch):
        return (str(ch[0]), ch[1])

    def attr(self, meta, ch):
        return ast.Attr(loc=self._loc(meta), obj=ch[0], name=str(ch[1]))

    def args(self, meta, ch):
        pos = tuple(a for a in ch if not (isinstance(a, tuple) and a and a[0] == "kw"))
        kws = tuple((a[1], a[2]) for a in ch if isinstance(a, tuple) and a and a[0] == "kw")
        seen = set()
        for a in ch:
            is_kw = isinstance(a, tuple) and a and a[0] == "kw"
            if is_kw:
                if a[1] in seen:
                    raise self.sources.error(f"argument {a[1]!r} given twice", a[2].loc)
                seen.add(a[1])
            elif seen:
                raise self.sources.error("positional argument after a keyword argument", a.loc)
        return (pos, kws)

    def kwarg(self, meta, ch):
        return ("kw", str(ch[0]), ch[1])

    def int_(self, meta, ch):
        tok = ch[0]
        digits = str(tok).lstrip("0") or "0"
        if len(digits) > 19 or int(digits) > MAX_INT:
            raise self.sources.error(
                f"integer literal too large (the limit is {MAX_INT})", self._tok_loc(tok)
            )
        return ast.Num(loc=self._tok_loc(tok), value=int(digits), text=str(tok))

    def float_(self, meta, ch):
        tok = ch[0]
        value = float(tok)
        if value != value or value in (float("inf"), float("-inf")):
            raise self.sources.error("float literal out of range", self._tok_loc(tok))
        return ast.Num(loc=self._tok_loc(tok), value=value, text=str(tok))

    def string(self, meta, ch):
        tok = ch[0]
        return self._template(str(tok), self._tok_loc(tok))

    def true(self, meta, ch):
        return ast.Bool(loc=self._loc(meta), value=True)

    def false(self, meta, ch):
        return ast.Bool(loc=self._loc(meta), value=False)

    def name(self, meta, ch):
        return ast.Name(loc=self._tok_loc(ch[0]), id=str(ch[0]))

    def list_(self, meta, ch):
        return ast.ListExpr(loc=self._loc(meta), items=ch[0] or ())

    def items(self, meta, ch):
        return tuple(ch)

    def comprehension(self, meta, ch):
        elt, targets, it, cond = ch
        return ast.Comprehension(loc=self._loc(meta), elt=elt, targets=targets, iter=it, cond=cond)

    def choice_set(self, meta, ch):
        return ch[0]

    def label(self, meta, ch):
        return self.string(meta, ch)

    def choose_value(self, meta, ch):
        return ast.ChooseValue(loc=self._loc(meta), values=ch[0], label=ch[1])

    def choose_op(self, meta, ch):
        return self._choose(meta, ch, optional=False)

    def optional(self, meta, ch):
        return self._choose(meta, ch, optional=True)

    def _choose(self, meta, ch, optional):
        cands, label, args = ch
        pos, kws = args or ((), ())
        return ast.ChooseOp(
            loc=self._loc(meta),
            candidates=cands,
            label=label,
            args=pos,
            kwargs=kws,
            optional=optional,
        )

    def pick_some(self, meta, ch):
        return None

    def pick(self, meta, ch):
        k, items, label = ch
        return ast.Pick(loc=self._loc(meta), k=k, items=items, label=label)

    def _template(self, raw: str, loc: SourceLoc) -> ast.Str:
        body = raw[1:-1]
        parts: list[str | ast.Expr] = []
        buf: list[str] = []
        i = 0
        while i < len(body):
            ch = body[i]
            if ch == "\\" and i + 1 < len(body):
                buf.append(body[i : i + 2])
                i += 2
            elif body.startswith("{{", i) or body.startswith("}}", i):
                buf.append(ch)
                i += 2
            elif ch == "{":
                end = body.find("}", i)
                if end < 0:
                    raise self.sources.error("unclosed '{' in string interpolation", loc)
                if buf:
                    parts.append(_unescape("".join(buf)))
                    buf = []
                inner = body[i + 1 : end].strip()
                if not inner:
                    raise self.sources.error("empty '{}' in string interpolation", loc)
                try:
                    parts.append(parse_expr(inner, self.file, base=loc))
                except NasError as e:
                    raise self.sources.error(f"in '{{{inner}}}': {e.message}", loc) from None
                i = end + 1
            elif ch == "}":
                raise self.sources.error("single '}' in string; write '}}'", loc)
            else:
                buf.append(ch)
                i += 1
        if buf:
            parts.append(_unescape("".join(buf)))
        return ast.Str(loc=loc, parts=tuple(parts), text=raw)
