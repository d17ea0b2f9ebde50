"""A healthy environment nobody scanned: every tenant's QR codes expired (node answers 410 qr_expired).
The probe must still pass, reporting those tenants as idle, because routing, keys and servers all work."""

from __future__ import annotations

import json
import time

import httpx


def test_probe_passes_on_an_idle_environment_with_expired_codes(deploy, tmp_path):
    deployment = deploy("{kind: per-port}", ["1", "2"])
    overlay = deployment.spec.parent / "environments" / "e2e.yaml"
    overlay.write_text("services:\n  whatsapp:\n    env: {SANDBOX_QR_TTL_MS: '200', SANDBOX_QR_MAX: '1'}\n")
    assert deployment.cli("up", deployment.env, "--timeout", "90") == 0

    routes = {row["tenant"]: row["service"] for row in deployment.manifest()["tenants"]}
    headers = {"X-Api-Key": deployment.secrets()["WHATSAPP_API_KEY"]}
    for tenant, service in routes.items():
        with httpx.Client(base_url=deployment.service_url(service), headers=headers, timeout=10) as node:
            assert node.post(f"/tenants/{tenant}/connect").status_code == 202
            deadline = time.monotonic() + 20
            while node.get(f"/tenants/{tenant}/status").json()["state"] != "qr_expired":
                assert time.monotonic() < deadline, f"tenant {tenant} never expired"
                time.sleep(0.05)

    report_path = tmp_path / "idle.json"
    code = deployment.cli("probe", deployment.env, "--format", "json", "--output", str(report_path), "--timeout", "20")
    report = json.loads(report_path.read_text())
    assert code == 0, report
    qr = [r for r in report["results"] if r["kind"] == "qr"]
    assert len(qr) == 4 and {(r["status"], r["http_status"]) for r in qr} == {("idle", 410)}, qr
    assert report["summary"]["idle"] == 4 and report["summary"]["failed"] == 0 and report["ok"] is True

    junit = tmp_path / "idle.xml"
    assert deployment.cli("probe", deployment.env, "--format", "junit", "--output", str(junit)) == 0
    assert 'failures="0"' in junit.read_text() and 'value="idle"' in junit.read_text()
