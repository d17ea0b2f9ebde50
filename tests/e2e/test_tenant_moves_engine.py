"""`deploytool tenants move` with `--runner compose` on a real engine: a linked tenant moves to the other
shard and stays linked (same `me`, no scan). PostgreSQL store (compose's own Postgres) and file store (the
folder goes volume to volume through `docker cp`). Select with `-m engine`; skips without an engine."""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import pytest

from deploytool.cli import main
from deploytool.output import read_secrets
from deploytool.run.compose import OVERRIDE_VAR
from tests.e2e.test_compose_engine import engine_environ, project, write_override  # noqa: F401 (fixtures)

pytestmark = pytest.mark.engine


@pytest.mark.parametrize("database", ["postgres", "sqlite"])
def test_move_on_compose_keeps_the_tenant_linked(database, project, tmp_path: Path, monkeypatch, capsys):  # noqa: F811
    spec = project(f"move{database[:2]}", "{kind: sharded, max_tenants_per_shard: 3}", ["1", "2", "3", "4"])
    environments = spec.parent / "environments"
    (environments / "e2e.yaml").write_text(f"database: {{engine: {database}}}\n")
    lock = {"version": 1, "env": "e2e", "assignments": {"1": 1, "2": 1, "3": 2, "4": 2}}
    (environments / "e2e.lock.json").write_text(json.dumps(lock))

    def cli(*args: str) -> int:
        return main(["--spec", str(spec), *args])

    os.chdir(tmp_path)
    assert cli("render", "e2e") == 0
    out = spec.parent / "deploy" / "e2e"
    monkeypatch.setenv(OVERRIDE_VAR, str(write_override(out, tmp_path)))
    assert cli("up", "e2e", "--runner", "compose", "--timeout", "300") == 0
    manifest = json.loads((out / "deploytool-manifest.json").read_text())
    url = {s["name"]: s["local_url"] for s in manifest["services"]}
    key = {"X-Api-Key": read_secrets(out)["WHATSAPP_API_KEY"]}

    with httpx.Client(base_url=url["whatsapp-shard-1"], headers=key, timeout=10) as old:
        store = old.get("/health").json().get("session_store", "files")
        assert store == ("postgres" if database == "postgres" else "files")
        assert old.get("/tenants/1/qr").status_code == 200
        linked = old.post("/tenants/1/sandbox/scan")
        assert linked.status_code == 200, linked.text
        me = linked.json()["me"]

    capsys.readouterr()
    assert cli("tenants", "move", "e2e", "1", "--shard", "2", "--timeout", "180") == 0
    printed = capsys.readouterr().out
    assert "connected on whatsapp-shard-2" in printed, printed
    if database == "sqlite":
        assert "copied the session files" in printed and "removed the old session files" in printed, printed

    with httpx.Client(base_url=url["whatsapp-shard-2"], headers=key, timeout=10) as new:
        status = new.get("/tenants/1/status").json()
    assert status["state"] == "connected" and status["me"] == me, status
    with httpx.Client(base_url=url["whatsapp-shard-1"], headers=key, timeout=10) as old:
        assert old.get("/tenants/1/status").status_code == 404
    ops = {"X-Api-Key": read_secrets(out)["OPS_API_KEY"]}
    with httpx.Client(base_url=url["web"], headers=ops, timeout=10) as web:
        assert web.get("/api/qr", params={"user_id": "1"}).status_code == 409  # through the new shard
    assert cli("down", "e2e", "--volumes") == 0
