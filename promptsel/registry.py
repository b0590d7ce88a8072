"""Named registries filled by plugins through ``register`` callbacks."""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from .errors import UnknownNameError, UsageError

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    name: str
    target: T
    plugin: str
    aliases: tuple[str, ...] = ()


@dataclass
class Registry(Generic[T]):
    """Maps names (and aliases) to registered things; unknown names get a "did you mean"."""

    kind: str
    _entries: dict[str, Entry[T]] = field(default_factory=dict)
    _aliases: dict[str, str] = field(default_factory=dict)

    def add(self, name: str, target: T, *, plugin: str, aliases: tuple[str, ...] = ()) -> None:
        for key in (name, *aliases):
            owner = self._aliases.get(key)
            if owner is not None:
                other = self._entries[owner].plugin
                msg = (
                    f"{self.kind} name {key!r} is registered twice "
                    f"(by plugin {other!r} and by plugin {plugin!r})."
                )
                raise UsageError(msg, hint="Disable one of them with PROMPTSEL_DISABLE_PLUGINS.")
        self._entries[name] = Entry(name, target, plugin, tuple(aliases))
        for key in (name, *aliases):
            self._aliases[key] = name

    def get(self, name: str) -> T:
        return self.entry(name).target

    def entry(self, name: str) -> Entry[T]:
        canonical = self._aliases.get(name)
        if canonical is None:
            raise UnknownNameError(self.unknown_message(name))
        return self._entries[canonical]

    def unknown_message(self, name: str) -> str:
        close = difflib.get_close_matches(name, list(self._aliases), n=3, cutoff=0.5)
        suggestion = f" Did you mean: {', '.join(close)}?" if close else ""
        available = ", ".join(sorted(self._entries)) or "none"
        return f"Unknown {self.kind} {name!r}.{suggestion} Available: {available}."

    def __contains__(self, name: object) -> bool:
        return name in self._aliases

    def __iter__(self) -> Iterator[Entry[T]]:
        return iter(self._entries.values())

    def names(self) -> list[str]:
        return list(self._entries)
