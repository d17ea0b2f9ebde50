"""Releases on a real engine (issue 30): `up` keeps each release's images under `<image>:r<N>`; a release
whose web image does not start, brought up with `--rollback-on-failure`, goes back to the previous release's
images without a build, and the tenant linked before is still linked afterwards (its session on the volume).

Select with `-m engine` (the engine and project fixtures of test_compose_engine.py).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import docker
import httpx
import pytest
import yaml

from deploytool.cli import main
from deploytool.output import read_secrets
from deploytool.run.compose import OVERRIDE_VAR, project_name
from tests.e2e.test_compose_engine import engine_environ, project, write_override  # noqa: F401  (fixtures)

pytestmark = pytest.mark.engine


def connected(base: str, tenant: str, key: str) -> bool:
    with httpx.Client(base_url=base, headers={"X-Api-Key": key}, timeout=10) as client:
        return client.get(f"/tenants/{tenant}/status").json().get("state") == "connected"


def test_up_rollback_on_failure_goes_back_to_the_tagged_images(project, tmp_path: Path, capsys, monkeypatch):  # noqa: F811
    spec = project("releases", "{kind: shared}", ["1"])

    def cli(*args: str) -> int:
        return main(["--spec", str(spec), *args])

    assert cli("render", "e2e") == 0
    out = spec.parent / "deploy" / "e2e"
    build_override = write_override(out, tmp_path)
    monkeypatch.setenv(OVERRIDE_VAR, str(build_override))
    assert cli("up", "e2e", "--runner", "compose", "--timeout", "300") == 0
    assert "release 1 (compose)" in capsys.readouterr().out
    manifest = json.loads((out / "deploytool-manifest.json").read_text())
    urls = {s["name"]: s["local_url"] for s in manifest["services"]}
    key = read_secrets(out)["WHATSAPP_API_KEY"]
    with httpx.Client(base_url=urls["whatsapp"], headers={"X-Api-Key": key}, timeout=10) as client:
        assert client.get("/tenants/1/qr").status_code == 200
        assert client.post("/tenants/1/sandbox/scan").status_code in (200, 202)
    deadline = time.monotonic() + 30
    while not connected(urls["whatsapp"], "1", key):
        assert time.monotonic() < deadline, "tenant 1 did not connect after the sandbox scan"
        time.sleep(0.5)

    name = project_name(out)
    client = docker.from_env(environment=dict(os.environ))
    first = client.images.get(f"{name}-web")
    assert f"{name}-web:r1" in first.tags  # the tag that keeps release 1's image

    # Release 2: web's image no longer starts (its entrypoint exits), built over the same name.
    broken = tmp_path / "broken.Dockerfile"
    broken.write_text(f'FROM {name}-web:r1\nENTRYPOINT ["sh", "-c", "echo broken on purpose; exit 3"]\n')
    override = yaml.safe_load(build_override.read_text())
    override["services"]["web"]["build"]["dockerfile"] = str(broken)
    broken_override = tmp_path / "broken.yml"
    broken_override.write_text(yaml.safe_dump(override))
    assert cli("down", "e2e") == 0  # volumes stay: the session too
    monkeypatch.setenv(OVERRIDE_VAR, str(broken_override))
    capsys.readouterr()
    code = cli("up", "e2e", "--runner", "compose", "--timeout", "60", "--rollback-on-failure")
    captured = capsys.readouterr()
    assert code == 1, captured.out + captured.err
    assert "release 2 failed; rolling back (--rollback-on-failure)" in captured.err
    assert "back to release 1 (compose, release 3; images" in captured.out
    assert client.images.get(f"{name}-web").id != first.id  # the name holds release 2's image now

    assert httpx.get(f"{urls['web']}/health", timeout=10).status_code == 200  # release 1's web, no build
    web = [
        c
        for c in client.containers.list(filters={"label": f"com.docker.compose.project={name}"})
        if c.labels.get("com.docker.compose.service") == "web"
    ]
    assert [c.image.id for c in web] == [first.id]
    deadline = time.monotonic() + 30
    while not connected(urls["whatsapp"], "1", key):  # the same tenant, still linked: no new scan
        assert time.monotonic() < deadline, "tenant 1 is no longer connected after the rollback"
        time.sleep(0.5)
    assert cli("releases", "e2e", "--format", "json") == 0
    history = json.loads(capsys.readouterr().out)["releases"]
    assert [(r["number"], r["status"], r.get("rollback_of")) for r in history] == [
        (3, "live", 1),
        (2, "failed", None),
        (1, "superseded", None),
    ]
    client.close()


def web_env(client: docker.DockerClient, name: str) -> dict[str, str]:
    (web,) = [
        c
        for c in client.containers.list(filters={"label": f"com.docker.compose.project={name}"})
        if c.labels.get("com.docker.compose.service") == "web"
    ]
    return dict(item.split("=", 1) for item in web.attrs["Config"]["Env"])


def test_rollback_runs_the_release_files_not_today_s(project, tmp_path: Path, capsys, monkeypatch):  # noqa: F811
    """Release 2 changes a value of web's environment; the rollback to release 1 runs release 1's copy of the
    compose file (`.releases/r1/`), so web gets release 1's value back, and the rendered files stay release 2's."""
    spec = project("releasefiles", "{kind: shared}", ["1"])
    env_file = spec.parent / "environments" / "e2e.yaml"

    def cli(*args: str) -> int:
        return main(["--spec", str(spec), *args])

    env_file.write_text("services: {web: {env: {RELEASE_MARK: one}}}\n")
    assert cli("render", "e2e") == 0
    out = spec.parent / "deploy" / "e2e"
    monkeypatch.setenv(OVERRIDE_VAR, str(write_override(out, tmp_path)))
    assert cli("up", "e2e", "--runner", "compose", "--timeout", "300") == 0
    kept = out / ".releases" / "r1"
    assert (kept / "docker-compose.yml").read_bytes() == (out / "docker-compose.yml").read_bytes()
    assert not (kept / ".secrets.env").exists()
    name = project_name(out)
    client = docker.from_env(environment=dict(os.environ))
    assert web_env(client, name)["RELEASE_MARK"] == "one"

    env_file.write_text("services: {web: {env: {RELEASE_MARK: two}}}\n")
    assert cli("up", "e2e", "--runner", "compose", "--timeout", "300") == 0
    assert web_env(client, name)["RELEASE_MARK"] == "two"
    rendered = {p: p.read_bytes() for p in out.rglob("*") if p.is_file() and ".releases" not in p.parts}
    rendered = {p: b for p, b in rendered.items() if ".run" not in p.parts}
    capsys.readouterr()

    assert cli("rollback", "e2e", "--timeout", "300") == 0
    captured = capsys.readouterr()
    assert "back to release 1 (compose, release 3" in captured.out, captured.out + captured.err
    assert "release 1's files: .releases/r1/docker-compose.yml, .releases/r1.compose.yml" in captured.err
    assert web_env(client, name)["RELEASE_MARK"] == "one"  # release 1's file, not today's
    now = {p: p.read_bytes() for p in out.rglob("*") if p.is_file() and not {".releases", ".run"} & set(p.parts)}
    assert now == rendered  # a rollback is a run state: the rendered files are untouched
    assert cli("render", "e2e", "--check") == 0
    assert cli("ps", "e2e") == 0  # later commands run on the same files
    history = json.loads((out / ".releases" / "releases.json").read_text())["releases"]
    assert history[-1]["files"] == [".releases/r1/docker-compose.yml", ".releases/r1.compose.yml"]

    # `--keep 1`: release 1 stays while the live rollback runs on it; once a new `up` replaces it, it goes
    assert cli("up", "e2e", "--runner", "compose", "--timeout", "300", "--keep", "1") == 0
    assert web_env(client, name)["RELEASE_MARK"] == "two"
    assert not kept.exists() and not (out / ".releases" / "r1.compose.yml").exists()
    assert (out / ".releases" / "r4" / "docker-compose.yml").is_file()
    client.close()
