"""`.env` quoting and parsing in one place, so writer and reader agree (dotenv / Compose syntax).

Not a Jinja template: an env file is data (NAME=value lines) with one quoting function, kept next to its reader."""

from __future__ import annotations

import re
from collections.abc import Iterable

_BARE = re.compile(r"^[A-Za-z0-9_./:,@%+=\-\[\]]*$")


def is_plain(value: str) -> bool:
    """True when the value can sit in an env file without any interpolation or escaping doubts."""
    return "\n" not in value and "'" not in value


def quote(value: str) -> str:
    if _BARE.match(value):
        return value
    if not is_plain(value):
        raise ValueError("value needs escaping that env files cannot express; keep it out of env files")
    return f"'{value}'"  # single quotes: Compose and our reader take the content literally ($ included)


def format_env(pairs: Iterable[tuple[str, str]], header: Iterable[str] = ()) -> str:
    lines = [f"# {line}" if line else "#" for line in header]
    lines += [f"{name}={quote(value)}" for name, value in pairs]
    return "\n".join(lines) + "\n"


def parse_env(text: str) -> dict[str, str]:
    """Read what `format_env` writes (and ordinary hand-written `KEY=value` files)."""
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        name, sep, value = line.partition("=")
        name = name.strip()
        if not sep or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name):
            raise ValueError(f"line {number}: expected NAME=value")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[name] = value
    return values
