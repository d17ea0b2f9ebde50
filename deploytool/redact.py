"""Redaction for anything shown to people: passwords inside URLs, secret values by name."""

from __future__ import annotations

import re
from collections.abc import Iterable

_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^/:@\s]+:)(?P<password>[^@\s]+)(?P<tail>@)", re.IGNORECASE)


def redact_url(text: str) -> str:
    """`postgresql://user:secret@host/db` -> `postgresql://user:***@host/db`; `${...}` references stay."""

    def hide(match: re.Match[str]) -> str:
        password = match.group("password")
        if password.startswith("${") and password.endswith("}"):
            return match.group(0)
        return f"{match.group('head')}***{match.group('tail')}"

    return _URL_PASSWORD.sub(hide, text)


def redact_values(text: str, secrets: Iterable[str]) -> str:
    """Replace every known secret value by `***` (longest first, so a value inside another still hides)."""
    for value in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(value, "***")
    return text
