"""Architectures: one decision per active label of a space.

>>> a = Architecture({"n0.op": "sep_conv_3x3", "n0.in": [1, 0]}, space="toy")
>>> a.to_json()
'{"choices": {"n0.in": [0, 1], "n0.op": "sep_conv_3x3"}, "params": {}, "space": "toy"}'
>>> Architecture.from_json(a.to_json()) == a
True
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

#: The operations of NAS-Bench-201 (its ``NAS_BENCH_201`` list), as the stdlib space names them.
NAS_BENCH_201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")


def _canon(v: Any) -> Any:
    if isinstance(v, list | tuple):
        items = [_canon(x) for x in v]
        if all(isinstance(x, int) and not isinstance(x, bool) for x in items):
            return tuple(sorted(items))  # input-choice picks are sets
        return tuple(items)
    return v


class Architecture(Mapping[str, Any]):
    """A mapping label → decision, with the space and parameters it belongs to.

    Input-choice decisions are stored as sorted tuples of indices, so the order a user lists
    picks in does not matter.
    """

    def __init__(
        self,
        decisions: Mapping[str, Any] | None = None,
        *,
        space: str | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> None:
        self._d = {str(k): _canon(v) for k, v in sorted((decisions or {}).items())}
        self.space = space
        self.params = dict(sorted((params or {}).items()))

    def __getitem__(self, label: str) -> Any:
        return self._d[label]

    def __iter__(self) -> Iterator[str]:
        return iter(self._d)

    def __len__(self) -> int:
        return len(self._d)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Architecture):
            return (
                self._d == other._d and self.space == other.space and (self.params == other.params)
            )
        if isinstance(other, Mapping):
            return self._d == {k: _canon(v) for k, v in other.items()}
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self.space, tuple(self._d.items())))

    def __repr__(self) -> str:
        return f"Architecture({self._d!r}, space={self.space!r})"

    def to_dict(self) -> dict[str, Any]:
        plain = {k: list(v) if isinstance(v, tuple) else v for k, v in self._d.items()}
        return {"choices": plain, "params": _plain(self.params), "space": self.space}

    def to_json(self, indent: int | None = None) -> str:
        """Canonical JSON: sorted keys, picks as sorted lists."""
        return json.dumps(self.to_dict(), sort_keys=True, indent=indent)

    @classmethod
    def from_json(cls, text: str) -> Architecture:
        """An architecture from its JSON; ``ValueError`` says what is wrong with the text."""
        try:
            data = json.loads(text, parse_constant=_no_constant)
        except RecursionError:
            raise ValueError("the JSON nests too deeply") from None
        if not isinstance(data, dict) or not isinstance(data.get("choices"), dict):
            raise ValueError("an architecture file is a JSON object with a 'choices' object")
        space, params = data.get("space"), data.get("params")
        if space is not None and not isinstance(space, str):
            raise ValueError(f"'space' must be a string, not {_json_type(space)}")
        if params is not None and not isinstance(params, dict):
            raise ValueError(f"'params' must be an object of space parameters, not "
                             f"{_json_type(params)}")
        for label, v in data["choices"].items():
            if not _decision(v):
                raise ValueError(f"choice {label!r}: a decision is a name, a number or a list "
                                 f"of input indices, not {_json_type(v)}")
        for k, v in (params or {}).items():
            if not _parameter(v):
                raise ValueError(f"parameter {k!r}: a value is a number, a string, a bool or a "
                                 f"list of them, not {_json_type(v)}")
        return cls(data["choices"], space=space, params=params or {})

    @classmethod
    def load(cls, name_or_path: str | Path) -> Architecture:
        """A stdlib architecture by name (``"darts_v2"``) or a JSON file by path."""
        path = Path(name_or_path)
        if not path.suffix and not path.exists():
            res = resources.files("nasc.stdlib") / "architectures" / f"{name_or_path}.json"
            if not str(name_or_path).isidentifier() or not res.is_file():  # a name, no path
                known = (
                    sorted(
                        Path(str(p)).stem
                        for p in (resources.files("nasc.stdlib") / "architectures").iterdir()
                        if p.name.endswith(".json")
                    )
                    if (resources.files("nasc.stdlib") / "architectures").is_dir()
                    else []
                )
                raise FileNotFoundError(
                    f"no stdlib architecture {name_or_path!r}; known: {', '.join(known) or '-'}"
                )
            return cls.from_json(res.read_text())
        from nasc.dsl.files import read_regular

        data = read_regular(path, MAX_FILE_BYTES)  # only a regular file, never over the limit
        try:
            return cls.from_json(data.decode("utf-8"))
        except UnicodeDecodeError:
            raise ValueError("not a UTF-8 text file") from None

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json(indent=2) + "\n")

    # ---- NAS-Bench-201 -------------------------------------------------------------------------
    @classmethod
    def from_nas_bench_201(cls, text: str, *, params: Mapping[str, Any] | None = None
                           ) -> Architecture:
        """An architecture of the ``nas_bench_201`` stdlib space from the benchmark's string
        (Dong & Yang 2020; ``|op~i|`` per edge into node ``j``, nodes joined by ``+``).

        >>> a = Architecture.from_nas_bench_201(
        ...     "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|skip_connect~0|none~1|avg_pool_3x3~2|")
        >>> a["2<-1"], a["3<-2"]
        ('skip_connect', 'avg_pool_3x3')
        >>> a.to_nas_bench_201()
        '|nor_conv_3x3~0|+|none~0|skip_connect~1|+|skip_connect~0|none~1|avg_pool_3x3~2|'
        """
        decisions: dict[str, str] = {}
        nodes = text.strip().split("+") if isinstance(text, str) else []
        for j, node in enumerate(nodes, start=1):
            if not (node.startswith("|") and node.endswith("|") and len(node) > 2):
                raise ValueError(f"not a NAS-Bench-201 architecture string: {text!r} "
                                 f"(node {j} is {node!r}, expected |op~0|...|op~{j - 1}|)")
            for edge in node[1:-1].split("|"):
                op, tilde, src = edge.partition("~")
                if not tilde or not src.isdigit() or op not in NAS_BENCH_201_OPS:
                    raise ValueError(
                        f"not a NAS-Bench-201 architecture string: {text!r} (edge {edge!r}; "
                        f"an edge is op~input with op one of {', '.join(NAS_BENCH_201_OPS)})")
                decisions[f"{j}<-{int(src)}"] = op
            want = {f"{j}<-{i}" for i in range(j)}
            got = {k for k in decisions if k.startswith(f"{j}<-")}
            if got != want:
                raise ValueError(f"not a NAS-Bench-201 architecture string: {text!r} (node {j} "
                                 f"needs one edge from each of nodes 0..{j - 1})")
        if not decisions:
            raise ValueError(f"not a NAS-Bench-201 architecture string: {text!r}")
        return cls(decisions, space="nas_bench_201", params=params)

    def to_nas_bench_201(self) -> str:
        """The NAS-Bench-201 string of an architecture of the ``nas_bench_201`` space (labels
        ``j<-i``), to look it up in the benchmark's tables."""
        nodes = 1 + max((int(k.split("<-")[0]) for k in self._d if "<-" in k), default=0)
        want = {f"{j}<-{i}" for j in range(1, nodes) for i in range(j)}
        if nodes < 2 or set(self._d) != want:
            raise ValueError("not a NAS-Bench-201 cell: the labels must be exactly "
                             "'j<-i' for 0 <= i < j, as in the nas_bench_201 space")
        bad = sorted(k for k in want if self._d[k] not in NAS_BENCH_201_OPS)
        if bad:
            raise ValueError(f"{bad[0]!r} is {self._d[bad[0]]!r}, not a NAS-Bench-201 op "
                             f"({', '.join(NAS_BENCH_201_OPS)})")
        return "+".join(
            "|" + "|".join(f"{self._d[f'{j}<-{i}']}~{i}" for i in range(j)) + "|"
            for j in range(1, nodes)
        )


#: The largest architecture file read (an architecture of thousands of labels is far smaller).
MAX_FILE_BYTES = 16 << 20


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number an architecture may hold")


def _json_type(v: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a bool", int: "a number",
             float: "a number", type(None): "null"}
    return names.get(type(v), type(v).__name__)


def _decision(v: Any) -> bool:
    if isinstance(v, list):
        return all(isinstance(x, int | str) and not isinstance(x, bool) for x in v)
    return isinstance(v, str | int | float)


def _parameter(v: Any, depth: int = 0) -> bool:
    if isinstance(v, list):
        return depth < 8 and all(_parameter(x, depth + 1) for x in v)
    return isinstance(v, str | int | float | bool) or v is None


def _plain(v: Any) -> Any:
    if isinstance(v, tuple | list):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    return v
