"""Generated and mutated specs, overlays and shard locks through load -> plan -> render -> checks.

Run by tests/fuzz/test_fuzz.py in a child process with an address-space cap, so an alias bomb or a
runaway lock makes the run fail instead of eating the machine:

    python -m tests.fuzz.fuzz_specs [EXAMPLES]

Every example goes through `deploytool.cli.main` (`render ENV --check`, then `show ENV`): it must end in
exit 0, 1 or 2. Any other exception escapes and fails the run with the example that caused it.
Hypothesis is derandomized: the same examples every run (no flaky CI), chosen to cover the spec's shape.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deploytool.cli import main

BASE: dict[str, Any] = {
    "project": "acme",
    "services": {
        "web": {
            "kind": "flask",
            "source": "flask_service",
            "port": 5002,
            "start": "gunicorn app",
            "local_start": "python -m flask_service serve",
            "pre_deploy": "python -m flask_service migrate",
        },
        "whatsapp": {
            "kind": "whatsapp",
            "source": "node_service",
            "port": 5001,
            "start": "node src/server.js",
            "local_start": "exec node node_service/src/server.js",
        },
        "worker": {"kind": "worker", "source": "flask_service", "start": "python -m flask_service worker"},
        "search": {"kind": "generic", "image": "getmeili/meilisearch:v1.7", "port": 7700, "volume": True},
    },
    "database": {"engine": "postgres"},
    "addons": ["redis"],
    "tenants": ["1", "2", "3"],
    "topology": {"kind": "sharded", "max_tenants_per_shard": 2},
    "targets": ["local", "compose", "railway"],
    "railway": {"repo": "acme/chat"},
}

KEYS = st.sampled_from(
    [
        "project", "stage", "services", "web", "whatsapp", "kind", "source", "port", "health_path", "qr_path",
        "start", "local_start", "pre_deploy", "dockerfile", "replicas", "volume", "driver", "max_tenants", "env",
        "database", "engine", "name", "user", "password_secret", "tenants", "from", "to", "topology",
        "max_tenants_per_shard", "shards", "ports", "targets", "secrets", "public_urls", "railway", "repo",
        "branch", "environment", "legacy_config", "API_KEY", "REDIS_URL", "x", "", "image", "volume_path",
        "health_command", "addons", "worker", "search",
    ]
)  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, 1, 22, 80, 1023, 5001, 5002, 5432, 65535, 65536, 10**9]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(
        [
            "per-port", "shared", "sharded", "local", "compose", "railway", "nomad", "flask", "whatsapp",
            "sandbox", "baileys", "sqlite", "postgres", "development", "production", "../../etc", "/etc/passwd",
            "worker", "generic", "redis", "redis:7-alpine", "/meili",
            "redis://:pw@cache:6379/0", "https://u:p@h/x", "${X}", "$$", "a\nb", "\x00", "é", "1", "2", "9",
            "/health", "{tenant}", "acme/chat", "owner/repo",
        ]
    ),
)  # fmt: skip
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(KEYS, inner, max_size=4)),
    max_leaves=12,
)


def _paths(tree: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(tree, dict):
        for key, value in tree.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(tree, list):
        for index, value in enumerate(tree):
            found += _paths(value, (*prefix, index))
    return found


@st.composite
def mutated(draw: st.DrawFn, base: dict[str, Any]) -> Any:
    """The base spec with a few random edits: replace, delete or add anywhere in the tree."""
    doc: Any = json.loads(json.dumps(base))
    for _ in range(draw(st.integers(min_value=0, max_value=4))):
        paths = _paths(doc)
        path = draw(st.sampled_from(paths))
        if not path:
            if draw(st.integers(0, 9)) == 0:
                doc = draw(VALUES)  # a top level that is not a mapping
            continue
        parent = doc
        for step in path[:-1]:
            parent = parent[step]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            parent[path[-1]] = draw(VALUES)
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(KEYS)] = draw(VALUES)
        else:
            parent.append(draw(VALUES))
    return doc


def _dump(doc: Any) -> str:
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


DAMAGE = st.sampled_from(["", ":", "- ", "&a", "*a", "{", "]", "\t", "'", "\n  "])
# Self-referencing aliases, which once made `validate` run forever (issue 28, F2): appended to the base or the
# overlay, so the rest of the file is still a spec
RECURSIVE = st.sampled_from(
    [
        "\nx-r: &r [*r]\n",
        "\nx-r: &r {a: *r}\n",
        "\nx-r: &r {<<: *r}\n",
        "\nx-r: &r [1, {b: [*r]}]\n",
        "\ntenants: &r [*r]\n",
        "\nsecrets: &r [&s [*s, *r]]\n",
    ]
)
RECURSION = st.one_of(st.none(), st.none(), st.none(), st.tuples(st.sampled_from(["base", "overlay"]), RECURSIVE))
TEXT_EDITS = st.lists(st.tuples(st.integers(min_value=0, max_value=2000), DAMAGE), max_size=3)
LOCKS = st.one_of(
    st.none(),
    st.none(),
    st.none(),
    st.just('{"version": 1, "env": "dev", "assignments": {"1": 1, "2": 1, "3": 2}}'),
    st.text(max_size=40),
    st.builds(
        lambda version, env, assignments: json.dumps({"version": version, "env": env, "assignments": assignments}),
        st.sampled_from([1, 1, 1, 2, "1", None]),
        st.sampled_from(["dev", "dev", "prod", None]),
        st.dictionaries(
            st.sampled_from(["1", "2", "3", "4", "../x", ""]),
            st.one_of(st.integers(min_value=-3, max_value=10**12), st.booleans(), st.text(max_size=3)),
            max_size=5,
        ),
    ),
)


class Counter:
    examples = 0
    codes: dict[int, int] = {}  # noqa: RUF012


def run_one(root: Path, base_text: str, overlay_text: str, lock: str | None) -> None:
    (root / "deploytool.yaml").write_text(base_text)
    (root / "environments" / "dev.yaml").write_text(overlay_text)
    lock_path = root / "environments" / "dev.lock.json"
    if lock is None:
        lock_path.unlink(missing_ok=True)
    else:
        lock_path.write_text(lock)
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        for args in (["render", "dev", "--check"], ["show", "dev"]):
            code = main(["--spec", str(root / "deploytool.yaml"), *args])
            if code not in (0, 1, 2):
                raise AssertionError(f"exit code {code} for {args}:\n{sink.getvalue()[-2000:]}")
            if "Traceback" in sink.getvalue():
                raise AssertionError(f"a traceback was printed for {args}:\n{sink.getvalue()[-2000:]}")
            Counter.codes[code] = Counter.codes.get(code, 0) + 1
    Counter.examples += 1


def fuzz(examples: int) -> None:
    root = Path(tempfile.mkdtemp(prefix="deploytool-fuzz-"))
    (root / "environments").mkdir()
    for folder in ("flask_service", "node_service"):
        (root / folder).mkdir()
        (root / folder / "Dockerfile").write_text("FROM scratch\n")

    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(
        base=mutated(BASE),
        overlay=mutated({"topology": {"kind": "sharded"}, "tenants": ["1", "2", "3", "4"]}),
        edits=st.one_of(st.just([]), st.just([]), st.just([]), TEXT_EDITS),  # mostly parseable YAML
        lock=LOCKS,
        recursion=RECURSION,
    )
    def one(
        base: Any, overlay: Any, edits: list[tuple[int, str]], lock: str | None, recursion: tuple[str, str] | None
    ) -> None:
        text = _dump(base)
        for position, insert in edits:  # raw text damage: the YAML parser's own errors
            at = position % (len(text) + 1)
            text = text[:at] + insert + text[at:]
        overlay_text = _dump(overlay)
        if recursion is not None:
            where, snippet = recursion
            if where == "base":
                text += snippet
            else:
                overlay_text += snippet
        run_one(root, text, overlay_text, lock)

    one()


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    started = time.monotonic()
    fuzz(count)
    codes = dict(sorted(Counter.codes.items()))
    print(f"examples: {Counter.examples} codes: {codes} seconds: {time.monotonic() - started:.1f}")
