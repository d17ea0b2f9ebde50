"""Stage 1: loading, overlay merging and the errors a person sees for a bad spec."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploytool.errors import UserError
from deploytool.spec import load_spec


def load_error(spec: Path, env: str = "dev") -> str:
    with pytest.raises(UserError) as info:
        load_spec(spec, env)
    return str(info.value)


def test_overlay_merges_mappings_and_replaces_lists(make_project):
    spec = make_project(
        {
            "dev": """
        tenants: ["7"]
        services:
          whatsapp:
            driver: sandbox
        """
        }
    )
    loaded = load_spec(spec, "dev").spec
    assert loaded.tenant_ids() == ["7"]  # the list was replaced, not appended
    assert loaded.services["whatsapp"].driver == "sandbox"
    assert loaded.services["whatsapp"].port == 5001  # untouched sibling keys survive the merge
    assert loaded.services["web"].port == 5002


def test_overlay_null_removes_a_key(make_project):
    spec = make_project({"dev": "database: null\n"})
    assert load_spec(spec, "dev").spec.database.engine == "postgres"  # back to the default, not the base value
    spec = make_project({"dev": "database: {engine: sqlite}\n"})
    assert load_spec(spec, "dev").spec.database.engine == "sqlite"


def test_tenant_range_expands(make_project):
    spec = make_project({"dev": "tenants: {from: 1, to: 4}\n"})
    assert load_spec(spec, "dev").spec.tenant_ids() == ["1", "2", "3", "4"]


def test_unknown_key_names_file_line_and_allowed_keys(make_project):
    spec = make_project({"dev": "topology:\n  kind: shared\n  portz: {}\n"})
    message = load_error(spec)
    assert "environments/dev.yaml:3: topology.portz: unknown key 'portz'" in message
    assert "max_tenants_per_shard" in message  # says what is expected


def test_port_out_of_range_names_overlay_line(make_project):
    spec = make_project({"dev": "services:\n  whatsapp:\n    port: 70000\n"})
    message = load_error(spec)
    assert "environments/dev.yaml:3: services.whatsapp.port" in message
    assert "65535" in message and "70000" in message


def test_error_in_base_file_names_the_base_file(make_project):
    base = Path(make_project()).read_text().replace("port: 5002", "port: not-a-port")
    spec = make_project(base=base)
    message = load_error(spec)
    assert "deploytool.yaml:" in message and "services.web.port" in message
    assert "environments/" not in message


@pytest.mark.parametrize("bad", ["../x", "a/b", "", "x" * 65, "é"])
def test_invalid_tenant_ids_are_rejected(make_project, bad):
    spec = make_project({"dev": f"tenants: [{bad!r}]\n"})
    message = load_error(spec)
    assert "tenants.0" in message and "pattern" in message


def test_duplicate_tenant(make_project):
    spec = make_project({"dev": "tenants: ['1', '2', '1']\n"})
    assert "tenant '1' is listed twice" in load_error(spec)


def test_duplicate_yaml_key_is_an_error(make_project):
    spec = make_project({"dev": "stage: development\nstage: production\n"})
    assert "environments/dev.yaml:2: stage: duplicate key" in load_error(spec)


def test_yaml_syntax_error_has_line(make_project):
    spec = make_project({"dev": "services:\n  web: [\n"})
    message = load_error(spec)
    assert message.startswith("environments/dev.yaml:3: invalid YAML") or "dev.yaml:3: invalid YAML" in message


def test_unknown_environment_lists_known_ones(make_project):
    spec = make_project({"dev": "{}\n", "prod": "{}\n"})
    message = load_error(spec, "staging")
    assert "no such environment 'staging'" in message and "dev, prod" in message


def test_invalid_environment_name(make_project):
    spec = make_project()
    assert "environment name '../etc' is invalid" in load_error(spec, "../etc")


def test_top_level_must_be_mapping(make_project):
    spec = make_project({"dev": "- a\n- b\n"})
    assert "top level must be a mapping" in load_error(spec)


def test_exactly_one_service_of_each_kind(make_project):
    spec = make_project({"dev": "services:\n  web:\n    kind: whatsapp\n"})
    assert "exactly one service of kind 'flask'" in load_error(spec)


def test_missing_required_field(make_project):
    base = Path(make_project()).read_text().replace('tenants: ["1", "2", "3"]\n', "")
    spec = make_project(base=base)
    assert "tenants: required field is missing" in load_error(spec)


def test_wrong_type_says_what_it_got(make_project):
    spec = make_project({"dev": "services:\n  web:\n    env: [1, 2]\n"})
    message = load_error(spec)
    assert "services.web.env" in message and "dictionary" in message and "list" in message


# --- strict values: nothing is coerced, nothing crosses a line ----------------------------------------


@pytest.mark.parametrize(
    ("overlay", "expected"),
    [
        ('services: {web: {port: "5002"}}', "services.web.port: Input should be a valid integer (got '5002')"),
        ("services: {web: {port: 5002.0}}", "services.web.port: Input should be a valid integer (got 5002.0)"),
        ("services: {web: {replicas: true}}", "services.web.replicas: Input should be a valid integer (got True)"),
        ('services: {whatsapp: {volume: "yes"}}', "services.whatsapp.volume: Input should be a valid boolean"),
        ('tenants: ["1\\n"]', "tenants.0: String should match pattern"),
        ('database: {name: "app\\n"}', "database.name: String should match pattern"),
        ('secrets: ["FOO\\n"]', "secrets.0: String should match pattern"),
        ('services: {whatsapp: {env: {"BAR\\n": x}}}', "services.whatsapp.env: 'BAR\\n' is not an environment"),
        ('services: {whatsapp: {env: {BAR: "a\\0b"}}}', "services.whatsapp.env.BAR: an environment variable cannot"),
        ('services: {web: {start: "serve\\nevil: rm -rf /"}}', "services.web.start: must be one line"),
        ('services: {web: {local_start: "serve\\u2028x"}}', "services.web.local_start: must be one line"),
        ('railway: {environment: "staging\\nimport os\\n#"}', "railway.environment: String should match pattern"),
        ('railway: {branch: "main\\nx"}', "railway.branch: String should match pattern"),
    ],
)
def test_values_are_never_coerced_and_never_span_lines(make_project, overlay, expected):
    message = load_error(make_project({"dev": overlay + "\n"}))
    assert f"environments/dev.yaml:1: {expected}" in message


def test_errors_come_in_file_order_with_list_indexes_as_numbers(make_project):
    tenants = ", ".join(f'"t{i}"' if i not in (2, 10) else '"bad id"' for i in range(12))
    message = load_error(make_project({"dev": f"tenants: [{tenants}]\n"}))
    assert [line.split(": ")[1] for line in message.splitlines()] == ["tenants.2", "tenants.10"]


# --- `deploytool schema` (model_json_schema) agrees with the models --------------------------------


def spec_document(env: str) -> dict:
    from deploytool.spec.load import merge, read_yaml
    from tests.conftest import REPO

    base, base_origins = read_yaml(REPO / "deploytool.yaml")
    overlay, overlay_origins = read_yaml(REPO / "environments" / f"{env}.yaml")
    return merge(base, base_origins, overlay, overlay_origins)[0]


def spec_schema() -> dict:
    from deploytool.spec.model import Spec

    return Spec.model_json_schema(by_alias=True)


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_the_json_schema_accepts_the_repository_spec_and_the_model_agrees(env):
    import jsonschema

    from deploytool.spec.model import Spec

    schema = spec_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    validator.check_schema(schema)
    document = spec_document(env)
    assert list(validator.iter_errors(document)) == []
    Spec.model_validate(document)


@pytest.mark.parametrize(
    "change",
    [
        "services: {web: {helthcheck: /health}}",  # unknown key
        "services: {web: {port: 70000}}",  # out of range
        "tenants: [a b]",  # pattern
        "topology: {kind: ring}",  # not an enum value
        "services: {web: {replicas: '2'}}",  # a string where an integer goes
    ],
)
def test_the_json_schema_and_the_model_both_refuse_a_broken_spec(change):
    import jsonschema
    import yaml
    from pydantic import ValidationError

    from deploytool.spec.load import merge
    from deploytool.spec.model import Spec

    broken = merge(spec_document("dev"), {}, yaml.safe_load(change), {})[0]
    schema = spec_schema()
    assert list(jsonschema.validators.validator_for(schema)(schema).iter_errors(broken))
    with pytest.raises(ValidationError):
        Spec.model_validate(broken)
