"""Canonical forms (ir/canonical.py, docs/unique.md): the six rules, checked against networks
run on random inputs, and NAS-Bench-201's distinct cells against an independent brute force."""

import itertools
import zlib

import attrs
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from nasc.ir.canonical import CanonicalError, Canonicaliser
from nasc.ir.nodes import Align, Input, Merge, Op, Output

import nasc
from nasc.testing import spaces

# ---- a model of the ops: each op a random function with f(0) = 0 ----------------------------
WEIGHT_FREE = {"relu", "avg_pool_3x3", "max_pool_3x3"}


def _matrix(key: str, rows: int, cols: int) -> np.ndarray:
    rng = np.random.default_rng(zlib.crc32(key.encode()))
    return rng.normal(size=(rows, cols)) / np.sqrt(cols)


def run(space: nasc.Space, x: np.ndarray) -> dict[str, np.ndarray]:
    """A choice-free space's outputs on a vector input: a parameterised op is a random function
    chosen by (op, parameters, position in the canonical graph), a parameter-free one by (op,
    parameters) alone; ``none`` is zero, ``skip_connect`` at stride 1 the identity."""
    g = space.graph
    positions = space.canonical_form().positions
    val: dict[int, np.ndarray] = {}
    outs = {}
    for rec in g:
        ins = [val[i] for i in g.inputs(rec.id)]
        c = rec.type.channels
        if isinstance(rec, Input):
            val[rec.id] = np.resize(x, c)
        elif isinstance(rec, Output):
            outs[rec.name] = ins[0]
        elif isinstance(rec, Merge):
            val[rec.id] = sum(ins) if rec.mode == "sum" else np.concatenate(ins)
        elif isinstance(rec, Op) and rec.op == "none":
            val[rec.id] = np.zeros(c)
        elif isinstance(rec, Op) and rec.op == "skip_connect" and rec.param("stride") == 1:
            val[rec.id] = ins[0]
        else:
            name = rec.op if isinstance(rec, Op) else f"align-{rec.policy}"
            params = rec.params if isinstance(rec, Op) else ()
            where = "" if name in WEIGHT_FREE else f"@{positions.get(rec.id)}"
            arg = np.concatenate(ins)
            val[rec.id] = np.tanh(_matrix(f"{name}{params}{where}", c, len(arg)) @ arg)
    return outs


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        a[k].shape == b[k].shape and np.allclose(a[k], b[k], atol=1e-9) for k in a
    )


# ---- random cells with zero, identity, parameter-free and parameterised ops --------------------
OPS = ["none", "skip_connect", "avg_pool_3x3", "nor_conv_3x3", "nor_conv_1x1", "relu"]


@st.composite
def cell_sources(draw) -> str:
    n = draw(st.integers(2, 4))
    lines = ["import nas_bench_201", "space cells(C: int = 4) {", "    input x: image(C)",
             "    let nodes = [x]"]
    for j in range(1, n):
        ops = draw(st.lists(st.sampled_from(OPS), min_size=1, max_size=3, unique=True))
        srcs = draw(st.lists(st.integers(0, j - 1), min_size=1, max_size=j, unique=True))
        cands = ", ".join(op if op == "relu" else f"{op}[C=C]" for op in ops)
        if draw(st.booleans()):
            edge = f'choose [{cands}] @"e{j}_{{h.index}}" (h)'
            k = draw(st.integers(1, len(srcs)))
            items = ", ".join(f"nodes[{i}]" for i in srcs)
            lines.append(f'    nodes += sum([{edge} for h in pick {k} of [{items}] @"in{j}"])')
        else:
            terms = ", ".join(f'choose [{cands}] @"e{j}_{i}" (nodes[{i}])' for i in srcs)
            lines.append(f"    nodes += sum([{terms}])")
    out = draw(st.sampled_from(["last", "concat", "sum"]))
    if out == "last":
        lines.append(f"    output nodes[{n - 1}]")
    else:
        lines.append(f"    output {out}([nodes[{n - 1}], nodes[{draw(st.integers(0, n - 2))}]])")
    return "\n".join(lines + ["}"])


def _check_rules(space: nasc.Space, limit: int = 40) -> int:
    """Equal hashes: equal outputs with weights by position; different hashes: different
    outputs. Returns the number of distinct networks among the first ``limit``."""
    x = np.random.default_rng(1).normal(size=64)
    by_hash: dict[str, dict] = {}
    for arch in itertools.islice(space.enumerate(), limit):
        resolved = space.resolve(arch)
        h = space.canonical_hash(arch)
        assert resolved.canonical_hash() == h  # the space path and the resolved path agree
        out = run(resolved, x)
        if h in by_hash:
            assert same(by_hash[h], out), f"{arch} has a known hash but computes another function"
        else:
            for other in by_hash.values():
                assert not same(other, out), f"{arch} has a new hash but a known function"
            by_hash[h] = out
    return len(by_hash)


@settings(max_examples=40, deadline=None)
@given(cell_sources())
def test_equal_hashes_compute_equal_functions_and_different_ones_differ(text):
    space = nasc.parse(text, file="cells.nas")
    _check_rules(space)


@settings(max_examples=30, deadline=None)
@given(spaces())
def test_the_rules_hold_on_random_spaces(space):
    assume(space.count() <= 400)
    _check_rules(space, limit=25)


def test_each_rule_on_a_small_example():
    # rules 1, 2 and 5: a none edge cuts what only it fed; a sum of zeros is zero
    s = nasc.parse(
        "import nas_bench_201\n"
        "space s(C: int = 4) { input x: image(C)\n"
        '  let a = choose [none[C=C], nor_conv_3x3[C=C]] @"a" (x)\n'
        '  let b = choose [none[C=C], relu] @"b" (a)\n'
        '  output x + choose [none[C=C], skip_connect[C=C], avg_pool_3x3[C=C]] @"c" (b) }',
        file="s.nas")
    hashes = {tuple(v.split("[")[0] for v in a.values()): s.canonical_hash(a)
              for a in s.enumerate()}
    assert len(hashes) == 12
    zero_b = {k: h for k, h in hashes.items() if k[1] == "none" or k[0] == "none"}
    assert len(set(zero_b.values())) == 1  # b is zero: out = x whatever c is
    assert hashes[("none", "relu", "none")] == hashes[("nor_conv_3x3", "relu", "none")]
    # rule 3: skip_connect is elided, so c=skip gives out = x + relu(conv(x))
    assert hashes[("nor_conv_3x3", "relu", "skip_connect")] != hashes[("none", "none", "none")]
    assert s.count() == 12 and s.count(unique=True) == 3  # x; x + relu(conv x); x + pool(...)


def test_sum_order_and_sharing():
    # rule 4: a + b == b + a; rule 6: one convolution read twice differs from two of them
    cell = nasc.parse(
        "import nas_bench_201\n"
        "space cell(C: int = 4) { input x: image(C)\n output nb201_cell(x, C) }", file="c.nas")
    a = nasc.Architecture.from_nas_bench_201(
        "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|none~0|avg_pool_3x3~1|avg_pool_3x3~2|")
    b = nasc.Architecture.from_nas_bench_201(
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|none~1|+|none~0|avg_pool_3x3~1|avg_pool_3x3~2|")
    assert cell.canonical_hash(a) != cell.canonical_hash(b)
    shared = cell.canonical_form(a).text
    assert shared.count("'conv_bn'") == 1 and cell.canonical_form(b).text.count("'conv_bn'") == 2
    c = nasc.Architecture.from_nas_bench_201(
        "|avg_pool_3x3~0|+|nor_conv_1x1~0|none~1|+|none~0|skip_connect~1|skip_connect~2|")
    d = nasc.Architecture.from_nas_bench_201(
        "|nor_conv_1x1~0|+|avg_pool_3x3~0|none~1|+|none~0|skip_connect~1|skip_connect~2|")
    assert cell.canonical_hash(c) == cell.canonical_hash(d)
    # the docs' example: two of NAS-Bench-201's 6,466, both out = x
    e = nasc.Architecture.from_nas_bench_201(
        "|skip_connect~0|+|none~0|skip_connect~1|+|none~0|none~1|skip_connect~2|")
    f = nasc.Architecture.from_nas_bench_201(
        "|skip_connect~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|")
    assert cell.canonical_hash(e) == cell.canonical_hash(f)
    assert nasc.canonical_hash(cell, e) == cell.resolve(e).canonical_hash()


def test_relaxed_graphs_have_no_canonical_form():
    from nasc.ir.passes.relax import relax

    g = relax(nasc.load("nas_bench_201", N=1).graph)
    with pytest.raises(CanonicalError, match="relaxed"):
        Canonicaliser(g)


# ---- NAS-Bench-201: the distinct cells, by brute force ----------------------------------------
NB201_OPS = ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"]
EDGES = [(1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2)]


def _nb201_fingerprints() -> dict[tuple, tuple]:
    """Each cell run on a random input with a random function per op; a convolution is one of
    a pool of random functions of its kind. Cells are the same network when some one-to-one
    assignment of pool functions to their convolutions that matter gives the same output: the
    fingerprint is the least output over all assignments (and which convolutions matter is
    found by changing each one's function)."""
    rng = np.random.default_rng(0)
    dim = 4
    x0 = rng.normal(size=dim)
    pool = {op: [rng.normal(size=(dim, dim)) for _ in range(7)] for op in NB201_OPS[2:4]}
    avg = rng.normal(size=(dim, dim))

    def run_cell(cell, fn):
        nodes = [x0]
        for j in range(1, 4):
            acc = np.zeros(dim)
            for e, (jj, i) in enumerate(EDGES):
                if jj == j and cell[e] == "skip_connect":
                    acc = acc + nodes[i]
                elif jj == j and cell[e] == "avg_pool_3x3":
                    acc = acc + np.tanh(avg @ nodes[i])
                elif jj == j and cell[e].startswith("nor_conv"):
                    acc = acc + np.tanh(fn[e] @ nodes[i])
            nodes.append(acc)
        return nodes[3]

    out = {}
    for cell in itertools.product(NB201_OPS, repeat=6):
        convs = [e for e, op in enumerate(cell) if op.startswith("nor_conv")]
        base = {e: pool[cell[e]][k] for k, e in enumerate(convs)}
        ref = run_cell(cell, base)
        live = [e for e in convs
                if not np.allclose(run_cell(cell, {**base, e: pool[cell[e]][6]}), ref)]
        kinds = {t: [e for e in live if cell[e] == t] for t in pool}
        best = None
        for p1 in itertools.permutations(range(len(kinds["nor_conv_1x1"]))):
            for p3 in itertools.permutations(range(len(kinds["nor_conv_3x3"]))):
                fn = dict(base)
                fn.update({e: pool["nor_conv_1x1"][k] for e, k in zip(kinds["nor_conv_1x1"], p1)})
                fn.update({e: pool["nor_conv_3x3"][k] for e, k in zip(kinds["nor_conv_3x3"], p3)})
                value = tuple(np.round(run_cell(cell, fn), 8) + 0.0)
                best = value if best is None or value < best else best
        out[cell] = (tuple(len(v) for v in kinds.values()), best)
    return out


def test_nas_bench_201_distinct_cells_match_a_brute_force():
    cell = nasc.parse(
        "import nas_bench_201\n"
        "space cell(C: int = 4) { input x: image(C)\n output nb201_cell(x, C) }", file="c.nas")
    canon = Canonicaliser(cell.graph)
    fingerprints = _nb201_fingerprints()
    ours: dict[str, set] = {}
    theirs: dict[tuple, set] = {}
    for ops in itertools.product(NB201_OPS, repeat=6):
        arch = dict(zip([f"{j}<-{i}" for j, i in EDGES], ops))
        ours.setdefault(canon.hash(arch), set()).add(ops)
        theirs.setdefault(fingerprints[ops], set()).add(ops)
    # the same partition of the 15,625 cells, not just the same number of classes
    assert sorted(map(sorted, ours.values())) == sorted(map(sorted, theirs.values()))
    assert len(ours) == 5260


@pytest.mark.slow
def test_nasc_count_unique_nas_bench_201(capsys):
    from nasc.cli import main

    assert main(["count", "--unique", "nas_bench_201", "-D", "N=1"]) == 0
    assert capsys.readouterr().out.strip() == "5260"


def _shuffled(g, rng):
    """The same graph built in another topological order (so with other node ids)."""
    from nasc.ir.graph import Graph

    out, new, left = Graph(), {}, list(g.topo_order())
    while left:
        ready = [n for n in left if all(i in new for i in g.inputs(n))]
        n = ready[rng.integers(len(ready))]
        left.remove(n)
        fields = {f: getattr(g[n], f) for f in attrs.fields_dict(type(g[n])) if f != "id"}
        new[n] = out.add(type(g[n]), [new[i] for i in g.inputs(n)], **fields)
    return out


@settings(max_examples=40, deadline=None)
@given(cell_sources(), st.integers(0, 2**16))
def test_the_hash_does_not_depend_on_node_order(text, seed):
    """Ties (twins, or nodes only a mark separates) are broken independently of the order the
    nodes were built in: every renumbering of a network gives the same canonical text."""
    space = nasc.parse(text, file="cells.nas")
    rng = np.random.default_rng(seed)
    for arch in itertools.islice(space.enumerate(), 0, None, max(space.count() // 6, 1)):
        g = space.resolve(arch).graph
        want = Canonicaliser(g).form({}).text
        for _ in range(3):
            assert Canonicaliser(_shuffled(g, rng)).form({}).text == want


def test_nas_bench_201_networks_do_not_depend_on_node_order():
    space = nasc.load("nas_bench_201", N=2)
    rng = np.random.default_rng(0)
    # two symmetric branches conv -> pool per cell: tied nodes that only marking separates
    symmetric = nasc.Architecture.from_nas_bench_201(
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|none~1|+|none~0|avg_pool_3x3~1|avg_pool_3x3~2|")
    for arch in [symmetric] + [space.sample(seed) for seed in range(6)]:
        g = space.resolve(arch).graph
        want = Canonicaliser(g).form({}).text
        for _ in range(4 if arch is symmetric else 1):
            assert Canonicaliser(_shuffled(g, rng)).form({}).text == want


# ---- the real networks (PyTorch), weights by canonical position -------------------------------
def _torch_outputs(space, arch, x):
    import torch

    resolved = space.resolve(arch)
    positions = resolved.canonical_form().positions
    net = nasc.instantiate(space, arch).eval()
    modules = {int(name.rsplit("_", 1)[1]): m for name, m in net.named_children()
               if name.rsplit("_", 1)[-1].isdigit()}
    for nid, pos in positions.items():
        gen = torch.Generator().manual_seed(pos)
        for m in modules[nid].modules():
            if isinstance(m, torch.nn.Conv2d | torch.nn.Linear):
                for p in m.parameters(recurse=False):
                    p.data = torch.randn(p.shape, generator=gen) * 0.5
    with torch.no_grad():
        return net(x)


def test_nas_bench_201_networks_with_equal_hashes_compute_the_same_function():
    import torch

    space = nasc.load("nas_bench_201", N=1, C=4)
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    strings = [  # two pairs of one network each (docs/unique.md), then random cells
        "|avg_pool_3x3~0|+|nor_conv_1x1~0|none~1|+|none~0|skip_connect~1|skip_connect~2|",
        "|nor_conv_1x1~0|+|avg_pool_3x3~0|none~1|+|none~0|skip_connect~1|skip_connect~2|",
        "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|skip_connect~0|none~1|nor_conv_1x1~2|",
        "|nor_conv_3x3~0|+|avg_pool_3x3~0|none~1|+|skip_connect~0|nor_conv_1x1~1|none~2|",
    ]
    archs = [nasc.Architecture.from_nas_bench_201(s) for s in strings]
    archs += [space.sample(seed) for seed in range(6)]
    outs: dict[str, object] = {}
    for arch in archs:
        if "('zero'," in space.canonical_form(arch).text:
            continue  # a zero cell: the classifier's bias alone, whatever the weights
        h, out = space.canonical_hash(arch), _torch_outputs(space, arch, x)
        if h in outs:
            assert torch.allclose(outs[h], out, atol=1e-5)
        else:
            assert not any(torch.allclose(o, out, atol=1e-5) for o in outs.values())
            outs[h] = out
    assert len(outs) >= 4
    assert space.canonical_hash(archs[0]) == space.canonical_hash(archs[1])
    assert space.canonical_hash(archs[2]) == space.canonical_hash(archs[3])
