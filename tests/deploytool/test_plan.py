"""Stage 2: port allocation, sticky shards, and the named cross-checks over the plan."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from deploytool import pipeline
from deploytool.checks import check_plan
from deploytool.plan import build_plan
from deploytool.plan.allocate import allocate_ports, assign_shards
from deploytool.plan.model import Plain, Role, SecretRef, TenantUrls
from deploytool.spec import load_spec


def plan_of(spec_path, env="dev", lock=None):
    return build_plan(load_spec(spec_path, env).spec, env, lock)


def codes(findings):
    return sorted({f.code for f in findings})


# --- per-port ----------------------------------------------------------------------------------


def test_seed_rule_collision_is_impossible():
    # The seeds computed 5001 + (user_id - 1): user 2 landed on Flask's 5002.
    ports = allocate_ports(["1", "2", "3"], base=5001, reserved={5002}, explicit={})
    assert ports == {"1": 5001, "2": 5003, "3": 5004}


def test_explicit_ports_are_kept_and_skipped_by_others():
    ports = allocate_ports(["1", "2", "3"], base=5001, reserved={5002}, explicit={"2": 5001})
    assert ports == {"1": 5003, "2": 5001, "3": 5004}


@given(
    tenants=st.lists(st.from_regex(r"[a-z0-9]{1,4}", fullmatch=True), unique=True, max_size=40),
    reserved=st.sets(st.integers(5000, 5060), max_size=10),
)
def test_allocated_ports_never_collide(tenants, reserved):
    ports = allocate_ports(tenants, base=5000, reserved=reserved, explicit={})
    assert len(set(ports.values())) == len(tenants)
    assert not set(ports.values()) & reserved


def test_per_port_plan_env_follows_the_contract(make_project):
    plan = plan_of(make_project({"dev": "topology: {kind: per-port}\n"}))
    names = [s.name for s in plan.services]
    assert names == ["web", "whatsapp-1", "whatsapp-2", "whatsapp-3"]
    wa2 = plan.service("whatsapp-2").env_dict()
    assert wa2["WA_MODE"] == Plain("single") and wa2["TENANT_ID"] == Plain("2")
    assert wa2["PORT"] == Plain("5003")
    assert wa2["WHATSAPP_API_KEY"] == SecretRef("WHATSAPP_API_KEY")
    web = plan.web.env_dict()
    assert "WHATSAPP_SERVER_URL" not in web
    assert web["WHATSAPP_TENANT_URLS"] == TenantUrls((("1", "whatsapp-1"), ("2", "whatsapp-2"), ("3", "whatsapp-3")))
    assert check_plan(plan) == []


def test_explicit_port_on_flask_is_a_collision(make_project):
    plan = plan_of(make_project({"dev": "topology: {kind: per-port, ports: {'2': 5002}}\n"}))
    findings = check_plan(plan)
    assert "PORT_COLLISION" in codes(findings)
    assert any("5002" in f.message and "web" in f.message for f in findings)


def test_explicit_port_for_unknown_tenant(make_project):
    plan = plan_of(make_project({"dev": "topology: {kind: per-port, ports: {'9': 6000}}\n"}))
    assert "UNKNOWN_TENANT_PORT" in codes(check_plan(plan))


# --- shared / routing (the seed-002 bug) ----------------------------------------------------------


def test_shared_topology_routes_every_tenant_to_one_server(make_project):
    plan = plan_of(make_project({"dev": "topology: {kind: shared}\n"}))
    assert [s.name for s in plan.by_role(Role.whatsapp)] == ["whatsapp"]
    assert plan.service("whatsapp").env_dict()["TENANTS"] == Plain("1,2,3")
    assert check_plan(plan) == []


def test_hand_written_server_url_to_missing_port_is_caught(make_project):
    # Seed 002: production had one Node server on 5001, user 3 was sent to 5003.
    spec = make_project(
        {
            "dev": """
        topology: {kind: shared}
        services:
          web:
            env: {WHATSAPP_SERVER_URL: "http://whatsapp:5003"}
        """
        }
    )
    findings = check_plan(plan_of(spec))
    assert codes(findings) == ["URL_NO_LISTENER"]
    assert any("tenant 3" in f.message and "5003" in f.message for f in findings)


def test_tenant_map_pointing_at_the_wrong_process_is_caught(make_project):
    urls = json.dumps({"1": "http://127.0.0.1:5001", "2": "http://127.0.0.1:5001", "3": "http://127.0.0.1:5004"})
    spec = make_project(
        {
            "dev": f"""
        topology: {{kind: per-port}}
        targets: [local]
        services:
          web:
            env: {{WHATSAPP_TENANT_URLS: '{urls}'}}
        """
        }
    )
    findings = check_plan(plan_of(spec))
    assert codes(findings) == ["TENANT_UNROUTED"]
    assert [f.message.split(":")[0] for f in findings] == ["tenant 2"]


def test_allow_list_override_that_drops_a_tenant_is_caught(make_project):
    spec = make_project({"dev": "topology: {kind: shared}\nservices:\n  whatsapp:\n    env: {TENANTS: '1,2'}\n"})
    findings = check_plan(plan_of(spec))
    assert codes(findings) == ["TENANT_UNROUTED"] and "tenant 3" in findings[0].message


# --- whatsapp services, secrets, targets --------------------------------------------------------


def test_replicas_and_missing_volume_outside_dev(make_project):
    # the file session store (SQLite environment): its sessions live on the volume
    overlay = "stage: production\ndatabase: {engine: sqlite}\nservices:\n  whatsapp: {replicas: 2, volume: false}\n"
    spec = make_project({"prod": overlay})
    assert codes(check_plan(plan_of(spec, "prod"))) == ["WHATSAPP_NO_VOLUME", "WHATSAPP_REPLICAS"]
    spec = make_project({"dev": "stage: development\nservices:\n  whatsapp: {volume: false}\n"})
    assert check_plan(plan_of(spec)) == []


def test_secret_as_literal_is_a_finding(make_project):
    spec = make_project(
        {"dev": "services:\n  web:\n    env: {SECRET_KEY: hunter2, STRIPE_TOKEN: abc, LOG_LEVEL: info}\n"}
    )
    findings = [f for f in check_plan(plan_of(spec)) if f.code == "SECRET_LITERAL"]
    assert sorted(f.message.split(":")[0] for f in findings) == ["web.env.SECRET_KEY", "web.env.STRIPE_TOKEN"]


def test_url_with_password_in_env_is_a_finding(make_project):
    spec = make_project({"dev": "services:\n  web:\n    env: {EXTRA_DB: 'postgresql://u:pw@db:5432/x'}\n"})
    assert "SECRET_LITERAL" in codes(check_plan(plan_of(spec)))


def test_undeclared_secret(make_project):
    spec = make_project({"dev": "secrets: [SECRET_KEY, OPS_API_KEY, WEBHOOK_SECRET]\n"})
    findings = [f for f in check_plan(plan_of(spec)) if f.code == "SECRET_UNDECLARED"]
    assert findings and all("WHATSAPP_API_KEY" in f.message for f in findings)


def test_railway_with_sqlite(make_project):
    spec = make_project({"dev": "targets: [railway]\ndatabase: {engine: sqlite}\n"})
    assert "RAILWAY_SQLITE" in codes(check_plan(plan_of(spec)))


def test_unknown_public_url_service(make_project):
    spec = make_project({"dev": "public_urls: {webz: 'https://x.example'}\n"})
    assert "UNKNOWN_SERVICE" in codes(check_plan(plan_of(spec)))


# --- sharded -------------------------------------------------------------------------------------


def test_sharded_fills_shards_in_order(make_project):
    spec = make_project({"prod": "topology: {kind: sharded, max_tenants_per_shard: 2}\ntenants: ['a','b','c']\n"})
    plan = plan_of(spec, "prod")
    assert [(s.name, s.tenants) for s in plan.by_role(Role.whatsapp)] == [
        ("whatsapp-shard-1", ("a", "b")),
        ("whatsapp-shard-2", ("c",)),
    ]
    assert plan.shard_lock == {"a": 1, "b": 1, "c": 2}


def test_lock_keeps_existing_tenants_where_they_are(make_project):
    spec = make_project(
        {"prod": "topology: {kind: sharded, max_tenants_per_shard: 2}\ntenants: ['new', 'a', 'b', 'c']\n"}
    )
    plan = plan_of(spec, "prod", lock={"a": 2, "b": 1, "c": 2})
    assert plan.shard_lock == {"a": 2, "b": 1, "c": 2, "new": 1}


def test_lock_over_capacity_is_reported_not_moved(make_project):
    spec = make_project({"prod": "topology: {kind: sharded, max_tenants_per_shard: 1}\ntenants: ['a', 'b']\n"})
    plan = plan_of(spec, "prod", lock={"a": 1, "b": 1})
    assert plan.shard_lock == {"a": 1, "b": 1}
    findings = check_plan(plan, shard_capacity=1)
    assert "SHARD_OVER_CAPACITY" in codes(findings)


@settings(max_examples=200)
@given(
    first=st.lists(st.from_regex(r"t[0-9]{1,3}", fullmatch=True), unique=True, min_size=1, max_size=30),
    extra=st.lists(st.from_regex(r"n[0-9]{1,3}", fullmatch=True), unique=True, max_size=30),
    capacity=st.integers(1, 7),
    insert_at=st.integers(0, 30),
)
def test_adding_tenants_never_moves_an_existing_one(first, extra, capacity, insert_at):
    before = assign_shards(first, {}, capacity, 1)
    grown = first[:insert_at] + extra + first[insert_at:]  # new tenants anywhere in the list
    after = assign_shards(grown, before, capacity, 1)
    assert all(after[t] == before[t] for t in first)
    load = {}
    for shard in after.values():
        load[shard] = load.get(shard, 0) + 1
    assert max(load.values()) <= capacity


def test_render_extends_the_committed_lock(make_project):
    spec = make_project(
        {"prod": "topology: {kind: sharded, max_tenants_per_shard: 2}\ntenants: ['1','2','3']\ntargets: [compose]\n"}
    )
    pipeline.write(pipeline.render_environment(spec, "prod"))
    lock_file = spec.parent / "environments" / "prod.lock.json"
    assert json.loads(lock_file.read_text())["assignments"] == {"1": 1, "2": 1, "3": 2}
    # Tenant 2 leaves and tenant 4 arrives: 1 and 3 stay, 4 takes the free place on shard 1.
    (spec.parent / "environments" / "prod.yaml").write_text(
        "topology: {kind: sharded, max_tenants_per_shard: 2}\ntenants: ['4','1','3']\ntargets: [compose]\n"
    )
    rendered = pipeline.render_environment(spec, "prod")
    assert rendered.plan.shard_lock == {"1": 1, "3": 2, "4": 1}
