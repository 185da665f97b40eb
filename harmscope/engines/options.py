"""The ``--engine`` click option shared by the bulk-work commands."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import click

from harmscope.engines.base import ENV_VAR, parse_spec


def engine_option(f: Callable) -> Callable:
    """The ``--engine`` option of the bulk-work commands (audit, score, experiment, predict, run).

    It sets ``$HARMSCOPE_ENGINE`` for the command, like ``harmscope --engine ...`` does for all.
    """

    def _apply(ctx: Any, param: Any, value: str | None) -> str | None:
        if value:
            parse_spec(value)
            os.environ[ENV_VAR] = value
        return value

    return click.option("--engine", default=None, expose_value=False, callback=_apply, is_eager=True,
                        metavar="local|dask|dask:N|dask://HOST:PORT",
                        help="Execution engine for the bulk work (default: local).")(f)
