"""`deploytool tenants import` on an environment Compose runs on a real engine: a real Baileys auth folder goes
into the running WhatsApp container's store (the compose PostgreSQL, or the file store on its named volume),
the tenant resumes without a QR with the same `me`, and stays linked across a restart of its container.

Select with `-m engine`; skips without an engine, fails under CI (`CI` set), like test_compose_engine.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from deploytool.cli import main
from deploytool.output import read_secrets
from deploytool.run.compose import OVERRIDE_VAR, project_name
from tests.e2e.test_compose_engine import engine_environ, project, write_override  # noqa: F401  (fixtures)
from tests.e2e.test_tenant_import import baileys_folder

pytestmark = pytest.mark.engine

ME = "5511922220002:5@s.whatsapp.net"
OVERLAYS = {
    "postgres": "{}\n",
    # the file store with its volume in a PostgreSQL environment (README: Where sessions live)
    "files": "services: {whatsapp: {env: {SESSION_STORE: files}}}\n",
}


def connected(url: str, key: str, tenant: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=url, headers={"X-Api-Key": key}, timeout=10) as client:
        while True:
            try:
                status = client.get(f"/tenants/{tenant}/status").json()
            except httpx.HTTPError:
                status = {}
            if status.get("state") == "connected" or time.monotonic() > deadline:
                return status
            time.sleep(0.2)


@pytest.mark.parametrize("store", list(OVERLAYS))
def test_import_into_a_compose_environment(store, project, tmp_path: Path, capsys, monkeypatch) -> None:  # noqa: F811
    spec = project(f"import{store}", "{kind: shared}", ["1", "2", "3"])
    (spec.parent / "environments" / "e2e.yaml").write_text(OVERLAYS[store])

    def cli(*args: str) -> int:
        return main(["--spec", str(spec), *args])

    os.chdir(tmp_path)
    assert cli("render", "e2e") == 0
    out = spec.parent / "deploy" / "e2e"
    monkeypatch.setenv(OVERRIDE_VAR, str(write_override(out, tmp_path)))
    assert cli("up", "e2e", "--runner", "compose", "--timeout", "300") == 0
    url = next(s["local_url"] for s in json.loads((out / "deploytool-manifest.json").read_text())["services"]
               if s["name"] == "whatsapp")  # fmt: skip
    key = read_secrets(out)["WHATSAPP_API_KEY"]

    old = tmp_path / "old" / "auth"
    baileys_folder(old / "2", ME)
    (old.parent / ".wwebjs_auth_user_3").mkdir()
    capsys.readouterr()
    assert cli("tenants", "import", "e2e", "--from", str(old.parent), "--apply") == 0
    said = capsys.readouterr().out
    assert f"imported ({store})" in said and "resumes from the store" in said, said
    assert "needs one scan" in said and ".wwebjs_auth_user_3" in said, said
    status = connected(url, key, "2")
    assert status["state"] == "connected" and status["me"] == ME, status

    assert cli("tenants", "import", "e2e", "--from", str(old.parent), "--apply") == 0
    assert "unchanged" in capsys.readouterr().out  # a re-import is a no-op

    # The container restarts: the session comes back from its store (the database, or the volume) by itself.
    assert cli("restart", "e2e", "whatsapp", "--timeout", "120") == 0
    again = connected(url, key, "2")
    assert again["state"] == "connected" and again["me"] == ME, again
    assert cli("down", "e2e") == 0


def test_switching_compose_from_the_file_store_to_postgres_keeps_the_link(
    project,  # noqa: F811
    tmp_path,
    capsys,
    monkeypatch,
    request,
):
    spec = project("importswitch", "{kind: shared}", ["1", "2", "3"])
    overlay = spec.parent / "environments" / "e2e.yaml"
    overlay.write_text(OVERLAYS["files"])

    def cli(*args: str) -> int:
        return main(["--spec", str(spec), *args])

    os.chdir(tmp_path)
    assert cli("render", "e2e") == 0
    out = spec.parent / "deploy" / "e2e"
    monkeypatch.setenv(OVERRIDE_VAR, str(write_override(out, tmp_path)))
    assert cli("up", "e2e", "--runner", "compose", "--timeout", "300") == 0
    # the file store's volume outlives its layout (the fixture's `down --volumes` no longer names it): ours to remove
    volume = f"{project_name(out)}_whatsapp-data"
    request.addfinalizer(
        lambda: subprocess.run(["docker", "volume", "rm", "-f", volume], capture_output=True, check=False)
    )
    url = next(s["local_url"] for s in json.loads((out / "deploytool-manifest.json").read_text())["services"]
               if s["name"] == "whatsapp")  # fmt: skip
    key = read_secrets(out)["WHATSAPP_API_KEY"]
    with httpx.Client(base_url=url, headers={"X-Api-Key": key}, timeout=10) as client:
        assert client.get("/tenants/1/qr").status_code == 200
        assert client.post("/tenants/1/sandbox/scan").status_code == 200
        me = client.get("/tenants/1/status").json()["me"]
    assert cli("down", "e2e") == 0  # the volume stays

    overlay.write_text("{}\n")  # the spec's default: sessions in the compose PostgreSQL, no volume
    capsys.readouterr()
    assert cli("up", "e2e", "--runner", "compose", "--timeout", "300") == 0
    err = capsys.readouterr().err
    command = next((line.split("without a scan: ", 1)[1] for line in err.splitlines() if "--from-volume" in line), "")
    assert command == f"deploytool tenants import e2e --from-volume {volume} --apply", err
    assert command.startswith("deploytool tenants import e2e --from-volume ") and command.endswith(" --apply"), err
    assert connected(url, key, "1", timeout=2).get("state") != "connected"  # not in PostgreSQL yet

    assert cli("tenants", *command.split()[2:]) == 0
    said = capsys.readouterr().out
    assert "auth/1" in said and "imported (postgres)" in said, said
    status = connected(url, key, "1")
    assert status["state"] == "connected" and status["me"] == me, status

    assert cli("restart", "e2e", "whatsapp", "--timeout", "120") == 0
    assert connected(url, key, "1")["me"] == me  # from PostgreSQL, by itself
    assert cli("down", "e2e") == 0
    capsys.readouterr()
    assert cli("up", "e2e", "--runner", "compose", "--timeout", "300") == 0
    assert "--from-volume" not in capsys.readouterr().err  # imported: `up` says nothing more
