"""Env files in one dialect that Compose v2 (`--env-file`, `env_file:`), python-dotenv, Node's `--env-file`
and systemd's `EnvironmentFile=` all read the same way, plus the reader deploytool itself uses.

Not a Jinja template: an env file is data (NAME=value lines) with one quoting function, kept next to its
reader. The dialect is the intersection of the four, measured with the real readers
(tests/deploytool/test_envfile_readers.py):

- bare, when every character is in `_BARE` (no reader treats any of them specially, unquoted);
- else in single quotes, which all four take literally, with three exceptions that rule a value out:
  `${` (python-dotenv expands `${NAME}` whatever the quotes, and has no escape), a backslash pair and a
  trailing backslash (python-dotenv reads `\\\\` as one backslash; Compose and python-dotenv read `\\'` as an
  escaped quote, so a value ending in a backslash never closes);
- else, for a value holding `'`, in double quotes, which all four take literally only without `"`, `\\`
  and `$` (each reader has its own escapes and expansions there);
- never a control character other than tab and line feed: systemd refuses them, and a carriage return is
  kept by Compose and dropped by the others.

A line feed inside quotes is a line feed for all four. What no form carries is refused (`Unquotable`), so a
file never means one thing to one reader and another to the next.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_BARE = re.compile(r"^[A-Za-z0-9_./:,@%+=\-\[\]]*$")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class Unquotable(ValueError):
    """A value no quoting of the dialect carries through all four readers; the message says why."""


def refusal(value: str) -> str | None:
    """Why `value` cannot be written in the dialect, or None when it can."""
    if _BARE.match(value):
        return None
    control = _CONTROL.search(value)
    if control:
        return (
            f"holds the control character {control.group()!r}, which systemd refuses (and Compose keeps a "
            "carriage return the other readers drop)"
        )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid UTF-8 text"
    if "'" not in value:
        if "${" in value:
            return "holds '${', which python-dotenv expands in any quoting (it has no escape for it)"
        if "\\\\" in value:
            return "holds two backslashes in a row, which python-dotenv reads as one inside quotes"
        if value.endswith("\\"):
            return "ends with a backslash, which Compose and python-dotenv read as escaping the closing quote"
        return None
    for char in ('"', "\\", "$"):
        if char in value:
            return (
                f"holds both ' and {char!r}: single quotes cannot hold ', and double quotes carry {char!r} "
                "differently in each reader"
            )
    return None


def quote(value: str) -> str:
    """`value` as written after `NAME=`; Unquotable when no form carries it through all four readers."""
    if _BARE.match(value):
        return value
    problem = refusal(value)
    if problem is not None:
        raise Unquotable(problem)
    return f"'{value}'" if "'" not in value else f'"{value}"'


def format_env(pairs: Iterable[tuple[str, str]], header: Iterable[str] = ()) -> str:
    lines = [f"# {line}" if line else "#" for line in header]
    lines += [f"{name}={quote(value)}" for name, value in pairs]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class EnvVar:
    """One variable of a process on a target, as its env file and `deploytool env` show it.

    `value` is what the process gets; None when it is not written (a secret, a value taken from the runner's
    environment): `note` then says where it comes from instead. `source` says what in the spec made it.
    `field` is the spec path of a value the spec itself holds (`services.web.env.NAME`), for error locations."""

    name: str
    value: str | None
    source: str
    note: str = ""
    field: str = ""
    # a secret, or a value that carries one: the value with `${NAME}` in place of each secret it holds
    # (`${OPS_API_KEY}`; compose's DATABASE_URL with `${POSTGRES_PASSWORD}`), filled in by `deploytool env --reveal`
    reference: str = ""

    @property
    def secrets(self) -> list[str]:
        """The secrets the value is made of (none for a plain value)."""
        return _REFERENCE.findall(self.reference)


class EnvFileError(Unquotable):
    """A variable of a process that no quoting carries: which process, which variable, and its spec field."""

    def __init__(self, service: str, target: str, var: EnvVar, reason: str) -> None:
        self.service, self.target, self.var, self.reason = service, target, var, reason
        super().__init__(
            f"{var.field or var.name}: the value of {var.name} for {service} ({target}) {reason}; no env file "
            "quoting reads the same in Compose, python-dotenv, Node and systemd: change the value"
        )


def env_file_path(target: str, service: str) -> str:
    """Where a process's env file goes, relative to the output folder."""
    return f"env/{target}/{service}.env"


def env_file_text(title: Iterable[str], variables: Iterable[EnvVar]) -> str:
    """A process's env file: a header (`title`, where each written variable comes from, then each variable that
    is not written and where the runner takes it from), then the written variables, sorted by name."""
    ordered = sorted(variables, key=lambda v: v.name)
    written = [v for v in ordered if v.value is not None]
    width = max((len(v.name) for v in written), default=0)
    lines = [f"# {line}" if line else "#" for line in title]
    lines.append("#")
    if written:
        lines.append("# Where each variable comes from:")
        lines += [f"#   {v.name.ljust(width)}  {v.source}" for v in written]
    missing = [v for v in ordered if v.value is None]
    if missing:
        lines.append("# Not written here (never copied into this file):")
        lines += [f"# {v.name}: {v.note} [{v.source}]" for v in missing]
    lines += [f"{v.name}={quote(v.value)}" for v in written if v.value is not None]
    return "\n".join(lines) + "\n"


def parse_env(text: str) -> dict[str, str]:
    """Read what `env_file_text` and `format_env` write, as the four readers do (and ordinary hand-written
    `KEY=value` files: `export `, spaces around `=`, a trailing `# comment` after a quoted value)."""
    values: dict[str, str] = {}
    lines = text.split("\n")  # not splitlines(): a quoted value may hold U+2028 and other separators
    index = 0
    while index < len(lines):
        number, raw = index + 1, lines[index]
        index += 1
        line = raw.lstrip()
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        name, sep, value = line.partition("=")
        name = name.strip()
        if not sep or not _NAME.match(name):
            raise ValueError(f"line {number}: expected NAME=value")
        value = value.lstrip()
        if value[:1] in ("'", '"'):
            mark, rest = value[0], value[1:]
            while mark not in rest:  # a quoted value may span lines
                if index >= len(lines):
                    raise ValueError(f"line {number}: {name}: the quote {mark} is never closed")
                rest += "\n" + lines[index]
                index += 1
            content, _, after = rest.partition(mark)
            after = after.strip()
            if after and not after.startswith("#"):
                raise ValueError(f"line {number}: {name}: text after the closing quote")
            values[name] = content
        else:
            values[name] = value.rstrip()
    return values
