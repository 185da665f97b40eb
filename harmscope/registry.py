"""Small name -> component registries with declared metadata.

A component (transform, judge, classifier backend, model adapter, engine) registers itself with
a decorator that records ``name``, ``version``, ``description`` and free metadata. A run stores
``name + version + arguments`` for every component it used so that it can be replayed.
Third parties add components through the ``harmscope.plugins`` entry-point group: each entry
point is a module that registers its components when imported.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

from harmscope.errors import HarmscopeError


@dataclass(frozen=True)
class Entry:
    name: str
    version: str
    description: str
    obj: Any
    meta: dict[str, Any] = field(default_factory=dict)

    def spec(self, **args: Any) -> dict[str, Any]:
        """The replayable spec of this component with ``args``."""
        return {"name": self.name, "version": self.version, "args": args}


class Registry:
    """A named collection of components of one kind."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry] = {}

    def register(self, name: str, *, version: str = "1", description: str = "", **meta: Any) -> Callable:
        def deco(obj: Any) -> Any:
            if name in self._entries:
                raise HarmscopeError(f"{self.kind} {name!r} is registered twice")
            desc = description or (obj.__doc__ or "").strip().splitlines()[0:1]
            if isinstance(desc, list):
                desc = desc[0] if desc else ""
            self._entries[name] = Entry(name, version, desc, obj, dict(meta))
            return obj

        return deco

    def get(self, name: str) -> Entry:
        _load_plugins()
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(sorted(self._entries)) or "none"
            raise HarmscopeError(f"unknown {self.kind} {name!r} (known: {known})") from None

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Entry]:
        _load_plugins()
        return iter(sorted(self._entries.values(), key=lambda e: e.name))

    def names(self) -> list[str]:
        return [e.name for e in self]


_plugins_loaded = False


def _load_plugins() -> None:
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for ep in entry_points(group="harmscope.plugins"):
        ep.load()
