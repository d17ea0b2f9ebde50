"""`deploytool tenants move` on a running sharded environment (Procfile runner, real node_service and flask):
a linked tenant moves to the other shard and stays linked (same `me`, no scan), with the PostgreSQL session
store and with the file store. PostgreSQL runs when TEST_DATABASE_URL is set."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

SHARDED = "{kind: sharded, max_tenants_per_shard: 3}"
TENANTS = ["1", "2", "3", "4"]


def start(deploy, database: str):
    deployment = deploy(SHARDED, TENANTS)
    environments = deployment.spec.parent / "environments"
    (environments / "e2e.yaml").write_text(f"database: {{engine: {database}}}\n")
    lock = {"version": 1, "env": "e2e", "assignments": {"1": 1, "2": 1, "3": 2, "4": 2}}
    (environments / "e2e.lock.json").write_text(json.dumps(lock))
    assert deployment.cli("up", deployment.env, "--timeout", "90") == 0
    return deployment


def node(deployment, service: str) -> httpx.Client:
    headers = {"X-Api-Key": deployment.secrets()["WHATSAPP_API_KEY"]}
    return httpx.Client(base_url=deployment.service_url(service), headers=headers, timeout=10)


def link(deployment, service: str, tenant: str) -> str:
    """Pair the tenant with the sandbox driver's simulated scan; its `me`."""
    with node(deployment, service) as client:
        assert client.get(f"/tenants/{tenant}/qr").status_code == 200
        scanned = client.post(f"/tenants/{tenant}/sandbox/scan")
        assert scanned.status_code == 200, scanned.text
        status = client.get(f"/tenants/{tenant}/status").json()
    assert status["state"] == "connected", status
    return str(status["me"])


def status(deployment, service: str, tenant: str) -> httpx.Response:
    with node(deployment, service) as client:
        return client.get(f"/tenants/{tenant}/status")


def restored(deployment, service: str, tenant: str, timeout: float = 20) -> dict:
    """The tenant's status once its boot restore has run: node listens (and is healthy) first and restores
    its tenants after, so right after a restart the tenant may not have been started yet."""
    deadline = time.monotonic() + timeout
    while True:
        current = status(deployment, service, tenant).json()
        if current["state"] == "connected" or time.monotonic() > deadline:
            return current
        time.sleep(0.1)


def auth_root(deployment, service: str) -> Path:
    return deployment.out / ".run" / "data" / service


def routes(deployment) -> dict[str, str]:
    return {row["tenant"]: row["service"] for row in deployment.manifest()["tenants"]}


def assert_served_through_web(deployment, tenant: str) -> None:
    ops = {"X-Api-Key": deployment.secrets()["OPS_API_KEY"]}
    with httpx.Client(base_url=deployment.service_url("web"), headers=ops, timeout=10) as web:
        answer = web.get("/api/qr", params={"user_id": tenant})
    assert answer.status_code == 409, answer.text  # already connected: routed to the shard that holds it


def holder_service(database_url: str, tenant: str) -> str | None:
    engine = sa.create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            row = conn.execute(
                sa.text("SELECT service, released_at FROM whatsapp.wa_session_holders WHERE tenant_id = :t"),
                {"t": tenant},
            ).first()
    finally:
        engine.dispose()
    return None if row is None or row[1] is not None else str(row[0])


@pytest.mark.skipif(not os.environ.get("TEST_DATABASE_URL"), reason="TEST_DATABASE_URL is not set (PostgreSQL)")
def test_move_with_the_postgres_store_keeps_the_tenant_linked(deploy, tmp_path, capsys):
    deployment = start(deploy, "postgres")
    with node(deployment, "whatsapp-shard-1") as client:
        health = client.get("/health").json()
    assert health["session_store"] == "postgres", health  # the runner's DATABASE_URL reached the shards
    me = link(deployment, "whatsapp-shard-1", "1")
    assert holder_service(deployment.database_url, "1") == "whatsapp-shard-1"

    assert deployment.cli("tenants", "move", deployment.env, "1", "--shard", "2") == 0
    out = capsys.readouterr().out
    assert "connected on whatsapp-shard-2" in out, out

    assert routes(deployment)["1"] == "whatsapp-shard-2"
    moved = status(deployment, "whatsapp-shard-2", "1").json()
    assert moved["state"] == "connected" and moved["me"] == me  # same account, no scan on the new shard
    assert status(deployment, "whatsapp-shard-1", "1").status_code == 404  # not its tenant any more
    assert holder_service(deployment.database_url, "1") == "whatsapp-shard-2"  # the advisory lock moved too
    assert_served_through_web(deployment, "1")
    report = tmp_path / "probe.json"
    code = deployment.cli("probe", deployment.env, "--format", "json", "--output", str(report), "--timeout", "30")
    assert code == 0, report.read_text()

    assert deployment.cli("tenants", "list", deployment.env) == 0
    listed = [line.split() for line in capsys.readouterr().out.splitlines()[1:]]
    assert ["1", "whatsapp-shard-2", "connected", me] in listed

    # The new shard dies hard and loses its disk: the session comes back from the database alone.
    deployment.kill("whatsapp-shard-2")
    shutil.rmtree(auth_root(deployment, "whatsapp-shard-2"), ignore_errors=True)
    assert deployment.cli("restart", deployment.env, "whatsapp-shard-2") == 0
    again = restored(deployment, "whatsapp-shard-2", "1")
    assert again["state"] == "connected" and again["me"] == me, again
    assert not auth_root(deployment, "whatsapp-shard-2").joinpath("1").exists()  # nothing on disk
    assert_served_through_web(deployment, "1")


def test_move_with_the_file_store_copies_the_folder(deploy, capsys):
    deployment = start(deploy, "sqlite")
    with node(deployment, "whatsapp-shard-1") as client:
        assert "session_store" not in client.get("/health").json()  # the file store
    me = link(deployment, "whatsapp-shard-1", "1")
    old, new = auth_root(deployment, "whatsapp-shard-1") / "1", auth_root(deployment, "whatsapp-shard-2") / "1"
    assert old.is_dir() and not new.exists()

    assert deployment.cli("tenants", "move", deployment.env, "1", "--shard", "2") == 0
    out = capsys.readouterr().out
    assert "copied" in out and "removed the old session files" in out, out

    moved = status(deployment, "whatsapp-shard-2", "1").json()
    assert moved["state"] == "connected" and moved["me"] == me
    assert new.is_dir() and not old.exists()  # copied, and the old copy removed once connected
    assert status(deployment, "whatsapp-shard-1", "1").status_code == 404
    assert_served_through_web(deployment, "1")

    # and it stays linked across a restart of its new shard (its credentials are in the new folder)
    assert deployment.cli("restart", deployment.env, "whatsapp-shard-2") == 0
    again = restored(deployment, "whatsapp-shard-2", "1")
    assert again["state"] == "connected" and again["me"] == me, again
