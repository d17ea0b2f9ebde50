"""The plan chooses node_service's session store: PostgreSQL where the environment's database is PostgreSQL
(DATABASE_URL spelled per target, its own schema, a name per shard, no volume), files for SQLite."""

from __future__ import annotations

import yaml

from deploytool import pipeline
from deploytool.checks import check_plan
from deploytool.plan.model import DatabaseUrl, Plain, Role, SessionStore
from deploytool.render.envfile import parse_env
from deploytool.targets.railway import RAILWAY_FILE, evaluate_like_cli

SHARDED = "stage: production\ntenants: ['1', '2', '3', '4']\ntopology: {kind: sharded, max_tenants_per_shard: 2}\n"
RAILWAY = "targets: [local, compose, railway]\nrailway: {repo: o/r}\n"


def rendered(spec, env):
    return pipeline.render_environment(spec, env)


def artifact(result, name):
    return next(a.content for a in result.artifacts if a.path.endswith(name))


def test_postgres_environment_gives_every_shard_the_database_store(make_project):
    spec = make_project({"prod": SHARDED + RAILWAY})
    result = rendered(spec, "prod")
    shards = result.plan.by_role(Role.whatsapp)
    assert [s.name for s in shards] == ["whatsapp-shard-1", "whatsapp-shard-2"]
    for svc in shards:
        env = svc.env_dict()
        assert env["DATABASE_URL"] == DatabaseUrl()  # the same symbolic value web gets
        assert env["SESSION_STORE"] == SessionStore()
        assert env["SESSION_DB_SCHEMA"] == Plain("whatsapp")  # apart from flask's tables
        assert env["WA_SERVICE_NAME"] == Plain(svc.name)  # distinct per shard sharing the database
        assert svc.volume is None and svc.session_store == "postgres"
    assert result.plan.web.env_dict()["DATABASE_URL"] == DatabaseUrl()
    assert "WHATSAPP_NO_VOLUME" not in {f.code for f in check_plan(result.plan)}  # no volume needed

    compose = yaml.safe_load(artifact(result, "docker-compose.yml"))
    for svc in shards:
        entry = compose["services"][svc.name]
        assert entry["environment"]["DATABASE_URL"] == compose["services"]["web"]["environment"]["DATABASE_URL"]
        assert entry["environment"]["DATABASE_URL"].startswith("postgresql://app:${POSTGRES_PASSWORD")
        assert entry["environment"]["SESSION_STORE"] == "postgres"
        assert entry["environment"]["WA_SERVICE_NAME"] == svc.name
        assert entry["depends_on"] == {"postgres": {"condition": "service_healthy"}}
        assert "volumes" not in entry

    manifest = result.manifest
    for svc in shards:
        entry = manifest.service(svc.name)
        assert entry is not None and entry.passthrough == ["DATABASE_URL"]  # the runner's DATABASE_URL
        # locally SESSION_STORE stays unset: node picks postgres exactly when the runner passes a DATABASE_URL
        assert entry.env_file is not None
        env = parse_env(artifact(result, entry.env_file))
        assert "SESSION_STORE" not in env
        assert env["WA_SERVICE_NAME"] == svc.name and env["SESSION_DB_SCHEMA"] == "whatsapp"


def test_railway_drops_the_whatsapp_volume_with_the_postgres_store(make_project):
    spec = make_project({"prod": SHARDED + RAILWAY})
    result = rendered(spec, "prod")
    graph = evaluate_like_cli(artifact(result, RAILWAY_FILE))  # as the Railway CLI evaluates it
    resources = {r["address"]: r for r in graph["resources"]}
    assert not [a for a in resources if a.startswith("volume.")]
    for name in ("whatsapp-shard-1", "whatsapp-shard-2"):
        node = resources[f"service.{name}"]
        assert "requiredMountPath" not in node["deploy"] and not node.get("volumeAttachments")
        variables = node["variables"]
        assert variables["DATABASE_URL"] == {
            "type": "reference",
            "resource": "database.Postgres",
            "output": "DATABASE_URL",
        }
        assert variables["SESSION_STORE"] == {"type": "literal", "value": "postgres"}
        assert variables["WA_SERVICE_NAME"] == {"type": "literal", "value": name}
    assert not [f for f in pipeline.findings_of(result, deep=False) if f.severity == "error"]


def test_sqlite_environment_keeps_the_file_store_and_its_volume(make_project):
    spec = make_project({"prod": SHARDED + "database: {engine: sqlite}\n"})
    result = rendered(spec, "prod")
    for svc in result.plan.by_role(Role.whatsapp):
        env = svc.env_dict()
        assert env["SESSION_STORE"] == Plain("files")
        assert "DATABASE_URL" not in env and "WA_SERVICE_NAME" not in env
        assert svc.volume == f"{svc.name}-data" and svc.session_store == "files"
    compose = yaml.safe_load(artifact(result, "docker-compose.yml"))
    assert compose["services"]["whatsapp-shard-1"]["volumes"] == ["whatsapp-shard-1-data:/data"]
    assert compose["services"]["whatsapp-shard-1"]["environment"]["SESSION_STORE"] == "files"
    assert "depends_on" not in compose["services"]["whatsapp-shard-1"]


def test_file_store_without_a_volume_is_still_refused_outside_development(make_project):
    no_volume = "services:\n  whatsapp: {volume: false}\n"
    sqlite = make_project({"prod": SHARDED + "database: {engine: sqlite}\n" + no_volume})
    assert "WHATSAPP_NO_VOLUME" in {f.code for f in check_plan(rendered(sqlite, "prod").plan)}


def test_spec_env_can_keep_the_file_store_and_then_keeps_the_volume(make_project):
    spec = make_project({"prod": SHARDED + "services:\n  whatsapp: {env: {SESSION_STORE: files}}\n"})
    result = rendered(spec, "prod")
    for svc in result.plan.by_role(Role.whatsapp):
        assert svc.session_store == "files" and svc.volume == f"{svc.name}-data"
