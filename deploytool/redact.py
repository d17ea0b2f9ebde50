"""Secrets vocabulary in one place: which names are secrets, passwords inside URLs, masking known values."""

from __future__ import annotations

import re
from collections.abc import Iterable

# A variable named like this holds a secret, whatever the spec says. Names are split into words (on `_`,
# `-`, `.` and the like), so the check is linear and no word matches inside another (MONKEY, BYPASS).
# Anywhere in the name: DB_PASS, AWS_SECRET_ACCESS_KEY_ID, GITHUB_TOKEN_FILE, SENTRY_AUTH_TOKEN, ...
_SECRET_WORDS = frozenset(
    {
        "SECRET",
        "SECRETS",
        "PASSWORD",
        "PASSWORDS",
        "PASSWD",
        "PASS",
        "PWD",
        "PASSPHRASE",
        "TOKEN",
        "TOKENS",
        "CREDENTIAL",
        "CREDENTIALS",
        "CREDS",
        "APIKEY",
        "PRIVATEKEY",
        "SECRETKEY",
    }
)
# Only as the last word (AUTH_ROOT is a folder, BASIC_AUTH a password; KEY_PREFIX is not a key).
_SECRET_LAST_WORDS = frozenset({"KEY", "KEYS", "AUTH"})
# Words that may follow KEY and keep it a key: JWT_PRIVATE_KEY_PEM, SIGNING_KEY_B64.
_KEY_ENCODINGS = frozenset({"PEM", "DER", "B64", "BASE64", "HEX", "JSON", "FILE", "PATH"})
_WORD = re.compile(r"[A-Za-z0-9]+")
# Values shaped like well-known API keys and tokens (sk_live_..., ghp_..., AKIA..., private keys, JWTs).
# Every branch starts with a literal and has bounded repetitions: linear in the length of the text.
_SECRET_VALUE = re.compile(
    r"(?<![A-Za-z0-9])(?:"
    r"[sr]k_(?:live|test)_[A-Za-z0-9]{16}"  # Stripe secret and restricted keys
    r"|whsec_[A-Za-z0-9]{16}"  # Stripe webhook secrets
    r"|sk-(?:ant-|proj-)?[A-Za-z0-9_-]{20}"  # OpenAI, Anthropic
    r"|gh[pousr]_[A-Za-z0-9]{30}|github_pat_[A-Za-z0-9_]{30}"  # GitHub
    r"|glpat-[A-Za-z0-9_-]{20}"  # GitLab
    r"|xox[abposr]-[A-Za-z0-9-]{10}"  # Slack
    r"|(?:AKIA|ASIA)[A-Z0-9]{16}"  # AWS access key ids
    r"|AIza[A-Za-z0-9_-]{35}"  # Google API keys
    r"|SG\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]{16}"  # SendGrid
    r"|npm_[A-Za-z0-9]{36}|pypi-[A-Za-z0-9_-]{50}"  # package registries
    r")"
    # JWTs: the middle is unbounded, so a JWT may start only where no character of its alphabet precedes
    # it (one try per run of such characters, not one per position).
    r"|(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{8}[A-Za-z0-9_-]{0,8192}\.eyJ[A-Za-z0-9_-]{8}"
    r"|-----BEGIN (?:[A-Z]{1,20} )?PRIVATE KEY-----"
)
# scheme://[user]:password@ — the user may be empty (`redis://:pw@cache:6379/0`). The scheme has at most
# 32 characters: unbounded, every position of a long run of letters re-scanned the whole run looking for
# `://` (quadratic: `validate` of a 100 KB value took a minute). The user and password parts stop at the
# next `/`, so each `://` is scanned from at most 32 starts: linear.
_URL_PASSWORD = re.compile(
    r"(?P<head>[a-z][a-z0-9+.-]{0,31}://[^/:@\s]*:)(?P<password>[^@\s/]+)(?P<tail>@)", re.IGNORECASE
)
# scheme://user@ (a token as the user name, e.g. https://TOKEN@host); anchored, so tried once
_URL_USERINFO = re.compile(r"^[a-z][a-z0-9+.-]{0,31}://[^/@\s]+@", re.IGNORECASE)


def is_secret_name(name: str) -> bool:
    words = [word.upper() for word in _WORD.findall(name)]
    if not words:
        return False
    if any(word in _SECRET_WORDS for word in words):
        return True
    if words[-1] in _SECRET_LAST_WORDS:
        return True
    # KEY followed only by an encoding: JWT_PRIVATE_KEY_PEM, SIGNING_KEY_B64
    for index, word in enumerate(words[:-1]):
        if word in ("KEY", "KEYS") and all(rest in _KEY_ENCODINGS for rest in words[index + 1 :]):
            return True
    return False


def looks_like_secret_value(text: str) -> bool:
    """True when ``text`` holds something shaped like a well-known API key, token or private key."""
    return bool(_SECRET_VALUE.search(text))


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
