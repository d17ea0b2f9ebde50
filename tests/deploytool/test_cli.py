"""The CLI surface: exit codes 0/1/2, messages without tracebacks, schema, show redaction."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deploytool.cli import main
from deploytool.errors import UserError
from deploytool.spec import load_spec
from tests.conftest import BASE_SPEC, REPO


def run(args, capsys):
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_validate_ok_on_the_repo_spec(capsys):
    for env in ("dev", "staging", "prod"):
        code, out, _ = run(["--spec", str(REPO / "deploytool.yaml"), "validate", env], capsys)
        assert code == 0 and f"{env}: ok" in out


def test_validate_findings_exit_1(make_project, capsys):
    spec = make_project({"dev": "services:\n  web:\n    env: {WHATSAPP_SERVER_URL: 'http://whatsapp:5003'}\n"})
    code, out, err = run(["--spec", str(spec), "validate", "dev"], capsys)
    assert code == 1
    assert "error[URL_NO_LISTENER]: tenant 1" in out and "1 check(s)" not in out
    assert "Traceback" not in out + err


def test_bad_spec_exit_2_without_traceback(make_project):
    spec = make_project({"dev": "services:\n  whatsapp:\n    port: 99999\n"})
    result = subprocess.run(
        [sys.executable, "-m", "deploytool", "--spec", str(spec), "validate", "dev"],
        capture_output=True,
        text=True,
        cwd=spec.parent,
        check=False,
    )
    assert result.returncode == 2
    assert "environments/dev.yaml:3: services.whatsapp.port" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_missing_spec_file_exit_2(tmp_path, capsys):
    code, _, err = run(["--spec", str(tmp_path / "nope.yaml"), "validate", "dev"], capsys)
    assert code == 2 and "spec file not found" in err


def test_bad_arguments_exit_2(capsys):
    code, _, err = run(["render"], capsys)
    assert code == 2 and "Missing argument" in err
    code, _, err = run(["--spec", str(REPO / "deploytool.yaml"), "probe", "dev", "--format", "xml"], capsys)
    assert code == 2 and "--format" in err
    code, _, err = run(["--spec", str(REPO / "deploytool.yaml"), "probe", "dev", "--url", "nourl"], capsys)
    assert code == 2 and "SERVICE=URL" in err


def test_schema_is_json_schema_of_the_spec(capsys):
    code, out, _ = run(["schema"], capsys)
    schema = json.loads(out)
    assert code == 0
    assert set(schema["required"]) == {"project", "services", "tenants"}
    assert schema["additionalProperties"] is False
    assert "max_tenants_per_shard" in json.dumps(schema)


def test_show_redacts_secrets(make_project, capsys):
    password = "pa55word"
    spec = make_project(
        {"dev": f"services:\n  web:\n    env: {{SECRET_KEY: hunter2, EXTRA_URL: 'postgresql://u:{password}@db/x'}}\n"}
    )
    code, out, _ = run(["--spec", str(spec), "show", "dev"], capsys)
    assert code == 0
    assert "hunter2" not in out and password not in out
    assert "postgresql://u:***@db/x" in out
    assert "<secret WHATSAPP_API_KEY>" in out


def test_up_needs_the_matching_target(capsys):
    code, _, err = run(["--spec", str(REPO / "deploytool.yaml"), "up", "staging"], capsys)
    assert code == 2 and "needs the 'local' target" in err


def test_up_rejects_unknown_runner(capsys):
    code, _, err = run(["--spec", str(REPO / "deploytool.yaml"), "up", "dev", "--runner", "k8s"], capsys)
    assert code == 2 and "--runner" in err


# --- random and mutated specs never raise anything but the user error ---------------------------

scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 70000), st.text(max_size=8), st.floats(allow_nan=False))
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=8,
)
KEYS = [
    "project",
    "services",
    "web",
    "whatsapp",
    "kind",
    "port",
    "tenants",
    "topology",
    "ports",
    "database",
    "env",
    "secrets",
    "targets",
    "public_urls",
    "railway",
    "stage",
    "replicas",
    "volume",
    "from",
    "to",
    "shards",
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(overlay=st.dictionaries(st.sampled_from(KEYS), values, max_size=4), raw=st.text(max_size=40))
def test_random_overlays_only_raise_user_errors(make_project, overlay, raw):
    import yaml

    from deploytool import pipeline

    for text in (yaml.safe_dump(overlay), raw):
        spec = make_project({"dev": text})
        try:
            load_spec(spec, "dev")
            rendered = pipeline.render_environment(spec, "dev")
            pipeline.findings_of(rendered, consumers=False)
        except UserError:
            pass


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_base_spec_only_raises_user_errors(make_project, data):
    import yaml

    from deploytool import pipeline

    document = yaml.safe_load(BASE_SPEC)
    # Replace one value somewhere in the valid spec with a random one.
    path = data.draw(
        st.sampled_from(
            [
                ("project",),
                ("tenants",),
                ("services", "web", "port"),
                ("services", "whatsapp"),
                ("database", "engine"),
                ("targets",),
                ("services", "web", "env"),
            ]
        )
    )
    target = document
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = data.draw(values)
    spec = make_project(base=yaml.safe_dump(document))
    with contextlib.suppress(UserError):
        pipeline.findings_of(pipeline.render_environment(spec, "dev"), consumers=False)


def test_fuzzers_can_see_a_crash(make_project, monkeypatch):
    # If the loader raised a raw exception the fuzz tests above would fail: prove it by injecting one.
    from deploytool.spec import load as loader

    def boom(*_args, **_kwargs):
        raise KeyError("x")

    monkeypatch.setattr(loader, "merge", boom)
    spec = make_project()
    with pytest.raises(KeyError):
        load_spec(spec, "dev")
