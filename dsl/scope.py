"""The variables of a running program: nested scopes, and the values that steer control flow."""

from __future__ import annotations

from typing import Any


class Scope:
    """Variables of one ``{ ... }`` body; lookups walk to the enclosing bodies of one call."""

    __slots__ = ("vars", "parent")

    def __init__(self, parent: Scope | None = None) -> None:
        self.vars: dict[str, Any] = {}
        self.parent = parent

    def find(self, name: str) -> Scope | None:
        s: Scope | None = self
        while s is not None:
            if name in s.vars:
                return s
            s = s.parent
        return None

    def names(self) -> set[str]:
        out: set[str] = set()
        s: Scope | None = self
        while s is not None:
            out |= set(s.vars)
            s = s.parent
        return out

    def snapshot(self) -> dict[str, tuple[Scope, Any]]:
        """Every visible name with the scope that holds it and its value now."""
        out: dict[str, tuple[Scope, Any]] = {}
        s: Scope | None = self
        while s is not None:
            for k, v in s.vars.items():
                out.setdefault(k, (s, v))
            s = s.parent
        return out


class Return(Exception):
    """A ``return`` unwinding to its block call."""

    def __init__(self, value: Any) -> None:
        self.value = value


class Pending:
    """Marks a module ``let`` that has not run yet."""


__all__ = ["Pending", "Return", "Scope"]
