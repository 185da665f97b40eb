"""The catalog options shared by every command group that loads rules (``rules``, ``probes``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from harmscope.rules.loader import Catalog, load_catalog

_META = "harmscope.rules.options"  # where the options live in click's shared ctx.meta


def catalog_options(f: Callable) -> Callable:
    """Add ``--catalog PATH`` (repeatable), ``--no-builtin`` and ``--override`` to a click group."""

    def _store(name: str) -> Callable:
        def cb(ctx: click.Context, param: Any, value: Any) -> Any:
            ctx.meta.setdefault(_META, {})[name] = value
            return value

        return cb

    f = click.option("--override", is_flag=True, expose_value=False, callback=_store("override"),
                     help="Let later catalog files replace rules with the same id.")(f)
    f = click.option("--no-builtin", is_flag=True, expose_value=False, callback=_store("no_builtin"),
                     help="Use only the --catalog files, not the built-in catalog.")(f)
    return click.option("--catalog", multiple=True, type=click.Path(path_type=Path), expose_value=False,
                        callback=_store("catalog"),
                        help="Extra rule catalog file or folder (repeatable), loaded after the built-in one.")(f)


def catalog_settings(ctx: click.Context) -> dict[str, Any]:
    """``{"catalog": [...], "builtin": bool, "override": bool}`` as chosen on the command line."""
    obj = ctx.meta.get(_META, {})
    return {"catalog": list(obj.get("catalog") or ()), "builtin": not obj.get("no_builtin", False),
            "override": bool(obj.get("override", False))}


def catalog_from_context(ctx: click.Context) -> Catalog:
    """The catalog chosen by the options (built-in plus any --catalog files)."""
    s = catalog_settings(ctx)
    return load_catalog(s["catalog"], builtin=s["builtin"], override=s["override"])
