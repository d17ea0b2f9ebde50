"""render -> up -> probe -> a message through the signed webhook -> kill a WhatsApp process -> probe
names exactly its tenants -> down leaves nothing behind. Real processes, real HTTP, real database."""

from __future__ import annotations

import json
import time

import httpx
import pytest
import sqlalchemy as sa

from tests.conftest import process_alive

TOPOLOGIES = {
    "per-port": ("{kind: per-port}", ["1", "2", "3"]),
    "shared": ("{kind: shared}", ["1", "2", "3"]),
    "sharded": ("{kind: sharded, max_tenants_per_shard: 2}", ["1", "2", "3", "4"]),
}


def probe_json(deployment, tmp_path, name: str, *extra: str) -> tuple[int, dict]:
    report = tmp_path / f"{name}.json"
    code = deployment.cli("probe", deployment.env, "--format", "json", "--output", str(report), *extra)
    return code, json.loads(report.read_text())


def messages(database_url: str, tenant: str) -> list[tuple[str, str]]:
    engine = sa.create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT sender, text FROM messages WHERE tenant_id = :t"), {"t": tenant})
            return [tuple(r) for r in rows]
    finally:
        engine.dispose()


@pytest.mark.parametrize("topology", list(TOPOLOGIES))
def test_topology_end_to_end(topology, deploy, tmp_path):
    spec_topology, tenants = TOPOLOGIES[topology]
    deployment = deploy(spec_topology, tenants)
    assert deployment.cli("render", deployment.env) == 0
    assert deployment.cli("up", deployment.env, "--timeout", "90") == 0

    code, report = probe_json(deployment, tmp_path, "healthy", "--timeout", "30")
    assert code == 0, report
    ids = {r["id"] for r in report["results"]}
    assert {f"qr:{t}@web" for t in tenants} <= ids  # every tenant checked through flask too

    # A message arrives on WhatsApp (sandbox) for the last tenant and reaches flask's database.
    manifest = deployment.manifest()
    routes = {row["tenant"]: row["service"] for row in manifest["tenants"]}
    tenant = tenants[-1]
    server = deployment.service_url(routes[tenant])
    headers = {"X-Api-Key": deployment.secrets()["WHATSAPP_API_KEY"]}
    with httpx.Client(base_url=server, headers=headers, timeout=10) as client:
        assert client.post(f"/tenants/{tenant}/sandbox/scan").status_code in (200, 202)
        sent = client.post(
            f"/tenants/{tenant}/sandbox/inbound", json={"from": "5511999990000", "text": f"hi {topology}"}
        )
        assert sent.status_code in (200, 202), sent.text
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not messages(deployment.database_url, tenant):
        time.sleep(0.2)
    # WhatsApp (and the sandbox) name the sender by JID.
    assert messages(deployment.database_url, tenant) == [("5511999990000@s.whatsapp.net", f"hi {topology}")]

    # One WhatsApp process dies: the probe fails for exactly the tenants it served, nothing else.
    victim = routes[tenants[0]]
    victim_tenants = sorted(t for t, s in routes.items() if s == victim)
    deployment.kill(victim)
    code, report = probe_json(deployment, tmp_path, "broken", "--timeout", "3", "--interval", "0.5")
    assert code == 1
    failed = {r["id"] for r in report["results"] if r["status"] == "fail"}
    expected = (
        {f"health:{victim}"} | {f"qr:{t}@{victim}" for t in victim_tenants} | {f"qr:{t}@web" for t in victim_tenants}
    )
    assert failed == expected
    assert sorted(report["failed_tenants"]) == victim_tenants
    via_web = next(r for r in report["results"] if r["id"] == f"qr:{victim_tenants[0]}@web")
    assert via_web["http_status"] == 503  # flask answers 503 naming the unreachable server, never 500

    pids = deployment.pids()
    assert deployment.cli("down", deployment.env) == 0
    assert not any(process_alive(pid) for pid in pids)
    assert not (deployment.out / ".run" / "state.json").exists()
