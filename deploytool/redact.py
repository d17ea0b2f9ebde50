"""Secrets vocabulary in one place: which names are secrets, passwords inside URLs, masking known values."""

from __future__ import annotations

import re
from collections.abc import Iterable

# A variable named like this holds a secret, whatever the spec says.
SECRET_NAME = re.compile(r"(^|_)(KEY|SECRET|PASSWORD|PASSWD|TOKEN|CREDENTIALS?)$")
# scheme://[user]:password@ — the user may be empty (`redis://:pw@cache:6379/0`).
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^/:@\s]*:)(?P<password>[^@\s/]+)(?P<tail>@)", re.IGNORECASE)
# scheme://user@ (a token as the user name, e.g. https://TOKEN@host)
_URL_USERINFO = re.compile(r"^[a-z][a-z0-9+.-]*://[^/@\s]+@", re.IGNORECASE)


def is_secret_name(name: str) -> bool:
    return bool(SECRET_NAME.search(name))


def has_url_credentials(text: str) -> bool:
    """True for a URL that carries a password (or any user info) before its host."""
    return bool(_URL_PASSWORD.search(text) or _URL_USERINFO.search(text.strip()))


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
