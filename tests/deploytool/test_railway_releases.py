"""Releases on Railway (issue 30): `railway apply --wait`, `rollback`, `ps`/`logs` of a Railway environment.

Against the stand-in `railway` (tests/fake_railway/railway + deployments.py: deployments move one status on
at each `deployment list`, no clock) and a GraphQL endpoint on loopback (an http.server in this file) that
answers `deployment(id)` and `deploymentRollback(id)` from the same state file.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from deploytool import pipeline
from tests.fake_railway import deployments as fake

FAKE = Path(__file__).resolve().parents[1] / "fake_railway" / "railway"
TOKEN = "project-token-Zr8kq1"
LOG_SECRET = "webhook-secret-in-a-log-Vb3"
STAGING = ["web", "whatsapp"]
SPEC_OVERLAY = "targets: [railway]\nrailway: {repo: acme/chat}\n"


@pytest.fixture
def api(tmp_path):
    """The loopback GraphQL endpoint over the stand-in's state file; `requests` lists what it was sent."""
    state = tmp_path / "railway-state.json"
    seen: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            headers = {k.lower(): v for k, v in self.headers.items()}
            seen.append({"body": body, "headers": headers})
            with fake.state(state) as data:
                code, document = fake.graphql(data, body, headers, TOKEN)
            raw = json.dumps(document).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/graphql/v2", state, seen
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def project(tmp_path, make_project, api):
    """A staging project on the Railway target, rendered, with the stand-in on PATH and live deployments."""
    url, state, seen = api
    spec = make_project({"staging": SPEC_OVERLAY})
    pipeline.write(pipeline.render_environment(spec, "staging"))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shutil.copy(FAKE, bin_dir / "railway")
    shutil.copy(FAKE.with_name("deployments.py"), bin_dir / "deployments.py")
    path = os.pathsep.join([str(bin_dir), str(Path(sys.executable).parent), os.environ.get("PATH", os.defpath)])
    base = {k: v for k, v in os.environ.items() if not k.startswith(("RAILWAY_", "DEPLOYTOOL_")) and k != "CI"}
    environ = {
        **base,
        "PATH": path,
        "FAKE_RAILWAY_LOG": str(tmp_path / "railway-calls.jsonl"),
        "FAKE_RAILWAY_LINKED": "staging",
        "FAKE_RAILWAY_STATE": str(state),
        "DEPLOYTOOL_RAILWAY_API": url,
        "RAILWAY_TOKEN": TOKEN,
        "WEBHOOK_SECRET": LOG_SECRET,
        "DEPLOYTOOL_RAILWAY_POLL_INTERVAL": "0",  # the stand-in's deployments move on at each look, not in time
    }
    fake.seed(state, STAGING)

    class Project:
        out = tmp_path / "deploy" / "staging"
        spec_path = spec

        @staticmethod
        def run(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "deploytool", "--spec", str(spec), *args],
                env={**environ, **extra},
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )

        @staticmethod
        def script(**scripts: list[str]) -> None:
            with fake.state(state) as data:
                data["scripts"].update(scripts)

        @staticmethod
        def logs(**logs: list[str]) -> None:
            with fake.state(state) as data:
                data["logs"].update(logs)

        @staticmethod
        def history() -> list[dict]:
            done = Project.run("releases", "staging", "--format", "json")
            assert done.returncode == 0, done.stderr
            return json.loads(done.stdout)["releases"]

        @staticmethod
        def deployments(service: str) -> list[dict]:
            with fake.state(state) as data:
                return [dict(d) for d in data["deployments"][service]]

        requests = seen

    return Project


def lines_of(out: str, service: str) -> list[str]:
    """The states `apply --wait` printed for `service` (its log lines, `service | ...`, left out)."""
    words = [line.split() for line in out.splitlines()]
    return [w[1] for w in words if len(w) > 1 and w[0] == service and w[1] != "|"]


def test_apply_wait_follows_each_service_until_live_and_records_the_release(project):
    done = project.run("railway", "apply", "staging", "--wait", "--yes", "--timeout", "60")
    assert done.returncode == 0, done.stdout + done.stderr
    # one line each time a state changes, per service, from `railway deployment list --json`
    assert lines_of(done.stdout, "web") == ["QUEUED", "BUILDING", "DEPLOYING", "SUCCESS"]
    assert lines_of(done.stdout, "whatsapp") == ["QUEUED", "BUILDING", "DEPLOYING", "SUCCESS"]
    assert "release 2 is live on Railway (web, whatsapp redeployed)" in done.stdout
    assert "probe skipped: no public URL is known" in done.stdout
    history = project.history()
    assert [(r["number"], r["status"]) for r in history] == [(2, "live"), (1, "superseded")]
    assert history[1]["services"]["web"]["deployment_id"] == "web-d0"  # what ran before: observed, recorded
    assert history[1]["artifacts"] == {} and "spec:.railway/railway.py" in history[0]["artifacts"]
    web = history[0]["services"]["web"]
    assert (web["deployment_id"], web["deployment_status"], len(web["config"])) == ("web-d1", "SUCCESS", 64)
    assert history[0]["services"]["whatsapp"]["tenants"] == ["1", "2", "3"]
    assert TOKEN not in (project.out / ".releases" / "releases.json").read_text()


def test_apply_wait_learns_what_it_redeployed_from_the_deployments(project):
    # The current CLI's `config apply --json` drops each change's address and deployEffect (runner.rs
    # RunnerResponse): a service with a deployment it did not have before the apply is what redeployed.
    done = project.run(
        "railway", "apply", "staging", "--wait", "--yes", "--timeout", "60", FAKE_RAILWAY_UNCHANGED="service.whatsapp"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert lines_of(done.stdout, "web") == ["QUEUED", "BUILDING", "DEPLOYING", "SUCCESS"]
    assert lines_of(done.stdout, "whatsapp") == []
    assert "release 2 is live on Railway (web redeployed)" in done.stdout


def test_apply_wait_with_nothing_pending_is_a_live_release(project):
    # with nothing pending the CLI prints nothing under --json, and exits 0
    unchanged = "service.web,service.whatsapp,database.Postgres"
    done = project.run("railway", "apply", "staging", "--wait", "--yes", FAKE_RAILWAY_UNCHANGED=unchanged)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "the apply redeployed no service; release 2 is live" in done.stdout
    assert [(r["number"], r["status"]) for r in project.history()] == [(2, "live"), (1, "superseded")]


def test_apply_wait_of_a_pinned_plan_reads_the_apply_result_alone(project, tmp_path):
    plan_file = tmp_path / "staging.plan"
    planned = project.run("railway", "plan", "staging", "--plan-out", str(plan_file))
    assert planned.returncode == 0, planned.stdout + planned.stderr
    # `config apply --plan FILE --json` prints the apply result alone: no `ok`, no change set
    done = project.run("railway", "apply", "staging", "--wait", "--plan", str(plan_file), "--timeout", "60")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Update service web (applied)" in done.stdout
    assert "release 2 is live on Railway (web, whatsapp redeployed)" in done.stdout


def test_wait_needs_yes_since_the_cli_never_asks_in_json_mode(project):
    done = project.run("railway", "apply", "staging", "--wait")
    assert done.returncode == 2 and "add --yes" in done.stderr


def test_a_failed_build_exits_1_naming_it_with_its_masked_build_log(project):
    project.script(whatsapp=["QUEUED", "BUILDING", "FAILED"])
    project.logs(**{"whatsapp-d2:build": ["step 3/5: npm ci", f"error: bad WEBHOOK_SECRET {LOG_SECRET}"]})
    done = project.run("railway", "apply", "staging", "--wait", "--yes")
    assert done.returncode == 1
    assert lines_of(done.stdout, "whatsapp") == ["QUEUED", "BUILDING", "FAILED"]
    assert "release 2 failed on Railway: whatsapp (FAILED)" in done.stderr
    assert "whatsapp | 2026-12-02T00:00:01Z error: bad WEBHOOK_SECRET ***" in done.stdout
    assert LOG_SECRET not in done.stdout + done.stderr
    history = project.history()
    assert [(r["number"], r["status"]) for r in history] == [(2, "failed"), (1, "live")]
    assert project.requests == []  # no rollback unless asked


def test_a_crash_after_going_live_fails_and_rollback_on_failure_goes_back(project):
    project.script(web=["QUEUED", "DEPLOYING", "SUCCESS", "CRASHED"])
    project.logs(**{"web-d1": ["Traceback: KeyError SECRET_KEY"]})
    done = project.run("railway", "apply", "staging", "--wait", "--yes", "--rollback-on-failure")
    assert done.returncode == 1, done.stdout + done.stderr
    assert lines_of(done.stdout, "web")[:4] == ["QUEUED", "DEPLOYING", "SUCCESS", "CRASHED"]
    assert "web | 2026-12-02T00:00:00Z Traceback: KeyError SECRET_KEY" in done.stdout
    assert "rolling back to release 1 (--rollback-on-failure)" in done.stderr
    # both redeployed services go back: web (crashed) and whatsapp (fine, but of the failed release)
    rolled = [r["body"]["variables"]["id"] for r in project.requests if "deploymentRollback" in r["body"]["query"]]
    assert rolled == ["web-d0", "whatsapp-d0"]  # web first, the WhatsApp service after it, one at a time
    assert all(r["headers"]["project-access-token"] == TOKEN for r in project.requests)
    assert project.deployments("web")[0]["meta"] == {"reason": "rollback", "rollbackOf": "web-d0"}
    history = project.history()
    assert [(r["number"], r["status"], r.get("rollback_of")) for r in history] == [
        (3, "live", 1),
        (2, "failed", None),
        (1, "superseded", None),
    ]


def test_rollback_to_a_named_release_through_the_api(project):
    assert project.run("railway", "apply", "staging", "--wait", "--yes").returncode == 0
    assert project.run("railway", "apply", "staging", "--wait", "--yes").returncode == 0
    done = project.run("rollback", "staging", "--to", "2")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "back to release 2 on Railway (release 4; 2 rolled back)" in done.stdout
    rolled = [r["body"]["variables"]["id"] for r in project.requests if "deploymentRollback" in r["body"]["query"]]
    assert rolled == ["web-d1", "whatsapp-d2"]
    assert project.history()[0]["status"] == "live"


def test_rollback_without_a_token_says_which_to_set(project):
    assert project.run("railway", "apply", "staging", "--wait", "--yes").returncode == 0
    done = project.run("rollback", "staging", RAILWAY_TOKEN="")
    assert done.returncode == 2 and "set RAILWAY_TOKEN" in done.stderr and "Traceback" not in done.stderr


def test_the_api_must_be_https_unless_on_loopback(project):
    assert project.run("railway", "apply", "staging", "--wait", "--yes").returncode == 0
    done = project.run("rollback", "staging", DEPLOYTOOL_RAILWAY_API="http://api.example.com/graphql")
    assert done.returncode == 2 and "expected an https:// URL" in done.stderr


@pytest.fixture
def live_web():
    """web's public side: /health ok, and every tenant already connected (409)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            code, body = (200, b'{"status": "ok"}') if self.path == "/health" else (409, b"{}")
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_apply_wait_then_probes_the_public_urls(project, live_web):
    done = project.run("railway", "apply", "staging", "--wait", "--yes", "--url", f"web={live_web}", OPS_API_KEY="k")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASS" in done.stdout and "health:web" in done.stdout


def test_ps_and_logs_of_an_environment_on_railway_come_from_the_cli(project):
    project.logs(**{"web": ["booting", f"key is {LOG_SECRET}"], "whatsapp": ["tenant 1 linked"]})
    done = project.run("ps", "staging")
    assert done.returncode == 0, done.stderr
    rows = [line.split() for line in done.stdout.splitlines()]
    assert rows[0] == ["SERVICE", "RUNNER", "STATE", "DEPLOYMENT", "AGE"]
    assert [r[:4] for r in rows[1:]] == [
        ["web", "railway", "SUCCESS", "web-d0"],
        ["whatsapp", "railway", "SUCCESS", "whatsapp-d0"],
    ]
    assert rows[1][4].endswith("d")  # seeded days ago
    logs = project.run("logs", "staging", "web", "--lines", "1")
    assert logs.returncode == 0, logs.stderr
    assert logs.stdout.splitlines() == ["web | 2026-12-02T00:00:00Z key is ***"]
    every = project.run("logs", "staging")
    assert [line.split(" | ")[0] for line in every.stdout.splitlines()] == ["web", "web", "whatsapp"]
    follow = project.run("logs", "staging", "web", "-f")
    assert follow.returncode == 2 and "--follow is not supported" in follow.stderr


def test_railway_plan_says_which_tenants_reconnect_against_the_live_release(project):
    assert project.run("railway", "apply", "staging", "--wait", "--yes").returncode == 0
    same = project.run("railway", "plan", "staging")
    assert same.returncode == 0 and "reconnect" not in same.stderr
    overlay = SPEC_OVERLAY + "services: {whatsapp: {env: {GREETING: oi}}}\n"
    (project.spec_path.parent / "environments" / "staging.yaml").write_text(overlay)
    pipeline.write(pipeline.render_environment(project.spec_path, "staging"))
    changed = project.run("railway", "plan", "staging")
    assert changed.returncode == 0, changed.stderr
    assert "staging: whatsapp restarts: tenants 1, 2, 3 reconnect" in changed.stderr
    assert "staging: web" not in changed.stderr


def test_the_impact_lines_show_each_tenants_link_state_from_the_last_probe(project, live_web):
    applied = project.run("railway", "apply", "staging", "--wait", "--yes", "--url", f"web={live_web}", OPS_API_KEY="k")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    overlay = SPEC_OVERLAY + "services: {whatsapp: {env: {GREETING: oi}}}\n"
    (project.spec_path.parent / "environments" / "staging.yaml").write_text(overlay)
    pipeline.write(pipeline.render_environment(project.spec_path, "staging"))
    planned = project.run("railway", "plan", "staging")
    assert "staging: whatsapp restarts: tenants 1 (linked), 2 (linked), 3 (linked) reconnect" in planned.stderr


def test_a_plain_apply_records_a_pending_release_and_rollback_goes_back_past_it(project):
    assert project.run("railway", "apply", "staging", "--wait", "--yes").returncode == 0  # 1: before, 2: live
    done = project.run("railway", "apply", "staging", "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "staging: release 3 (pending: not waited for" in done.stderr
    history = project.history()
    assert [(r["number"], r["status"]) for r in history] == [(3, "pending"), (2, "live"), (1, "superseded")]
    assert {s: history[0]["services"][s]["deployment_id"] for s in STAGING} == {
        "web": "web-d3",
        "whatsapp": "whatsapp-d4",
    }
    assert history[0]["services"]["whatsapp"]["tenants"] == ["1", "2", "3"]
    log = (project.out.parents[1] / "railway-calls.jsonl").read_text().splitlines()
    listing = [json.loads(line)["argv"] for line in log if '"argv"' in line]
    last_apply = max(i for i, a in enumerate(listing) if a[:2] == ["config", "apply"])
    after = listing[last_apply + 1 :]
    assert [a[a.index("--service") + 1] for a in after if a[:2] == ["deployment", "list"]] == STAGING  # once each
    table = project.run("releases", "staging")
    assert "pending" in table.stdout and "web=web-d3" in table.stdout
    rolled = project.run("rollback", "staging")
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert "back to release 2 on Railway (release 4; 2 rolled back)" in rolled.stdout
    ids = [r["body"]["variables"]["id"] for r in project.requests if "deploymentRollback" in r["body"]["query"]]
    assert ids == ["web-d1", "whatsapp-d2"]
    history = project.history()  # each with what it deployed: 3 this apply's render, 4 release 2's
    assert history[0]["artifacts"] == history[1]["artifacts"] == history[2]["artifacts"] != {}


def test_a_plain_apply_whose_lookup_fails_still_succeeds_and_records_no_ids(project, tmp_path):
    failing = tmp_path / "failing-bin"
    failing.mkdir()
    wrapper = failing / "railway"
    wrapper.write_text(
        "#!/bin/sh\n"
        '[ "$1 $2" = "deployment list" ] && { echo "Unauthorized. Please login with `railway login`" >&2; exit 1; }\n'
        f'exec "{tmp_path / "bin" / "railway"}" "$@"\n'
    )
    wrapper.chmod(0o755)
    path = os.pathsep.join([str(failing), str(tmp_path / "bin"), str(Path(sys.executable).parent), os.defpath])
    done = project.run("railway", "apply", "staging", "--yes", PATH=path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "the apply went through, but its deployments are not known" in done.stderr
    assert "Unauthorized" in done.stderr and "Traceback" not in done.stderr
    [release] = project.history()
    assert release["status"] == "pending" and "deployment ids not known" in release["note"]
    assert all("deployment_id" not in svc for svc in release["services"].values())
    assert release["services"]["whatsapp"]["tenants"] == ["1", "2", "3"]


def test_rollback_past_a_pending_release_asks_railway_what_runs_now(project):
    """A plain apply's lookup can come before Railway lists the new deployment: the pending release then names
    the old ids. The rollback must not trust them, or it would leave the new deployments running."""
    assert project.run("railway", "apply", "staging", "--wait", "--yes").returncode == 0  # 2: web-d1, whatsapp-d2
    assert project.run("railway", "apply", "staging", "--yes").returncode == 0  # 3: pending, web-d3, whatsapp-d4
    store = project.out / ".releases" / "releases.json"
    data = json.loads(store.read_text())
    for name, stale in (("web", "web-d1"), ("whatsapp", "whatsapp-d2")):  # as if listed before the new ones
        data["releases"][-1]["services"][name]["deployment_id"] = stale
    store.write_text(json.dumps(data))
    rolled = project.run("rollback", "staging")
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert "back to release 2 on Railway (release 4; 2 rolled back)" in rolled.stdout
    ids = [r["body"]["variables"]["id"] for r in project.requests if "deploymentRollback" in r["body"]["query"]]
    assert ids == ["web-d1", "whatsapp-d2"]
