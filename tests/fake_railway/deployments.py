"""Deployments of the stand-in Railway (tests/fake_railway/railway) and of the loopback GraphQL endpoint the
tests start, kept in one JSON file (FAKE_RAILWAY_STATE) both read and write. Written from railwayapp/cli
(df3838b) and railwayapp/docs (c2a634f) facts, none of their code:

- src/commands/deployment.rs: `deployment list --json` prints `[{id, status, createdAt, meta}]`, newest first.
- src/gql/schema.json: DeploymentStatus values; `deploymentRollback(id: String!): Boolean!` ("Rolls back to a
  deployment"); `deployment(id)` has `canRollback`.
- docs content/docs/integrations/api.md: a project token comes as `Project-Access-Token`, an account or
  workspace token as `Authorization: Bearer`.

How time passes here (no clock): a deployment carries a script of statuses; each `deployment list` of its
service shows the current one and then moves every deployment of that service one step on. A deployment
that reaches SUCCESS removes the service's earlier live one (Railway keeps one live deployment a service).
Assumed: a rollback makes a new deployment of the same service (meta.rollbackOf), as the dashboard's does.
"""

from __future__ import annotations

import fcntl
import json
import os
from contextlib import contextmanager
from pathlib import Path

DEFAULT_SCRIPT = ["QUEUED", "BUILDING", "DEPLOYING", "SUCCESS"]
ROLLBACK_SCRIPT = ["QUEUED", "DEPLOYING", "SUCCESS"]


@contextmanager
def state(path: str | os.PathLike[str] | None = None):
    """The state, locked and written back when the block ends."""
    where = Path(path or os.environ["FAKE_RAILWAY_STATE"])
    where.touch(exist_ok=True)
    with open(where, "r+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        text = handle.read()
        data = json.loads(text) if text.strip() else {}
        data.setdefault("deployments", {})
        data.setdefault("counter", 0)
        data.setdefault("logs", {})
        data.setdefault("scripts", {})
        yield data
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(data, indent=2, sort_keys=True))


def seed(path, services, logs=None, scripts=None):
    """Each service with one live deployment (`<service>-d0`), created at t0."""
    with state(path) as data:
        for service in services:
            data["deployments"][service] = [
                {
                    "id": f"{service}-d0",
                    "status": "SUCCESS",
                    "createdAt": "2026-12-01T00:00:00Z",
                    "script": [],
                    "meta": {},
                }
            ]
        data["logs"].update(logs or {})
        data["scripts"].update(scripts or {})


def new_deployment(data, service, script, meta):
    data["counter"] += 1
    number = data["counter"]
    deployment = {
        "id": f"{service}-d{number}",
        "status": script[0],
        "createdAt": f"2026-12-02T00:{number // 60:02d}:{number % 60:02d}Z",
        "script": list(script[1:]),
        "meta": meta,
    }
    data["deployments"].setdefault(service, []).insert(0, deployment)
    return deployment


def deploy(data, service):
    """What `config apply` starts for a service it changed; its script from `scripts` (or the default)."""
    return new_deployment(data, service, data["scripts"].get(service) or DEFAULT_SCRIPT, {"reason": "deploy"})


def listed(data, service, limit):
    """`deployment list`: what is now, then one step on."""
    deployments = data["deployments"].get(service, [])
    shown = [{k: d[k] for k in ("id", "status", "createdAt", "meta")} for d in deployments[:limit]]
    for d in deployments:
        if d["script"]:
            d["status"] = d["script"].pop(0)
            if d["status"] == "SUCCESS":
                for other in deployments:
                    if other is not d and other["status"] == "SUCCESS":
                        other["status"] = "REMOVED"
    return shown


def find(data, deployment_id):
    for service, deployments in data["deployments"].items():
        for d in deployments:
            if d["id"] == deployment_id:
                return service, d
    return None, None


def graphql(data, body, headers, token):
    """One GraphQL request of the two deploytool sends: (HTTP status, response document)."""
    if headers.get("project-access-token") != token and headers.get("authorization") != f"Bearer {token}":
        return 401, {"errors": [{"message": "Not Authorized"}]}
    query = body.get("query", "")
    variables = body.get("variables") or {}
    service, found = find(data, variables.get("id"))
    if "deploymentRollback(" in query:
        if found is None:
            return 200, {"errors": [{"message": "Deployment not found"}], "data": None}
        data.setdefault("rollbacks", []).append(found["id"])
        new_deployment(
            data,
            service,
            data["scripts"].get(f"rollback:{service}") or ROLLBACK_SCRIPT,
            {"reason": "rollback", "rollbackOf": found["id"]},
        )
        return 200, {"data": {"deploymentRollback": True}}
    if "deployment(" in query:
        if found is None:
            return 200, {"errors": [{"message": "Deployment not found"}], "data": None}
        return 200, {
            "data": {
                "deployment": {
                    "id": found["id"],
                    "status": found["status"],
                    "canRollback": found["status"] in ("SUCCESS", "REMOVED"),
                }
            }
        }
    return 400, {"errors": [{"message": "unknown operation"}]}
