"""Every ``>>>`` example in nasc's modules runs and prints what it says (CI runs them here)."""

import doctest
import importlib
import pkgutil

import nasc
import pytest


def _modules() -> list[str]:
    names = ["nasc"]
    for info in pkgutil.walk_packages(nasc.__path__, "nasc."):
        names.append(info.name)
    # the packages mapped from the other top-level folders (pyproject's package-dir)
    for pkg in ("nasc.dsl", "nasc.ir", "nasc.lowering", "nasc.backends", "nasc.search"):
        mod = importlib.import_module(pkg)
        names.append(pkg)
        names += [i.name for i in pkgutil.walk_packages(mod.__path__, pkg + ".")]
    return sorted(set(names) - {"nasc.__main__"})


def _with_examples() -> list[str]:
    out = []
    for name in _modules():
        if name.startswith("nasc.backends.triton"):
            continue  # kernels: tested under TRITON_INTERPRET=1 in tests/kernels
        mod = importlib.import_module(name)
        if doctest.DocTestFinder().find(mod) and any(
            t.examples for t in doctest.DocTestFinder().find(mod)
        ):
            out.append(name)
    return out


MODULES = _with_examples()


def test_the_modules_with_examples_are_found():
    # every folder carries examples; an empty list would mean the discovery broke
    assert {"nasc", "nasc.ir.guards", "nasc.dsl.parser", "nasc.space"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    mod = importlib.import_module(name)
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
