"""Errors that the CLI turns into one clean line and exit code 2."""

from __future__ import annotations


class HarmscopeError(Exception):
    """A user-facing error: the message is printed as is, with exit code 2."""

    exit_code = 2


class InputError(HarmscopeError):
    """Bad input: a file, row or field the user gave. Name it in the message."""


class ValidationErrors(HarmscopeError):
    """Several problems at once (e.g. a catalog with many broken rules), one line each."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))
