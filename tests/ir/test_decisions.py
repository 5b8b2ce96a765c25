"""Properties of counting, enumerating, sampling and resolving, over random spaces."""

import random

from hypothesis import assume, given, settings
from hypothesis import strategies as st
from nasc.ir.nodes import CHOICE_KINDS
from nasc.ir.printer import print_graph
from nasc.ir.verify import verify

import nasc
from nasc.testing import architectures, space_sources, spaces


@settings(max_examples=120)
@given(spaces())
def test_count_equals_enumeration(space):
    n = space.count()
    assume(n <= 2000)
    archs = list(space.enumerate())
    assert len(archs) == n
    assert len({a.to_json() for a in archs}) == n


@settings(max_examples=80)
@given(spaces())
def test_verify_holds_on_every_elaborated_space(space):
    verify(space.graph)


@settings(max_examples=80)
@given(spaces(), st.integers(0, 2**32))
def test_seeded_sampling_is_deterministic_and_samples_only_active_choices(space, seed):
    a, b = space.sample(seed), space.sample(random.Random(seed))
    assert a == b
    assert space.canonical(a) == a, "a sample decides exactly the active labels"


@settings(max_examples=80)
@given(st.data())
def test_resolve_gives_a_choice_free_space_that_verifies(data):
    space = data.draw(spaces())
    arch = data.draw(architectures(space))
    resolved = space.resolve(arch)
    assert not [r for r in resolved.graph if isinstance(r, CHOICE_KINDS)]
    verify(resolved.graph)
    assert resolved.count() == 1


@settings(max_examples=60)
@given(st.data())
def test_resolved_spaces_print_and_parse_back_to_the_same_graph(data):
    space = data.draw(spaces())
    resolved = space.resolve(data.draw(architectures(space)))
    again = nasc.parse(resolved.to_nas(), file="resolved.nas")
    assert print_graph(again.graph, locations=False) == print_graph(resolved.graph, locations=False)


@settings(max_examples=60)
@given(space_sources())
def test_to_nas_round_trips(text):
    space = nasc.parse(text, file="random.nas")
    again = nasc.parse(space.to_nas(), file="random.nas")
    assert print_graph(again.graph, locations=False) == print_graph(space.graph, locations=False)
    assert again.count() == space.count()


@settings(max_examples=60)
@given(st.data())
def test_architecture_json_round_trips(data):
    space = data.draw(spaces())
    arch = data.draw(architectures(space))
    back = nasc.Architecture.from_json(arch.to_json())
    assert back == arch
    assert space.canonical(back) == space.canonical(arch)


@settings(max_examples=60)
@given(st.data())
def test_inactive_labels_do_not_change_the_architecture(data):
    space = data.draw(spaces())
    arch = data.draw(architectures(space))
    specs = space.specs
    extra = {
        lab: spec.options[0] if spec.kind != "input" else tuple(range(spec.k_min))
        for lab, spec in specs.items()
        if lab not in arch
    }
    padded = {**arch, **extra}
    assert space.canonical(padded) == space.canonical(arch)
