"""The Python examples in docs/testing.md run and their property tests pass."""

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "testing.md"


def test_testing_guide_examples_pass():
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) >= 4
    ns: dict = {}
    exec("import nasc", ns)  # noqa: S102 - our own documentation
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), ns)  # noqa: S102
    tests = [v for k, v in ns.items() if k.startswith("test_") and callable(v)]
    assert len(tests) >= 4
    for t in tests:
        t()
