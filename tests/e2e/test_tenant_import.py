"""`deploytool tenants import`: real Baileys auth folders (written by the installed baileys package's
useMultiFileAuthState) brought into an environment's session store, PostgreSQL and files, then served as linked
with the same `me` by the real node_service (sandbox driver) under the Procfile runner; whatsapp-web.js profiles
reported, hostile folders refused with nothing written, a re-import a no-op, and `up` naming the one command when
a file-store layout left sessions behind after the switch to PostgreSQL. PostgreSQL runs when TEST_DATABASE_URL
is set."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from tests.conftest import REPO

FIXTURE = REPO / "node_service" / "test" / "fixtures" / "baileys-folder.js"
SHARDED = "{kind: sharded, max_tenants_per_shard: 3}"
TENANTS = ["1", "2", "3", "4"]
needs_postgres = pytest.mark.skipif(
    not os.environ.get("TEST_DATABASE_URL"), reason="TEST_DATABASE_URL is not set (PostgreSQL)"
)


def baileys_folder(folder: Path, me: str) -> None:
    """A paired device's folder, as Baileys' useMultiFileAuthState writes it (creds.json and 12 key files)."""
    done = subprocess.run(
        ["node", str(FIXTURE), str(folder), me], cwd=REPO / "node_service", capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["keys"] == 12


def prepare(deploy, database: str, topology: str = SHARDED):
    deployment = deploy(topology, TENANTS)
    environments = deployment.spec.parent / "environments"
    (environments / "e2e.yaml").write_text(f"database: {{engine: {database}}}\n")
    if topology == SHARDED:
        lock = {"version": 1, "env": "e2e", "assignments": {"1": 1, "2": 1, "3": 2, "4": 2}}
        (environments / "e2e.lock.json").write_text(json.dumps(lock))
    assert deployment.cli("render", deployment.env) == 0
    return deployment


def status(deployment, service: str, tenant: str, timeout: float = 20) -> dict:
    """The tenant's status once its boot restore has run (node restores after it listens)."""
    headers = {"X-Api-Key": deployment.secrets()["WHATSAPP_API_KEY"]}
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=deployment.service_url(service), headers=headers, timeout=10) as client:
        while True:
            current = client.get(f"/tenants/{tenant}/status").json()
            if current["state"] == "connected" or time.monotonic() > deadline:
                return current
            time.sleep(0.1)


def listed(deployment, capsys) -> list[list[str]]:
    capsys.readouterr()
    assert deployment.cli("tenants", "list", deployment.env) == 0
    return [line.split() for line in capsys.readouterr().out.splitlines()[1:]]


def session_rows(database_url: str) -> list[tuple[str, str, str]]:
    engine = sa.create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            docs = conn.execute(sa.text("SELECT tenant_id, name, data FROM whatsapp.wa_sessions")).all()
            keys = conn.execute(sa.text("SELECT tenant_id, type || '/' || key_id, data FROM whatsapp.wa_session_keys"))
            return sorted([(r[0], r[1], r[2]) for r in docs] + [(r[0], r[1], r[2]) for r in keys])
    finally:
        engine.dispose()


@needs_postgres
def test_baileys_folders_come_into_postgres_and_resume_linked(deploy, tmp_path, capsys):
    deployment = prepare(deploy, "postgres")
    old = tmp_path / "old-server"
    baileys_folder(old / "auth" / "1", "5511911110001:7@s.whatsapp.net")
    baileys_folder(old / "auth" / "3", "5511911110003:2@s.whatsapp.net")
    (old / ".wwebjs_auth_user_2" / "session-ylada_bot_user_2" / "Default").mkdir(parents=True)

    capsys.readouterr()
    assert deployment.cli("tenants", "import", deployment.env, "--from", str(old)) == 0
    out = capsys.readouterr().out
    assert "auth/1" in out and "5511911110001:7@s.whatsapp.net" in out and "whatsapp-shard-1" in out, out
    assert "auth/3" in out and "whatsapp-shard-2" in out and " 12 " in out, out
    assert "needs one scan" in out and ".wwebjs_auth_user_2" in out, out
    assert "--apply" in out
    creds = json.loads((old / "auth" / "1" / "creds.json").read_text())
    assert creds["noiseKey"]["private"]["data"] not in out  # no key material, ever

    assert deployment.cli("tenants", "import", deployment.env, "--from", str(old), "--apply") == 0
    out = capsys.readouterr().out
    assert out.count("imported (postgres)") == 2, out
    rows = session_rows(deployment.database_url)
    assert {(t, n) for t, n, _ in rows if n == "creds"} == {("1", "creds"), ("3", "creds")}
    assert len(rows) == 2 * 13
    assert not any(t == "2" for t, _, _ in rows)  # the whatsapp-web.js tenant: nothing written

    assert deployment.cli("tenants", "import", deployment.env, "--from", str(old), "--apply") == 0
    assert capsys.readouterr().out.count("unchanged") == 2
    assert session_rows(deployment.database_url) == rows  # a re-import is a no-op

    assert deployment.cli("up", deployment.env, "--timeout", "90") == 0
    assert status(deployment, "whatsapp-shard-1", "1")["me"] == "5511911110001:7@s.whatsapp.net"
    assert status(deployment, "whatsapp-shard-2", "3")["me"] == "5511911110003:2@s.whatsapp.net"
    rows_listed = listed(deployment, capsys)
    assert ["1", "whatsapp-shard-1", "connected", "5511911110001:7@s.whatsapp.net"] in rows_listed
    assert ["3", "whatsapp-shard-2", "connected", "5511911110003:2@s.whatsapp.net"] in rows_listed
    report = tmp_path / "probe.json"
    code = deployment.cli("probe", deployment.env, "--format", "json", "--output", str(report), "--timeout", "30")
    assert code == 0, report.read_text()


def test_baileys_folders_come_into_the_file_store_and_resume_linked(deploy, tmp_path, capsys):
    deployment = prepare(deploy, "sqlite", "{kind: per-port}")
    old = tmp_path / "auth"
    baileys_folder(old / "2", "5511911110002:1@s.whatsapp.net")
    (old / ".wwebjs_auth_5003").mkdir()
    assert deployment.cli("tenants", "import", deployment.env, "--from", str(old), "--apply") == 0
    out = capsys.readouterr().out
    assert "imported (files)" in out and "needs one scan" in out, out
    stored = deployment.out / ".run" / "data" / "whatsapp-2" / "2"
    assert sorted(p.name for p in stored.iterdir()) == sorted(p.name for p in (old / "2").iterdir())
    assert (stored / "creds.json").read_bytes() == (old / "2" / "creds.json").read_bytes()
    assert stored.stat().st_mode & 0o077 == 0

    assert deployment.cli("up", deployment.env, "--timeout", "90") == 0
    assert status(deployment, "whatsapp-2", "2")["me"] == "5511911110002:1@s.whatsapp.net"
    assert ["2", "whatsapp-2", "connected", "5511911110002:1@s.whatsapp.net"] in listed(deployment, capsys)

    # While it runs, the tenant is held: the same session again is a no-op, another one is refused for it.
    before = (stored / "creds.json").read_bytes()
    assert deployment.cli("tenants", "import", deployment.env, "--from", str(old), "--apply", "--replace") == 0
    assert "unchanged" in capsys.readouterr().out
    other = tmp_path / "other"
    baileys_folder(other / "2", "5511911118888:1@s.whatsapp.net")
    assert deployment.cli("tenants", "import", deployment.env, "--from", str(other), "--apply", "--replace") == 1
    assert "locked by another process" in capsys.readouterr().out
    assert (stored / "creds.json").read_bytes() == before


def test_hostile_folders_are_refused_by_name_and_nothing_is_written(deploy, tmp_path, capsys):
    deployment = prepare(deploy, "sqlite", "{kind: per-port}")
    old = tmp_path / "auth"
    outside = tmp_path / "elsewhere"
    baileys_folder(outside, "5511911119999:1@s.whatsapp.net")
    old.mkdir()
    (old / "1").symlink_to(outside)  # a link out of DIR
    baileys_folder(old / "2", "5511911110002:1@s.whatsapp.net")
    with (old / "2" / "pre-key-1.json").open("r+b") as handle:  # a 1 GB (sparse) key file
        handle.truncate(1024**3)
    (old / "3").mkdir()
    (old / "3" / "creds.json").write_text('{"me": {"id": "551191111')  # half-written: not JSON
    baileys_folder(old / "not.a.tenant", "5511911110005:1@s.whatsapp.net")
    baileys_folder(old / "9", "5511911110009:1@s.whatsapp.net")  # a valid id, but no tenant of e2e
    baileys_folder(old / "nested" / "4", "5511911110004:1@s.whatsapp.net")
    baileys_folder(old / "4", "5511911110044:1@s.whatsapp.net")  # a second folder for tenant 4
    (old / "4" / "session-x.json").symlink_to(Path("/etc/hostname"))

    capsys.readouterr()
    assert deployment.cli("tenants", "import", deployment.env, "--from", str(old), "--apply") == 1
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines()[1:] if line and not line.startswith("e2e:")}
    assert "symbolic link" in lines["1"] and "outside" in lines["1"], out
    assert "larger than" in lines["2"] and "pre-key-1.json" in lines["2"], out
    assert "not JSON" in lines["3"], out
    assert "not a valid tenant id" in lines["not.a.tenant"], out
    assert "maps to no tenant of e2e" in lines["9"], out
    assert "second folder for tenant 4" in lines["4"] and "second folder for tenant 4" in lines["nested/4"], out
    assert all("refused" in line for line in lines.values()), out
    data = deployment.out / ".run" / "data"
    assert not data.exists() or not any(data.rglob("*.json"))  # nothing written, for any of them


@needs_postgres
def test_switching_from_files_to_postgres_up_names_the_import_and_it_keeps_the_link(deploy, capsys):
    deployment = prepare(deploy, "sqlite")
    assert deployment.cli("up", deployment.env, "--timeout", "90") == 0
    headers = {"X-Api-Key": deployment.secrets()["WHATSAPP_API_KEY"]}
    with httpx.Client(base_url=deployment.service_url("whatsapp-shard-1"), headers=headers, timeout=10) as client:
        assert client.get("/tenants/1/qr").status_code == 200
        assert client.post("/tenants/1/sandbox/scan").status_code == 200
        me = client.get("/tenants/1/status").json()["me"]
    assert deployment.cli("down", deployment.env) == 0

    (deployment.spec.parent / "environments" / "e2e.yaml").write_text("database: {engine: postgres}\n")
    capsys.readouterr()
    assert deployment.cli("up", deployment.env, "--timeout", "90") == 0
    err = capsys.readouterr().err
    assert f"deploytool tenants import e2e --from {deployment.out / '.run' / 'data'} --apply" in err, err
    assert status(deployment, "whatsapp-shard-1", "1", timeout=1)["state"] != "connected"  # the link is not there

    data = str(deployment.out / ".run" / "data")
    assert deployment.cli("tenants", "import", deployment.env, "--from", data, "--apply") == 0
    out = capsys.readouterr().out
    assert "imported (postgres)" in out and "resumes from the store" in out, out
    assert status(deployment, "whatsapp-shard-1", "1")["me"] == me
    assert ["1", "whatsapp-shard-1", "connected", me] in listed(deployment, capsys)

    assert deployment.cli("down", deployment.env) == 0
    assert deployment.cli("up", deployment.env, "--timeout", "90") == 0
    assert "tenants import" not in capsys.readouterr().err  # imported: `up` says nothing more
    assert status(deployment, "whatsapp-shard-1", "1")["me"] == me  # restored from PostgreSQL by itself
