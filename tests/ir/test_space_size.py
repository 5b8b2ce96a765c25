"""One definition of a space's size (docs/language.md section 13): count(), enumerate(),
sample() and the docs agree; distinct networks (docs/unique.md); NAS-Bench-201 strings."""

import random

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import nasc
from nasc.testing import spaces

NB201 = nasc.load("nas_bench_201", N=1)
DOC_EXAMPLE = """
import nn
space s() {
    input x: image(8)
    let a = choose [relu, batch_norm] @"a" (x)
    output sum(pick 1 of [x, a] @"in")
}
"""


def test_the_documented_example_counts_decisions():
    s = nasc.parse(DOC_EXAMPLE)
    archs = list(s.enumerate())
    assert s.count() == len(archs) == 4
    assert {(a["a"], a["in"]) for a in archs} == {
        (op, pick) for op in ("relu", "batch_norm") for pick in ((0,), (1,))
    }
    # in: [0] is out = x whatever a is: three networks
    assert s.count(unique=True) == len(list(s.enumerate(unique=True))) == 3
    assert s.canonical_hash({"a": "relu", "in": [0]}) == s.canonical_hash(
        {"a": "batch_norm", "in": [0]})


@settings(max_examples=80, deadline=None)
@given(spaces(), st.integers(0, 2**16))
def test_count_enumerate_and_sample_agree(space, seed):
    n = space.count()
    assume(n <= 1500)
    archs = [a.to_json() for a in space.enumerate()]
    assert len(archs) == n, "enumerate() yields count() architectures"
    assert len(set(archs)) == n, "each decision assignment once"
    every = set(archs)
    rng = random.Random(seed)
    for _ in range(5):
        assert space.sample(rng).to_json() in every, "sample() draws an enumerated architecture"
    for a in space.enumerate():
        assert space.canonical(a) == a  # exactly the active labels, each decided


@settings(max_examples=40, deadline=None)
@given(spaces())
def test_unique_enumeration_gives_one_architecture_per_network(space):
    assume(space.count() <= 300)
    unique = list(space.enumerate(unique=True))
    hashes = [space.canonical_hash(a) for a in unique]
    assert len(set(hashes)) == len(unique) == space.count(unique=True) <= space.count()
    assert {space.canonical_hash(a) for a in space.enumerate()} == set(hashes)


def test_unique_counting_names_its_limit():
    with pytest.raises(nasc.NasError, match=r"more than the limit of 100"):
        NB201.count(unique=True, limit=100)


def test_canonical_hash_checks_the_architecture():
    s = NB201
    with pytest.raises(nasc.NasError, match="no decision for active label"):
        s.canonical_hash({"1<-0": "none"})
    with pytest.raises(nasc.NasError, match="has choices"):
        s.canonical_hash()


@settings(max_examples=50)
@given(st.lists(st.sampled_from(nasc.architecture.NAS_BENCH_201_OPS), min_size=6, max_size=6))
def test_nas_bench_201_strings_round_trip(ops):
    labels = ["1<-0", "2<-0", "2<-1", "3<-0", "3<-1", "3<-2"]
    arch = nasc.Architecture(dict(zip(labels, ops)), space="nas_bench_201")
    text = arch.to_nas_bench_201()
    assert text == "|{}~0|+|{}~0|{}~1|+|{}~0|{}~1|{}~2|".format(*ops)
    back = nasc.Architecture.from_nas_bench_201(text)
    assert back == arch
    assert dict(NB201.canonical(back)) == dict(back)


@pytest.mark.parametrize("bad", [
    "", "|nor_conv_3x3~0|+|none~0|", "|conv~0|", "|nor_conv_3x3~1|",
    "|nor_conv_3x3~0|+|none~0|none~0|", "nor_conv_3x3~0",
])
def test_malformed_nas_bench_201_strings_are_refused(bad):
    with pytest.raises(ValueError, match="NAS-Bench-201"):
        nasc.Architecture.from_nas_bench_201(bad)


def test_only_nas_bench_201_cells_have_a_string():
    with pytest.raises(ValueError, match="NAS-Bench-201"):
        nasc.Architecture({"op": "relu"}).to_nas_bench_201()
