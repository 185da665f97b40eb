"""The ``harmscope`` command line: a thin click group.

Each sub-command lives beside the code it drives (``harmscope/<area>/commands.py``) and is
imported only when used, so ``harmscope --help`` stays fast and never imports torch.
"""

from __future__ import annotations

import importlib
import sys

import click

from harmscope import __version__
from harmscope.errors import HarmscopeError

# command name -> "module:attribute"
COMMANDS: dict[str, str] = {
    "rules": "harmscope.rules.commands:rules",
    "probes": "harmscope.benchmarks.probes.commands:probes",
    "run": "harmscope.benchmarks.runs.commands:run",
    "train": "harmscope.classifiers.commands:train",
    "experiment": "harmscope.classifiers.commands:experiment",
    "predict": "harmscope.classifiers.commands:predict",
    "audit": "harmscope.fairness.commands:audit",
    "judges": "harmscope.benchmarks.scoring.commands:judges",
    "score": "harmscope.benchmarks.scoring.commands:score",
    "compare": "harmscope.benchmarks.scoring.commands:compare",
    "check": "harmscope.benchmarks.probes.check:check",
    "runs": "harmscope.reports.commands:runs",
    "report": "harmscope.reports.commands:report",
    "demo": "harmscope.demo:demo_command",
}


class LazyGroup(click.Group):
    """A click group that imports each command's module on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        return self._load(name)

    @staticmethod
    def _load(name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module, attr = target.split(":")
        # no try/except: a command whose module is broken must fail loudly, never vanish from --help
        return getattr(importlib.import_module(module), attr)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:  # a bad option of a sub-command: one line, with a --help pointer
            from harmscope.secrets import mask

            where = exc.ctx.command_path if exc.ctx is not None else "harmscope"
            msg = " ".join(mask(exc.format_message()).split())
            click.echo(f"error: {where}: {msg} (see {where} --help)", err=True)
            sys.exit(exc.exit_code)
        except HarmscopeError as exc:
            from harmscope.secrets import mask

            for line in mask(str(exc)).splitlines() or ["error"]:
                click.echo(f"error: {line}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            from harmscope.safeio import interrupt_message

            click.echo(interrupt_message(), err=True)
            sys.exit(130)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="harmscope")
@click.option("--engine", default=None, metavar="local|dask|dask:N|dask://HOST:PORT",
              help="Execution engine for bulk work (default: local, or $HARMSCOPE_ENGINE).")
@click.option("--trust-checkpoint", "trust", multiple=True, metavar="FILE",
              type=click.Path(exists=True, dir_okay=False),
              help="Allow full unpickling of this checkpoint file (it can run code; repeatable).")
def main(engine: str | None, trust: tuple[str, ...] = ()) -> None:
    """harmscope: benchmark language models for harm, audit toxicity classifiers for bias.

    \b
    Example:
      harmscope rules list --area I
      harmscope probes generate --preset smoke --out probes.jsonl
      harmscope --engine dask:2 audit --classifier out/models/tfidf --data madlibs --out out/audit
    """
    if trust:
        import os

        from harmscope.classifiers.backends import TRUST_ENV

        os.environ[TRUST_ENV] = os.pathsep.join(str(__import__("pathlib").Path(t).resolve()) for t in trust)
    if engine:
        import os

        from harmscope.engines import ENV_VAR, parse_spec

        parse_spec(engine)  # a bad spec fails here, before any work
        os.environ[ENV_VAR] = engine


if __name__ == "__main__":  # pragma: no cover
    main()
