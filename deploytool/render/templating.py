"""Jinja environments over the top-level `templates/` folder (shipped inside the wheel as deploytool/templates).

Two kinds of template, each with one cached Environment (StrictUndefined in both):

- `text`: files people and simple parsers read (`.env.example`, the Procfile, `init`'s YAML scaffolding).
  Their values are already checked by the spec's patterns or by the target that renders them.
- `python`: generated Python source (`*.py.j2`, the Railway IaC file, which Railway's CLI executes). Here a
  value reaches the output only as a `PySource`: the `literal` filter (a Python literal: a string literal
  never holds a line break, so not even a comment can be escaped) or the `identifier` filter (a name
  checked with `str.isidentifier`). The Environment's `finalize` refuses anything else, so a template that
  writes `{{ value }}` without a filter fails to render instead of writing raw text into executed code.

Compose YAML is data dumped as YAML (render/yamltext.py) and env files are data with one quoting function
(render/envfile.py): neither is a template.

`DEPLOYTOOL_TEMPLATES` names another templates folder (a copy to edit; it must hold every template used).

Compiled templates are kept in Jinja's own bytecode cache (its per-user folder in the temp directory), so
a render does not compile the Railway template again in every process (~10 ms). Jinja keys an entry by the
template's name and file and checks the source's checksum, so an edited template is compiled anew. Jinja
compiles the Environment's settings into the code (`finalize` above all), which its key does not cover:
our entries' names also carry a digest of this module and of Jinja's version, so code compiled under other
settings (another Jinja program, an older deploytool) is never loaded here.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import json.encoder
import keyword
import math
import os
import re
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from deploytool.errors import UserError

if TYPE_CHECKING:
    import jinja2

TEMPLATES_ENV = "DEPLOYTOOL_TEMPLATES"
_PACKAGE = Path(__file__).resolve().parent.parent

Kind = Literal["text", "python"]


class PySource(str):
    """Text that is valid Python source by construction: made only by `literal`, `identifier` and `call`
    in this module (tests/deploytool/test_templates.py checks that nothing else constructs one)."""

    __slots__ = ()


def literal(value: object) -> PySource:
    """A Python literal for `value`: strings double-quoted and ASCII-only (so no line break of any kind),
    dict keys sorted. A `PySource` (an expression built by this module) passes through unchanged."""
    if isinstance(value, PySource):
        return value
    return PySource(_literal(value))


def _literal(value: object) -> str:
    if isinstance(value, PySource):
        return str(value)
    if isinstance(value, str):
        # json.dumps escapes quotes, backslashes and control characters the way Python reads them; every
        # non-ASCII character (U+2028/U+2029/U+0085 included) becomes a Python escape. Not JSON's own
        # ensure_ascii: it writes U+10000 and above as a surrogate pair, which Python reads as two characters.
        text = _quote(value)
        return text if text.isascii() else _NON_ASCII.sub(_escape, text)
    if isinstance(value, bool) or value is None or isinstance(value, int):
        return repr(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} has no Python literal")
        return repr(value)
    if isinstance(value, dict):
        items = sorted(value.items())
        return "{" + ", ".join(f"{_literal(k)}: {_literal(v)}" for k, v in items) + "}"
    if isinstance(value, tuple):
        inner = ", ".join(_literal(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, list):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    raise TypeError(f"no Python literal for a {type(value).__name__}")


_quote = json.encoder.encode_basestring  # json.dumps(value, ensure_ascii=False) without building an encoder
_NON_ASCII = re.compile(r"[^\x00-\x7f]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def identifier(value: object) -> PySource:
    """A Python name (or dotted names, or a list of names joined by ", "), checked, never a keyword."""
    if isinstance(value, list | tuple):
        return PySource(", ".join(identifier(v) for v in value))
    if not isinstance(value, str):
        raise TypeError(f"identifier: expected a str, got a {type(value).__name__}")
    return _checked_name(value)


@cache  # a file of 1,000 services names the same few secrets thousands of times
def _checked_name(value: str) -> PySource:
    for part in value.split("."):
        # ASCII only: Python NFKC-normalises other identifiers, so the name read back could differ
        if not (part.isascii() and part.isidentifier()) or keyword.iskeyword(part):
            raise ValueError(f"{value!r} is not a Python identifier")
    return PySource(value)


def call(function: str, *args: object, **kwargs: object) -> PySource:
    """`function(arg, ..., name=value)`: the function and keyword names are identifiers, the rest literals."""
    parts = [literal(a) for a in args] + [f"{identifier(k)}={literal(v)}" for k, v in kwargs.items()]
    return PySource(f"{identifier(function)}({', '.join(parts)})")


def _only_python_source(value: object) -> PySource:
    if isinstance(value, PySource):
        return value
    raise TypeError(
        f"a Python template wrote {type(value).__name__} {value!r} without the `literal` or `identifier` "
        "filter: generated Python source takes values only as checked literals or names"
    )


def templates_dir() -> Path:
    override = os.environ.get(TEMPLATES_ENV)
    if override:
        path = Path(override)
        if not path.is_dir():
            raise UserError(f"{TEMPLATES_ENV}={override}: not a folder")
        return path
    # Wheel: templates are packaged as deploytool/templates. Source checkout / editable: ../templates.
    for candidate in (_PACKAGE / "templates", _PACKAGE.parent / "templates"):
        if candidate.is_dir():
            return candidate
    raise RuntimeError("deploytool templates folder is missing from the installation")


def kind_of(name: str) -> Kind:
    return "python" if name.endswith(".py.j2") else "text"


@cache
def environment(kind: Kind, folder: Path) -> jinja2.Environment:
    """One Environment per kind and folder: Jinja caches each compiled template inside it."""
    import jinja2  # only a render that writes a templated file pays for it

    python = kind == "python"
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(folder)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
        auto_reload=False,  # a render is one short process: no stat() per get_template
        finalize=_only_python_source if python else None,
        bytecode_cache=_bytecode_cache(kind, jinja2.__version__),
    )
    if python:
        env.filters["literal"] = literal
        env.filters["identifier"] = identifier
    return env


def _bytecode_cache(kind: Kind, jinja_version: str) -> jinja2.BytecodeCache | None:
    """Jinja's file cache in its default folder; none where that folder is missing, shared or read-only."""
    from jinja2.bccache import Bucket, FileSystemBytecodeCache

    # the settings the code was compiled under: this module (every option above) and the Jinja compiling it
    settings = hashlib.sha256(f"{kind}\0{jinja_version}\0".encode() + Path(__file__).read_bytes())

    class Cache(FileSystemBytecodeCache):
        def dump_bytecode(self, bucket: Bucket) -> None:
            with contextlib.suppress(OSError):  # a cache that cannot be written is no cache: compiled in memory
                super().dump_bytecode(bucket)

    try:
        return Cache(pattern=f"deploytool-{settings.hexdigest()[:16]}-%s.cache")
    except (OSError, RuntimeError):  # Jinja refuses a temp folder another user owns or can write
        return None


def render_template(name: str, **values: object) -> str:
    """Render `templates/<name>`: a `*.py.j2` name with the Python-source rules, any other as text."""
    return environment(kind_of(name), templates_dir()).get_template(name).render(**values)
