"""The one error hierarchy. Exceptions never print; `deploytool.cli` maps them to exit codes."""

from __future__ import annotations

from typing import Any


class DeploytoolError(Exception):
    """Base of every error deploytool raises on purpose."""

    exit_code = 1


class UserError(DeploytoolError):
    """Bad input from a person: spec, arguments, missing files. Exit code 2, no traceback."""

    exit_code = 2


class CheckFailed(DeploytoolError):
    """Checks, drift or probes failed. Exit code 1."""

    exit_code = 1


class OutputFailed(DeploytoolError):
    """Standard output cannot take what a command prints (`>/dev/full`, a closed stdout). Exit code 1."""

    exit_code = 1


def first_problem(exc: Any) -> str:
    """`field.path: message` of a pydantic ValidationError's first error (duck-typed: no pydantic import here)."""
    first = exc.errors(include_url=False)[0]
    return f"{'.'.join(str(step) for step in first['loc']) or '(top level)'}: {first['msg']}"
