"""Hypothesis strategies for property-testing spaces and IR transformations.

``space_sources()`` draws the text of a random, valid ``.nas`` space that uses every choice kind
(op, input, value, repeat, optional), nests choices inside candidates, repeats and picks, shares
labels between block instances, and has mismatched shapes joined by ``align`` nodes.
``spaces()`` elaborates those texts; ``architectures(s)`` draws an architecture of a space.

>>> from hypothesis import given
>>> @given(spaces())
... def test_count_is_positive(space):
...     assert space.count() >= 1
"""

from __future__ import annotations

from typing import Any

import attrs
from hypothesis import strategies as st

import nasc
from nasc.architecture import Architecture
from nasc.space import Space

_PRELUDE = """\
op fa(x: image, C: int, stride: int = 1) -> image(C, x.stride * stride)
op fb(x: image, C: int, stride: int = 1) -> image(C, x.stride * stride)
op fc(x: image, C: int, stride: int = 1) -> image(C, x.stride * stride)
"""
_OPS = ("fa", "fb", "fc")


@attrs.define
class _Gen:
    draw: Any
    max_depth: int
    labels: int = 0
    blocks: list[str] = attrs.field(factory=list)

    def label(self) -> str:
        self.labels += 1
        return f"L{self.labels}"

    def layers(self, depth: int, indent: str, suffix: str, n: int | None = None) -> list[str]:
        count = n if n is not None else self.draw(st.integers(1, 3 if depth == 0 else 2))
        out: list[str] = []
        for _ in range(count):
            out += self.layer(depth, indent, suffix)
        return out

    def layer(self, depth: int, indent: str, suffix: str) -> list[str]:
        kinds = ["op", "choose", "value", "concat", "align"]
        if depth < self.max_depth:
            kinds += ["pick", "repeat", "optional"]
        if self.blocks:
            kinds += ["call"]
        kind = self.draw(st.sampled_from(kinds))
        lab = self.label() + suffix
        if kind == "op":
            return [f"{indent}x = {self.draw(st.sampled_from(_OPS))}(x, C)"]
        if kind == "concat":
            a, b = self.draw(st.lists(st.sampled_from(_OPS), min_size=2, max_size=2))
            return [f"{indent}x = {a}(concat([x, {b}(x, C)]), C)"]
        if kind == "value":
            vals = self.draw(
                st.lists(st.sampled_from([4, 8, 12, 16]), min_size=1, max_size=3, unique=True)
            )
            return [f'{indent}x = fa(fb(x, choose {{{", ".join(map(str, vals))}}} @"{lab}"), C)']
        if kind == "choose":
            pool = list(_OPS) + self.blocks
            cands = self.draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3, unique=True))
            return [f'{indent}x = choose [{", ".join(cands)}] @"{lab}" (x, C)']
        if kind == "align":
            # a mismatch that needs an aligner: a strided branch brought back, or a reduction
            # (a reduction changes the type, so only at the top level of the space, never
            # inside a repeat or a candidate block whose alternatives keep the type)
            policy = self.draw(st.sampled_from(["dcnas", "hrnas", "darts"]))
            if depth == 0 and (policy == "darts" or self.draw(st.booleans())):
                return [f'{indent}x = fa(align(x, stride=x.stride * 2, policy="{policy}"), C)']
            if policy == "darts":
                policy = "dcnas"
            return [
                f"{indent}x = sum([x, align(fb(x, 2 * C, stride=2), channels=C, "
                f'stride=x.stride, policy="{policy}")])'
            ]
        if kind == "optional":
            cand = self.draw(st.sampled_from(list(_OPS) + self.blocks))
            return [f'{indent}x = optional {cand} @"{lab}" (x, C)']
        if kind == "call":
            return [f"{indent}x = {self.draw(st.sampled_from(self.blocks))}(x, C)"]
        if kind == "pick":
            n = self.draw(st.integers(1, 3))
            items = ", ".join(["x"] + [f"{op}(x, C)" for op in _OPS[: n - 1]])
            k = self.draw(st.sampled_from(["some"] + [str(i) for i in range(1, n + 1)]))
            nested = f'choose [fa, fb] @"{lab}.e{{h.index}}" (h, C)'
            edge = self.draw(st.sampled_from(["fa(h, C)", nested]))
            merge = self.draw(st.sampled_from(["sum"] if k == "some" else ["sum", "concat"]))
            line = f'{indent}x = {merge}([{edge} for h in pick {k} of [{items}] @"{lab}"])'
            return [line] + ([f"{indent}x = fa(x, C)"] if merge == "concat" else [])
        # repeat
        lo = self.draw(st.integers(0, 1))
        hi = self.draw(st.integers(lo + 1, lo + 2))
        templated = self.draw(st.booleans())
        body = self.layers(depth + 1, indent + "    ", suffix + (".{j}" if templated else ""))
        return [f'{indent}repeat {{{lo}..{hi + 1}}} @"{lab}" as j {{', *body, f"{indent}}}"]


@st.composite
def space_sources(draw: Any, max_depth: int = 2, max_blocks: int = 2) -> str:
    """The text of a random valid space with every choice kind, nesting and shared labels."""
    gen = _Gen(draw=draw, max_depth=max_depth)
    lines = [_PRELUDE]
    for b in range(draw(st.integers(0, max_blocks))):
        body = gen.layers(1, "    ", "", n=draw(st.integers(1, 2)))
        lines += [f"block b{b}(x, C: int) {{", *body, "    return x", "}", ""]
        gen.blocks.append(f"b{b}")
    body = gen.layers(0, "    ", "")
    lines += [
        "space random_space(C: int = 8) {",
        "    input x: image(3)",
        "    x = fa(x, C)",
        *body,
        "    output x",
        "}",
    ]
    return "\n".join(lines) + "\n"


def spaces(max_depth: int = 2, max_blocks: int = 2) -> st.SearchStrategy[Space]:
    """Random valid spaces (see :func:`space_sources`), elaborated."""
    return space_sources(max_depth, max_blocks).map(lambda t: nasc.parse(t, file="random.nas"))


@st.composite
def architectures(draw: Any, space: Space) -> Architecture:
    """An architecture of ``space``: every active label gets a drawn decision."""
    from nasc.ir.decisions import order

    specs = space.specs
    known: dict[str, Any] = {}
    for lab in order(specs):
        spec = specs[lab]
        if not spec.guard.holds(known):
            continue
        if spec.kind == "input":
            n = len(spec.options)
            k = draw(st.integers(spec.k_min, spec.k_max))
            known[lab] = tuple(
                sorted(draw(st.lists(st.integers(0, n - 1), min_size=k, max_size=k, unique=True)))
            )
        else:
            known[lab] = draw(st.sampled_from(spec.options))
    return Architecture(known, space=space.name, params=space.params)


@st.composite
def pipelines(draw: Any) -> list[Any]:
    """A valid pass pipeline: alignment and CSE in any order, then relaxation, then optional
    partial channels, kernel-size batching and sampling (each with drawn options)."""
    from nasc.ir.passes import registered

    front = draw(st.permutations(["insert_alignment", "cse"]))
    passes = [registered(n) for n in front if draw(st.booleans())]
    passes.append(
        registered(
            "relax",
            weighting=draw(st.sampled_from(["softmax", "gumbel"])),
            tau=draw(st.sampled_from([0.5, 1.0, 5.0])),
            hard=draw(st.booleans()),
            edge_weights="inputs",
        )
    )
    if draw(st.booleans()):
        passes.append(registered("partial_channels", k=draw(st.sampled_from([1, 2]))))
    if draw(st.booleans()):
        passes.append(registered("batch_kernels"))
    if draw(st.booleans()):
        passes.append(
            registered(
                "sample",
                ops=draw(st.sampled_from(["uniform", "binary_gate", "multinomial"])),
                paths=draw(st.integers(1, 2)),
                inputs=draw(st.integers(0, 2)),
            )
        )
    return passes


__all__ = ["architectures", "pipelines", "space_sources", "spaces"]
