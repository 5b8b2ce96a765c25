"""Guards: the conditions under which nested nodes exist."""

from nasc.ir.guards import Atom, Guard

A = Atom(label="a", test="eq", value="x")
B = Atom(label="b", test="has", value=1)
D = Atom(label="d", test="ge", value=2)


def test_true_and_false_are_identities():
    g = Guard.atom(A)
    assert (g & Guard.TRUE) == g
    assert (g | Guard.FALSE) == g
    assert (g & Guard.FALSE).is_false
    assert (g | Guard.TRUE).is_true


def test_absorption_keeps_guards_small():
    a, ab = Guard.atom(A), Guard.atom(A) & Guard.atom(B)
    assert (a | ab) == a


def test_contradictory_terms_vanish():
    other = Atom(label="a", test="eq", value="y")
    assert (Guard.atom(A) & Guard.atom(other)).is_false


def test_holds_evaluates_each_atom_kind():
    g = Guard.atom(A) & Guard.atom(B) & Guard.atom(D)
    assert g.holds({"a": "x", "b": (0, 1), "d": 3})
    assert not g.holds({"a": "x", "b": (0,), "d": 3})
    assert not g.holds({"a": "x", "b": (1,), "d": 1})
    assert not g.holds({"b": (1,), "d": 3}), "a missing label is an inactive one"


def test_substitute_decides_one_label():
    g = (Guard.atom(A) & Guard.atom(B)) | Guard.atom(D)
    assert g.substitute("a", "x") == Guard.atom(B) | Guard.atom(D)
    assert g.substitute("a", "y") == Guard.atom(D)
    assert g.substitute("d", 5).is_true
