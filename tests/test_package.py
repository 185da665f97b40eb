import subprocess
import sys


def test_import_does_not_import_torch():
    code = (
        "import sys, harmscope, harmscope.cli, harmscope.rules, harmscope.benchmarks, "
        "harmscope.fairness, harmscope.reports, harmscope.models, harmscope.classifiers\n"
        "bad = [m for m in ('torch', 'transformers', 'detoxify') if m in sys.modules]\n"
        "print(','.join(bad))\n"
        "sys.exit(1 if bad else 0)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, f"importing harmscope imported: {res.stdout} {res.stderr}"


def test_cli_version():
    from click.testing import CliRunner

    from harmscope import __version__
    from harmscope.cli import main

    res = CliRunner().invoke(main, ["--version"])
    assert res.exit_code == 0
    assert __version__ in res.output


def test_every_cli_command_loads_and_is_listed():
    import click
    from click.testing import CliRunner

    from harmscope.cli import COMMANDS, LazyGroup, main

    for name in COMMANDS:
        assert isinstance(LazyGroup._load(name), click.Command), name
    out = CliRunner().invoke(main, ["--help"]).output
    assert all(f"  {name} " in out for name in COMMANDS), out


def test_a_broken_command_module_fails_loudly(monkeypatch):
    import pytest

    from harmscope import cli

    monkeypatch.setitem(cli.COMMANDS, "broken", "harmscope.no_such_module:cmd")
    with pytest.raises(ModuleNotFoundError):
        cli.LazyGroup._load("broken")
