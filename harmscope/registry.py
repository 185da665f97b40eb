"""Name -> component registries: the one way harmscope looks up a pluggable part.

Every pluggable kind (transforms, probe families, model adapters, judges, classifier backends,
training strategies, dataset readers, engines, report formats, importers) has one
:class:`Registry`. A component declares its metadata **once**:

- a class declares ``name``, ``version`` and ``description`` (and any kind-specific fields the
  registry names in ``meta_attrs``) as class attributes, and ``@REG.register`` reads them;
- a function or factory passes them to the decorator: ``@REG.register(name="x", version="1")``;
- a heavy component registers lazily with ``REG.register_lazy("name", "pkg.mod:Attr", ...)`` and
  is imported on first use.

Third parties add components through the ``harmscope.plugins`` entry-point group: each entry
point names a module that registers its components when imported. Plugins are loaded before
every lookup, including ``name in REG`` and iteration.

A run stores a :class:`~harmscope.types.ComponentSpec` (kind, name, version, arguments) for every
component it used; :meth:`Registry.create` rebuilds the component from that spec alone.
"""

from __future__ import annotations

import importlib
import inspect
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

from harmscope.errors import HarmscopeError
from harmscope.types import ComponentSpec

_CORE_ATTRS = ("name", "version", "description")


@dataclass(frozen=True)
class Entry:
    """One registered component: its declared metadata and the object (class, function or lazy target)."""

    kind: str
    name: str
    version: str
    description: str
    target: Any  # the object, or "pkg.mod:Attr" for a lazy entry
    meta: dict[str, Any] = field(default_factory=dict)
    lazy: bool = False

    @property
    def obj(self) -> Any:
        """The component itself (imports a lazy entry's module on first use)."""
        if not self.lazy:
            return self.target
        module, _, attr = str(self.target).partition(":")
        try:
            obj = getattr(importlib.import_module(module), attr)
        except ImportError as exc:
            raise HarmscopeError(f"{self.kind} {self.name!r} needs {exc.name or module!r}, which is not installed "
                                 f"(install the extra that provides it)") from None
        declared = getattr(obj, "version", self.version) if inspect.isclass(obj) else self.version
        if str(declared) != self.version:
            raise HarmscopeError(f"{self.kind} {self.name!r}: registered as version {self.version} "
                                 f"but {self.target} declares version {declared}")
        return obj

    def spec(self, **args: Any) -> ComponentSpec:
        """The replayable spec of this component built with ``args``."""
        return ComponentSpec(kind=self.kind, name=self.name, version=self.version, args=args)


def _first_doc_line(obj: Any) -> str:
    lines = (inspect.getdoc(obj) or "").strip().splitlines()
    return lines[0] if lines else ""


class Registry:
    """A named collection of components of one kind.

    ``meta_attrs`` lists the kind-specific metadata a class declares as attributes (for
    judges: ``kinds``, ``per_rule``, ...); a class without one of them gets no such key.
    ``ordered=True`` iterates in registration order (for kinds whose order is their output order,
    such as score tables and report sections) instead of by name.
    """

    def __init__(self, kind: str, *, meta_attrs: tuple[str, ...] = (), ordered: bool = False):
        self.kind = kind
        self.meta_attrs = tuple(meta_attrs)
        self.ordered = ordered
        self._entries: dict[str, Entry] = {}

    # ------------------------------------------------------------------ registration
    def register(self, obj: Any = None, /, **declared: Any) -> Any:
        """Register ``obj``: ``@REG.register`` on a class with metadata attributes, or
        ``@REG.register(name=..., version=..., description=..., **meta)`` on a function."""
        if isinstance(obj, str):
            raise HarmscopeError(f"{self.kind} {obj!r}: declare the name as a class attribute (or pass name=... "
                                 f"for a function), not as a positional argument")
        if obj is not None:
            return self._add(obj, declared)

        def deco(o: Any) -> Any:
            return self._add(o, declared)

        return deco

    def register_lazy(self, name: str, target: str, *, version: str, description: str = "", **meta: Any) -> None:
        """Register a heavy component by ``"pkg.mod:Attr"``; its module is imported on first use."""
        if ":" not in target:
            raise HarmscopeError(f"lazy {self.kind} {name!r}: target {target!r} must be 'module:attribute'")
        self._put(Entry(self.kind, name, str(version), description, target, dict(meta), lazy=True))

    def _add(self, obj: Any, declared: dict[str, Any]) -> Any:
        declared = dict(declared)
        if inspect.isclass(obj):
            clash = [k for k in (*_CORE_ATTRS, *self.meta_attrs) if k in declared]
            if clash:
                raise HarmscopeError(f"{self.kind} {obj.__qualname__}: declare {', '.join(clash)} as class "
                                     f"attributes, not as decorator arguments (metadata is declared once)")
            name = obj.__dict__.get("name") or getattr(obj, "name", None)
            version = getattr(obj, "version", None)
            description = getattr(obj, "description", None) or _first_doc_line(obj)
            meta = {k: getattr(obj, k) for k in self.meta_attrs if hasattr(obj, k)}
            meta.update(declared)
        else:
            name = declared.pop("name", None)
            version = declared.pop("version", "1")
            description = declared.pop("description", None) or _first_doc_line(obj)
            meta = dict(declared)
        if not isinstance(name, str) or not name:
            raise HarmscopeError(f"{self.kind} {getattr(obj, '__qualname__', obj)!r} declares no name")
        if version is None:
            raise HarmscopeError(f"{self.kind} {name!r} declares no version")
        self._put(Entry(self.kind, name, str(version), str(description or ""), obj, meta))
        return obj

    def _put(self, entry: Entry) -> None:
        if entry.name in self._entries:
            raise HarmscopeError(f"{self.kind} {entry.name!r} is registered twice")
        self._entries[entry.name] = entry

    def unregister(self, name: str) -> None:
        """Remove ``name`` if registered (for tests and temporary extensions)."""
        self._entries.pop(name, None)

    # ------------------------------------------------------------------ lookup
    def get(self, name: str) -> Entry:
        load_plugins()
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(sorted(self._entries)) or "none"
            raise HarmscopeError(f"unknown {self.kind} {name!r} (known: {known})") from None

    def __contains__(self, name: object) -> bool:
        load_plugins()
        return name in self._entries

    def __iter__(self) -> Iterator[Entry]:
        load_plugins()
        entries = list(self._entries.values())
        return iter(entries if self.ordered else sorted(entries, key=lambda e: e.name))

    def __len__(self) -> int:
        load_plugins()
        return len(self._entries)

    def names(self) -> list[str]:
        return [e.name for e in self]

    def create(self, spec: ComponentSpec | Mapping[str, Any], *, check_version: bool = True) -> Any:
        """Rebuild a component from its stored spec: ``obj.from_spec(**args)`` if it has one, else ``obj(**args)``."""
        s = spec if isinstance(spec, ComponentSpec) else ComponentSpec.model_validate(
            {"kind": self.kind, **dict(spec)})
        if s.kind != self.kind:
            raise HarmscopeError(f"spec of a {s.kind} {s.name!r} given where a {self.kind} is expected")
        entry = self.get(s.name)
        if check_version and s.version != entry.version:
            raise HarmscopeError(f"{self.kind} {s.name!r} is version {entry.version} here, but the stored spec "
                                 f"was made with version {s.version}; results would differ")
        factory: Callable[..., Any] = getattr(entry.obj, "from_spec", None) or entry.obj
        try:
            return factory(**s.args)
        except TypeError as exc:
            raise HarmscopeError(f"{self.kind} {s.name!r} cannot be built from args {s.args}: {exc}") from None


_plugins_loaded = False
_plugins_lock = threading.RLock()


def load_plugins() -> None:
    """Import every ``harmscope.plugins`` entry point once (a broken plugin is one error line)."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    with _plugins_lock:
        if _plugins_loaded:
            return
        _plugins_loaded = True
        for ep in entry_points(group="harmscope.plugins"):
            try:
                ep.load()
            except HarmscopeError:
                raise
            except Exception as exc:  # a third-party module: name it, never a traceback
                raise HarmscopeError(f"plugin {ep.name!r} ({ep.value}) failed to load: "
                                     f"{type(exc).__name__}: {exc}") from None

