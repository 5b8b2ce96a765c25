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
        data = json.loads(text)
        if not isinstance(data, dict) or not isinstance(data.get("choices"), dict):
            raise ValueError("an architecture file is a JSON object with a 'choices' object")
        return cls(data["choices"], space=data.get("space"), params=data.get("params") or {})

    @classmethod
    def load(cls, name_or_path: str | Path) -> Architecture:
        """A stdlib architecture by name (``"darts_v2"``) or a JSON file by path."""
        path = Path(name_or_path)
        if not path.suffix and not path.exists():
            res = resources.files("nasc.stdlib") / "architectures" / f"{name_or_path}.json"
            if not res.is_file():
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
        return cls.from_json(path.read_text())

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json(indent=2) + "\n")


def _plain(v: Any) -> Any:
    if isinstance(v, tuple | list):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    return v
