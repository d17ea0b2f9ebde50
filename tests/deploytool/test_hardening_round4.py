"""Hardening, round 4 (issue 28): each test names the class of a finding and tries it with variants beyond the
issue's own reproduction; each failed on 7421ced."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from deploytool.cli import main
from tests.conftest import BASE_SPEC
from tests.deploytool.test_hardening_findings import SHARDED, no_traceback

VICTIM_TEXT = "victim: must stay as it is\n"


def cli(spec: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """deploytool in its own process, so a FIFO that would hang it fails the test instead of the run."""
    try:
        return subprocess.run(
            [sys.executable, "-m", "deploytool", "--spec", str(spec), *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            cwd=cwd,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"deploytool {' '.join(args)} hung")


# --- F1 + F8: one way to open a file deploytool did not just create -------------------------------------------


def _state(out: Path) -> None:
    (out / ".run").mkdir(exist_ok=True)
    (out / ".run" / "state.json").write_text(json.dumps({"runner": "procfile", "environment": "dev", "version": 1}))


# (path relative to the project, what is there before, the command that opens it). Every path the CLI opens
# in a project folder: the spec's overlays and lock, the manifest, the run state and its lock, the logs, the
# local secrets (read through a link on purpose: see below), the compose file, `.gitignore`.
DEV = "deploy/dev"
OPENED: list[tuple[str, str, tuple[str, ...]]] = [
    ("environments/dev.yaml", "", ("validate", "dev")),
    ("environments/dev.local.yaml", "", ("validate", "dev")),
    ("environments/prod.lock.json", "", ("render", "prod")),
    (f"{DEV}/deploytool-manifest.json", "rendered", ("ps", "dev")),
    (f"{DEV}/deploytool-manifest.json", "rendered", ("logs", "dev", "web")),
    (f"{DEV}/deploytool-manifest.json", "rendered", ("run", "dev", "web", "--", "true")),
    (f"{DEV}/deploytool-manifest.json", "rendered", ("render", "dev")),
    (f"{DEV}/.run/state.json", "rendered", ("ps", "dev")),
    (f"{DEV}/.run/state.json", "rendered", ("down", "dev")),
    (f"{DEV}/.run/lock", "state", ("down", "dev")),
    (f"{DEV}/.run/logs/web.log", "rendered", ("logs", "dev", "web")),
    (f"{DEV}/.run/logs/web.log", "rendered", ("up", "dev")),
    (f"{DEV}/.run/logs/web.log", "state", ("restart", "dev", "web")),
    (f"{DEV}/.secrets.env", "rendered", ("run", "dev", "web", "--", "true")),
    (f"{DEV}/docker-compose.yml", "rendered", ("run", "dev", "web", "--runner", "compose", "--", "true")),
    ("deploy/prod/.run/tenant-move.json", "prod", ("tenants", "move", "prod", "1", "--shard", "2")),
    ("deploy/prod/.run/lock", "prod", ("tenants", "move", "prod", "1", "--shard", "2")),
]
KINDS = {"link": "a symbolic link", "fifo": "a named pipe (FIFO)", "folder": "a folder"}


def _plant(path: Path, kind: str, victim: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() or path.is_symlink():
        path.unlink()
    if kind == "link":
        path.symlink_to(victim)
    elif kind == "fifo":
        os.mkfifo(path)
    else:
        path.mkdir()


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize(("rel", "before", "args"), OPENED, ids=[f"{r}:{a[0]}" for r, _, a in OPENED])
def test_a_link_fifo_or_folder_at_any_path_deploytool_opens_is_refused(make_project, rel, before, args, kind):
    spec = make_project({"dev": "targets: [local, compose]\n", "prod": SHARDED})
    root = spec.parent
    victim = root / "docs-victim"
    victim.write_text(VICTIM_TEXT)
    victim.chmod(0o644)
    if before:
        assert main(["--spec", str(spec), "render", "prod" if before == "prod" else "dev"]) == 0
    if before == "state":
        _state(root / DEV)
    if rel.endswith(".secrets.env") and kind == "link":
        # the one path read through a link on purpose (README: secrets kept elsewhere); a link to a FIFO is not
        os.mkfifo(root / "elsewhere-fifo")
        victim = root / "elsewhere-fifo"
    _plant(root / rel, kind, victim)
    result = cli(spec, *args)
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    what = "a named pipe (FIFO)" if victim.name == "elsewhere-fifo" else KINDS[kind]
    assert f"{Path(rel).name}: is {what}" in result.stderr, result.stderr
    no_traceback(result.stderr)
    if victim.name == "docs-victim":
        assert victim.read_text() == VICTIM_TEXT and stat.S_IMODE(victim.stat().st_mode) == 0o644
        assert VICTIM_TEXT not in result.stdout + result.stderr
    planted = (root / rel).lstat().st_mode
    assert {"link": stat.S_ISLNK, "fifo": stat.S_ISFIFO, "folder": stat.S_ISDIR}[kind](planted)  # left as it was


@pytest.mark.parametrize("plant", ["link", "other-user", "file"])
@pytest.mark.parametrize("args", [("up", "dev"), ("logs", "dev", "web"), ("restart", "dev", "web")])
def test_a_log_folder_made_beforehand_that_is_not_deploytools_own_is_refused(make_project, plant, args):
    spec = make_project({"dev": "targets: [local]\n"})
    root = spec.parent
    assert main(["--spec", str(spec), "render", "dev"]) == 0
    out = root / DEV
    if args[0] == "restart":
        _state(out)
    (out / ".run").mkdir(exist_ok=True)
    logs = out / ".run" / "logs"
    elsewhere = root / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "web.log").write_text(VICTIM_TEXT)
    if plant == "link":
        logs.symlink_to(elsewhere)
    elif plant == "file":
        logs.write_text("")
    else:
        if os.geteuid() != 0:
            pytest.skip("giving a folder to another user needs root")
        logs.mkdir()
        os.chown(logs, 65534, 65534)
    result = cli(spec, *args)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "logs: " in result.stderr and ("belongs to another user" in result.stderr or "is a" in result.stderr)
    no_traceback(result.stderr)
    assert (elsewhere / "web.log").read_text() == VICTIM_TEXT
    assert VICTIM_TEXT not in result.stdout


def test_a_spec_file_reached_through_a_link_still_loads_but_never_a_fifo(make_project, tmp_path, capsys):
    spec = make_project()
    link = tmp_path / "linked.yaml"
    link.symlink_to(spec)  # --spec names the file the caller chose: a link to it is theirs
    assert main(["--spec", str(spec), "validate", "dev"]) == 0
    capsys.readouterr()
    spec.rename(tmp_path / "real.yaml")
    os.mkfifo(spec)
    result = cli(spec, "validate", "dev")
    assert result.returncode == 2 and "deploytool.yaml: is a named pipe (FIFO)" in result.stderr


# --- F13 + F8: init and a .gitignore that is not a plain file --------------------------------------------------

INIT = ("init", ".", "--project", "p", "--tenants", "1", "--targets", "local")


def test_init_leaves_a_linked_gitignore_alone(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    victim = tmp_path / "victim-gi"
    victim.write_text(VICTIM_TEXT)
    (project / ".gitignore").symlink_to("../victim-gi")
    result = cli(project / "deploytool.yaml", *INIT, cwd=project)
    assert result.returncode == 0, result.stderr
    assert victim.read_text() == VICTIM_TEXT
    assert (project / ".gitignore").is_symlink()
    assert "left alone" in result.stdout and (project / "deploytool.yaml").is_file()


@pytest.mark.parametrize("kind", ["fifo", "folder"])
def test_init_refuses_a_gitignore_that_is_not_a_file_before_writing_anything(tmp_path, kind):
    project = tmp_path / "project"
    project.mkdir()
    _plant(project / ".gitignore", kind, tmp_path)
    result = cli(project / "deploytool.yaml", *INIT, cwd=project)
    assert result.returncode == 2, result.stderr
    assert f".gitignore: is {KINDS[kind]}" in result.stderr
    no_traceback(result.stderr)
    assert sorted(p.name for p in project.iterdir()) == [".gitignore"]  # nothing written


def test_init_extends_a_gitignore_as_a_whole_keeping_its_mode(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / ".gitignore").write_text("node_modules/\n")
    (project / ".gitignore").chmod(0o640)
    result = cli(project / "deploytool.yaml", *INIT, cwd=project)
    assert result.returncode == 0, result.stderr
    text = (project / ".gitignore").read_text()
    assert text.startswith("node_modules/\n\n# deploytool:") and ".run/" in text
    assert stat.S_IMODE((project / ".gitignore").stat().st_mode) == 0o640


# --- F10: what a program prints for --version never reaches the terminal unless it is one line of text ---------


@pytest.mark.parametrize(
    "output",
    [
        os.urandom(3000),
        b"railway 4.0.0\x1b]0;pwned\x07\n",
        b"\x1b[2J\x1b[Hrailway 4.0.0\n",
        b"railway \xff\xfe\n",
        b"r" * 5000 + b"\n",
        b"\x00\x01\x02\n",
    ],
    ids=["random", "osc-title", "clear-screen", "bad-utf8", "too-long", "control"],
)
@pytest.mark.parametrize("program", ["railway", "node"])
def test_a_junk_version_line_is_reported_unreadable_never_echoed(tmp_path, monkeypatch, capsys, output, program):
    from deploytool import doctor

    folder = tmp_path / "bin"
    folder.mkdir()
    (folder / "junk").write_bytes(output)
    for name in ("railway", "node"):
        script = folder / name
        plain = "echo v22.1.0" if name == "node" else "echo railway"
        body = f"exec /bin/cat {folder / 'junk'}" if name == program else plain
        script.write_text(f"#!/bin/sh\n{body}\n")
        script.chmod(0o755)
    monkeypatch.setenv("PATH", str(folder))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr(doctor, "base_path", lambda environ: environ["PATH"])
    monkeypatch.chdir(tmp_path)
    code = main(["doctor"])
    captured = capsys.readouterr()
    text = captured.out + captured.err
    line = next(line for line in captured.out.splitlines() if line.split()[1:2] == [program])
    assert "unreadable --version output" in line
    assert all(ch.isprintable() for ch in text.replace("\n", "")), repr(text)
    assert code == (1 if program == "node" else 0)


# --- F2: a self-referencing alias is refused with file and line, in every file and in --set ---------------------

RECURSIVE = "x: &a [*a]\n"


def _validate(spec: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            [sys.executable, "-m", "deploytool", "--spec", str(spec), "validate", "dev", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("validate never ended on a recursive alias")


@pytest.mark.parametrize("where", ["deploytool.yaml", "environments/dev.yaml", "environments/dev.local.yaml"])
def test_a_recursive_alias_in_any_spec_file_is_exit_2_with_its_line(make_project, where):
    spec = make_project({"dev": "targets: [local]\n"})
    path = spec.parent / where
    path.write_text((path.read_text() if path.exists() else "") + "\n" + RECURSIVE)
    line = path.read_text().splitlines().index(RECURSIVE.strip()) + 1
    result = _validate(spec)
    assert result.returncode == 2, result.stderr
    assert f"{where}:{line}: an alias refers to the anchored value that contains it" in result.stderr
    no_traceback(result.stderr)


@pytest.mark.parametrize(
    "text",
    [
        "x-a: &a {b: *a}\n",
        "x-a: &a [[[[*a]]]]\n",
        "x-a: &a {b: [1, {c: *a}]}\n",
        "x-a: &a {<<: *a}\n",
        "x-a: &a {b: &b [*b, *a]}\n",
        "services:\n  web:\n    env: &e {A: *e}\n",
    ],
    ids=["mapping", "deep-list", "mixed", "merge", "two-anchors", "in-a-field"],
)
def test_every_shape_of_recursive_alias_is_refused(make_project, text):
    spec = make_project({"dev": "targets: [local]\n" + text})
    result = _validate(spec)
    assert result.returncode == 2, result.stderr
    assert "environments/dev.yaml:" in result.stderr and "an alias refers to" in result.stderr
    no_traceback(result.stderr)


@pytest.mark.parametrize("value", ["&a [*a]", "&a {b: *a}", "&a {<<: *a}", f"[{'9' * 200}]"])
def test_a_recursive_or_unbounded_set_value_is_exit_2_naming_the_argument(make_project, value):
    spec = make_project({"dev": "targets: [local]\n"})
    result = _validate(spec, "--set", f"services.web.env={value}")
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: --set services.web.env: "), result.stderr
    no_traceback(result.stderr)


def test_a_shared_but_not_recursive_anchor_still_loads(make_project, capsys):
    spec = make_project({"dev": "targets: [local]\nservices:\n  web: {env: &e {A: '1'}}\n  whatsapp: {env: *e}\n"})
    assert main(["--spec", str(spec), "validate", "dev"]) == 0, capsys.readouterr().err


# --- F11: list merges follow YAML's order: the first mapping that has a key gives it ----------------------------


@pytest.mark.parametrize(
    ("merge", "expected"),
    [
        ('[{env: {A: "1"}}, {env: {B: "2"}}]', {"A": "1"}),
        ('[{env: {LONGER_NAME: "1"}}, {env: {LONGER_NAME: "2"}}]', {"LONGER_NAME": "1"}),
        ("[*one, *two]", {"ONE": "1"}),
        ("[*two, *one]", {"TWO": "2"}),
        ("[*two, {env: {X: y}}, *one]", {"TWO": "2"}),
        ("*one", {"ONE": "1"}),
    ],
)
def test_list_merges_follow_yaml_order_first_wins(make_project, merge, expected):
    from deploytool.spec.load import read_yaml

    overlay = (
        'x-one: &one {env: {ONE: "1"}}\nx-two: &two {env: {TWO: "2"}}\n'
        f"services:\n  whatsapp:\n    driver: sandbox\n    <<: {merge}\n"
    )
    spec = make_project({"dev": overlay})  # `x-*` keys are no spec fields: read through the loader alone
    data, _ = read_yaml(spec.parent / "environments" / "dev.yaml")
    assert data["services"]["whatsapp"]["env"] == expected


def test_the_issues_list_merge_validates_with_the_first_mapping(make_project, capsys):
    overlay = 'services: {whatsapp: {driver: sandbox, volume: false, <<: [{env: {A: "1"}}, {env: {B: "2"}}]}}\n'
    spec = make_project({"dev": "stage: development\ntargets: [local]\n" + overlay})
    assert main(["--spec", str(spec), "show", "dev"]) == 0, capsys.readouterr().err
    from deploytool.spec.load import load_spec

    assert dict(load_spec(spec, "dev").spec.services["whatsapp"].env) == {"A": "1"}


def test_a_key_of_the_mapping_itself_wins_over_every_merge(make_project):
    from deploytool.spec.load import read_yaml

    overlay = (
        'x-a: &a {port: 5101, env: {A: "a"}}\nservices:\n  whatsapp:\n    <<: [*a, {port: 5102}]\n    port: 5103\n'
    )
    spec = make_project({"dev": overlay})
    data, origins = read_yaml(spec.parent / "environments" / "dev.yaml")
    assert data["services"]["whatsapp"] == {"port": 5103, "env": {"A": "a"}}
    assert origins[("services", "whatsapp", "port")].line == 5


# --- F3: tenants move and rebalance hold the folder's lock before touching a shard; an interrupted move finishes -

TENANTS_SHARDED = (
    "stage: production\ntenants: ['1', '2', '3', '4', '5']\ntopology: {kind: sharded, max_tenants_per_shard: 3}\n"
)


class _Response:
    def __init__(self, code: int, data: dict[str, object] | None = None) -> None:
        self.status_code, self.ok, self._data, self.text = code, code < 400, data or {}, json.dumps(data or {})

    def json(self) -> dict[str, object]:
        return self._data


class _Node:
    """The shards' HTTP API as a move uses it, recording every call (a shard that is told nothing changes)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def request(self, method: str, url: str, **_: object) -> _Response:
        self.calls.append((method, url))
        if url.endswith("/health"):
            return _Response(200, {"session_store": "postgres"})
        if url.endswith("/release"):
            return _Response(200)
        if url.endswith("/connect"):
            return _Response(202)
        return _Response(200, {"state": "connected", "me": "+15550001"})


class _Runner:
    name = "procfile"

    def __init__(self, fail: str | None = None) -> None:
        self.fail, self.restarts = fail, []  # type: ignore[var-annotated]

    def restart(self, out: Path, environ: object, service: str, timeout: float, on_event: object) -> object:
        from deploytool.errors import CheckFailed

        self.restarts.append(service)
        if service == self.fail:
            raise CheckFailed(f"deploytool up failed: {service} was not healthy within 1s")
        return type("Status", (), {"state": "healthy"})()


@pytest.fixture(autouse=True)
def _not_in_ci(monkeypatch):
    """These cases plant files in a checkout's local overlay too, which `validate` under CI=true never reads
    (CI runs this suite with CI=true): they are held to what a person's `validate` does."""
    monkeypatch.delenv("CI", raising=False)


@pytest.fixture
def running_sharded(make_project, monkeypatch):
    """A sharded environment that `tenants` sees running here, its shards and runner stand-ins."""
    from deploytool import tenants

    spec = make_project({"prod": TENANTS_SHARDED})
    assert main(["--spec", str(spec), "render", "prod"]) == 0
    node, state = _Node(), {"runner": _Runner()}

    def fake_live(lay, environ):
        urls = {s.name: f"http://127.0.0.1:1/{s.name}" for s in lay.plan.services}
        return tenants.Live(lay.out, state["runner"], environ, urls, "key", node)  # type: ignore[arg-type]

    monkeypatch.setattr(tenants, "live", fake_live)
    return spec, node, state


def _lock_of(spec: Path) -> dict[str, int]:
    return json.loads((spec.parent / "environments" / "prod.lock.json").read_text())["assignments"]


def _hold_folder_lock(out: Path):  # type: ignore[no-untyped-def]
    import fcntl

    (out / ".run").mkdir(exist_ok=True)
    handle = open(out / ".run" / "lock", "a")  # noqa: SIM115 - held for the test's length
    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)  # as another deploytool process would
    return handle


@pytest.mark.parametrize(
    "args", [("tenants", "move", "prod", "1", "--shard", "2"), ("tenants", "rebalance", "prod", "--apply")]
)
@pytest.mark.parametrize("running", [True, False])
def test_a_second_move_while_one_works_is_refused_before_it_changes_anything(
    running_sharded, monkeypatch, capsys, args, running
):
    from deploytool import tenants

    spec, node, _ = running_sharded
    if not running:
        monkeypatch.setattr(tenants, "live", lambda lay, environ: None)
    if args[1] == "rebalance":
        lock = {"1": 1, "2": 1, "3": 1, "4": 1, "5": 2}
        (spec.parent / "environments" / "prod.lock.json").write_text(
            json.dumps({"version": 1, "env": "prod", "assignments": lock})
        )
    before = (spec.parent / "environments" / "prod.lock.json").read_bytes()
    held = _hold_folder_lock(spec.parent / DEV.replace("dev", "prod"))
    try:
        assert main(["--spec", str(spec), *args]) == 2
    finally:
        held.close()
    err = capsys.readouterr().err
    assert "another deploytool command" in err and "nothing was changed" in err
    assert node.calls == []  # no shard was asked to release anything
    assert (spec.parent / "environments" / "prod.lock.json").read_bytes() == before


def test_an_interrupted_move_says_how_to_finish_and_running_it_again_finishes_it(running_sharded, capsys):
    spec, node, state = running_sharded
    state["runner"] = _Runner(fail="whatsapp-shard-2")  # the new shard does not come back
    args = ["--spec", str(spec), "tenants", "move", "prod", "1", "--shard", "2"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "the move of tenant 1 to whatsapp-shard-2 is not finished; run " in err
    assert "`deploytool tenants move prod 1 --shard 2` to finish it" in err
    assert _lock_of(spec)["1"] == 2  # released on shard 1, the lock already names shard 2
    # another move first is refused: the half-done one comes first
    assert main(["--spec", str(spec), "tenants", "move", "prod", "2", "--shard", "2"]) == 2
    assert "finish it first: `deploytool tenants move prod 1 --shard 2`" in capsys.readouterr().err
    assert main(["--spec", str(spec), "tenants", "rebalance", "prod", "--apply"]) == 2
    capsys.readouterr()
    node.calls.clear()
    state["runner"] = _Runner()
    assert main(args) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "finishing the interrupted move of tenant 1" in out and "connected on whatsapp-shard-2" in out
    assert ("POST", "http://127.0.0.1:1/whatsapp-shard-2/tenants/1/connect") in node.calls
    assert state["runner"].restarts[-1] == "web"  # web follows the new route
    assert not (spec.parent / "deploy" / "prod" / ".run" / "tenant-move.json").exists()
    assert main(args) == 0  # and now it is simply done
    assert "already; nothing to do" in capsys.readouterr().out


# --- F6: every tenant id the spec accepts works in every topology, or is refused at its line ---------------------

TOPOLOGIES = {
    "per-port": "topology: {kind: per-port}\n",
    "shared": "topology: {kind: shared}\n",
    "sharded": "topology: {kind: sharded, max_tenants_per_shard: 2}\n",
}


@pytest.mark.parametrize("topology", sorted(TOPOLOGIES))
@pytest.mark.parametrize("tenant", ["A", "_", "a_b", "a" * 64, "a" * 31, "Zz-9", "-", "1"])
def test_every_tenant_id_the_spec_accepts_renders_or_is_refused_at_its_line(make_project, capsys, topology, tenant):
    overlay = (
        f"stage: development\ntargets: [local, compose]\n{TOPOLOGIES[topology]}tenants:\n  - '2'\n  - '{tenant}'\n"
    )
    spec = make_project({"dev": overlay})
    code = main(["--spec", str(spec), "render", "dev"])
    err = capsys.readouterr().err
    assert "Traceback" not in err and "validation error" not in err, err
    valid_name = tenant == tenant.lower() and "_" not in tenant and len(tenant) <= 31
    if topology != "per-port" or valid_name:
        assert code == 0, err
        manifest = json.loads((spec.parent / DEV / "deploytool-manifest.json").read_text())
        assert tenant in [route["tenant"] for route in manifest["tenants"]]
    else:
        assert code == 2, err
        assert "environments/dev.yaml:6: tenants.1: per-port gives each tenant a service `whatsapp-<id>`" in err


def test_a_range_whose_service_names_would_be_too_long_is_refused_at_its_line(make_project, capsys):
    base = BASE_SPEC.replace("  whatsapp:\n", "  " + "w" * 36 + ":\n")
    spec = make_project({"dev": "topology: {kind: per-port}\ntenants: {from: 1, to: 1000}\n"}, base=base)
    assert main(["--spec", str(spec), "validate", "dev"]) == 2
    assert "environments/dev.yaml:2: tenants.to: per-port gives each tenant a service" in capsys.readouterr().err


# --- F7: every port the allocator can reach is checked before any artifact is built ----------------------------


@pytest.mark.parametrize(
    "overlay",
    [
        "topology: {kind: per-port}\nservices: {whatsapp: {port: 65534}}\n",
        "topology: {kind: per-port}\nservices: {whatsapp: {port: 65535}}\ntenants: ['1', '2']\n",
        "topology: {kind: sharded, max_tenants_per_shard: 1}\nservices: {whatsapp: {port: 65534}}\n",
        "topology: {kind: per-port, ports: {'1': 65535}}\nservices: {whatsapp: {port: 65535}}\n",
    ],
    ids=["per-port", "per-port-last", "sharded", "explicit"],
)
@pytest.mark.parametrize("command", ["validate", "render", "show"])
def test_a_port_counted_past_65535_is_port_out_of_range_not_a_traceback(make_project, capsys, overlay, command):
    spec = make_project({"dev": "targets: [local, compose]\n" + overlay})
    assert main(["--spec", str(spec), command, "dev"]) == 2
    err = capsys.readouterr().err
    assert "PORT_OUT_OF_RANGE" in err and "is outside 1-65535" in err and "environments/dev.yaml:" in err, err
    assert "validation error" not in err and not (spec.parent / DEV).exists()


# --- F12: the lock, the manifest and the run state are read strictly: numbers are numbers, keys are written once -


def _sharded_lock(spec: Path) -> Path:
    return spec.parent / "environments" / "prod.lock.json"


@pytest.mark.parametrize(
    "text",
    [
        '{"version": true, "env": "prod", "assignments": {"1": 1}}',
        '{"version": 1.0, "env": "prod", "assignments": {"1": 1}}',
        '{"version": 1, "env": "prod", "assignments": {"1": true}}',
        '{"version": 1, "env": "prod", "assignments": {"1": 1.0}}',
        '{"version": 1, "env": "prod", "assignments": {"1": 1, "1": 2}}',
        '{"version": 1, "env": "prod", "env": "prod", "assignments": {"1": 1}}',
        '{"version": 1, "env": "prod", "assignments": {"1": NaN}}',
    ],
    ids=["version-true", "version-float", "shard-true", "shard-float", "duplicate-tenant", "duplicate-key", "nan"],
)
def test_a_lock_with_a_non_number_or_a_duplicate_key_is_exit_2(make_project, capsys, text):
    spec = make_project({"prod": SHARDED})
    _sharded_lock(spec).write_text(text)
    assert main(["--spec", str(spec), "render", "prod"]) == 2
    err = capsys.readouterr().err
    assert "environments/prod.lock.json: " in err and "Traceback" not in err
    assert _sharded_lock(spec).read_text() == text  # not rewritten


@pytest.mark.parametrize(
    "edit",
    [
        lambda text: text.replace('"version": 4', '"version": true'),
        lambda text: text.replace('"version": 4', '"version": 4.0'),
        lambda text: text.replace('"port": 5002', '"port": 5002.0'),
        lambda text: text.replace('"port": 5002', '"port": true'),
        lambda text: text.replace('"environment": "dev",', '"environment": "dev", "environment": "dev",'),
        lambda text: text.replace('"name": "web",', '"name": "web", "name": "whatsapp-1",'),
    ],
    ids=["version-true", "version-float", "port-float", "port-true", "duplicate-top", "duplicate-service-key"],
)
@pytest.mark.parametrize("command", [("ps", "dev"), ("render", "dev"), ("run", "dev", "web", "--", "true")])
def test_a_manifest_with_a_non_number_or_a_duplicate_key_is_exit_2(make_project, capsys, edit, command):
    spec = make_project({"dev": "targets: [local]\n"})
    assert main(["--spec", str(spec), "render", "dev"]) == 0
    path = spec.parent / DEV / "deploytool-manifest.json"
    text = path.read_text()
    edited = edit(text)
    assert edited != text
    path.write_text(edited)
    capsys.readouterr()
    assert main(["--spec", str(spec), *command]) == 2
    err = capsys.readouterr().err
    assert "deploytool-manifest.json: " in err and "Traceback" not in err, err


@pytest.mark.parametrize(
    "text",
    [
        '{"runner": "procfile", "environment": "dev", "version": true}',
        '{"runner": "procfile", "environment": "dev", "version": 1.0}',
        '{"runner": "procfile", "runner": "compose", "environment": "dev", "version": 1}',
    ],
)
def test_a_run_state_with_a_non_number_or_a_duplicate_key_is_exit_2(make_project, capsys, text):
    spec = make_project({"dev": "targets: [local]\n"})
    assert main(["--spec", str(spec), "render", "dev"]) == 0
    (spec.parent / DEV / ".run").mkdir()
    (spec.parent / DEV / ".run" / "state.json").write_text(text)
    capsys.readouterr()
    assert main(["--spec", str(spec), "ps", "dev"]) == 2
    assert "state.json: " in capsys.readouterr().err


# --- F14: processes run only in the project the output folder was rendered from -------------------------------


@pytest.mark.parametrize("root", ["/", "/tmp", "../../..", "..", "elsewhere", "../../../etc", "//x", "a\\\\b"])
@pytest.mark.parametrize("command", [("run", "dev", "web", "--", "pwd"), ("up",), ("restart",)])
def test_a_manifest_root_other_than_its_project_is_refused_before_anything_runs(
    make_project, capsys, tmp_path, root, command
):
    spec = make_project({"dev": "targets: [local]\n"})
    assert main(["--spec", str(spec), "render", "dev"]) == 0
    path = spec.parent / DEV / "deploytool-manifest.json"
    data = json.loads(path.read_text())
    assert data["root"] == "../.."
    data["root"] = root
    for service in data["services"]:  # a hand-edited env file, as a process would read it
        env_file = spec.parent / DEV / service["process"]["env_file"]
        env_file.write_text(env_file.read_text() + f"LD_PRELOAD={tmp_path / 'evil.so'}\n")
    (spec.parent / DEV / "elsewhere").mkdir()
    path.write_text(json.dumps(data))
    capsys.readouterr()
    if command[0] == "run":
        assert main(["--spec", str(spec), *command]) == 2
        captured = capsys.readouterr()
        assert "deploytool-manifest.json: root: " in captured.err, captured.err
        assert captured.out == ""
    else:  # the runner itself (the CLI's `up` renders first, which writes the right root again)
        from deploytool.errors import UserError
        from deploytool.run import supervisor

        if command[0] == "restart":
            _state(spec.parent / DEV)
        with pytest.raises(UserError, match=r"deploytool-manifest\.json: root: "):
            if command[0] == "up":
                supervisor.up(spec.parent / DEV, dict(os.environ))
            else:
                supervisor.restart(spec.parent / DEV, dict(os.environ), "web")
        assert command[0] == "restart" or not (spec.parent / DEV / ".run" / "state.json").exists()


# --- F9: a full or closed stdout is one line on stderr and exit 1, never a traceback -----------------------------


@pytest.mark.parametrize("stdout", ["full", "closed"])
@pytest.mark.parametrize(
    "args", [("validate", "dev"), ("show", "dev"), ("schema",), ("--version",), ("render", "dev", "--check")]
)
def test_a_full_or_closed_stdout_is_one_line_and_exit_1(make_project, args, stdout):
    spec = make_project({"dev": "targets: [local]\n"})
    if args[0] == "render":
        assert main(["--spec", str(spec), "render", "dev"]) == 0
    command = [sys.executable, "-c", "from deploytool.cli import entry; entry()", "--spec", str(spec), *args]
    if stdout == "full":
        with open("/dev/full", "w") as full:
            result = subprocess.run(command, stdout=full, stderr=subprocess.PIPE, text=True, timeout=120, check=False)
    else:
        result = subprocess.run(
            command,
            stdout=None,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            check=False,
            close_fds=True,
            preexec_fn=lambda: os.close(1),
        )
    assert result.returncode == 1, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: stdout: "), result.stderr
