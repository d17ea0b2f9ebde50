"""deploytool.typed: the records the spec, the manifest and the shard lock are read into."""

from __future__ import annotations

import json
from typing import Annotated, Literal

import jsonschema
import pytest
import yaml

from deploytool.spec.load import merge, read_yaml
from deploytool.spec.model import Spec
from deploytool.typed import Invalid, Record, Rule, dump, field, json_schema, parse, record, replace
from tests.conftest import REPO


@record
class Inner(Record):
    """An inner record."""

    first: int = field(key="from", ge=0)
    name: Annotated[str, Rule(pattern=r"^[a-z]+$")] = "x"

    def _check(self) -> None:
        if self.first == 13:
            raise ValueError("13 is unlucky")


@record
class Outer(Record):
    port: int | None = field(default=None, ge=1, le=65535)
    flag: bool = False
    mode: Literal["a", "b"] = "a"
    items: list[Inner] | Inner = field(factory=list)
    named: dict[Annotated[str, Rule(pattern=r"^[a-z]+$")], Inner] = field(factory=dict)


def problems(data: object) -> list[tuple[str, str, str]]:
    with pytest.raises(Invalid) as caught:
        parse(Outer, data)
    return [(".".join(map(str, p.path)), p.kind, p.message) for p in caught.value.problems]


def test_every_problem_of_a_document_is_reported_with_its_path():
    found = problems({"port": 0, "flag": 1, "mode": "c", "nope": 1, "named": {"ok": {"from": -1}, "BAD": {}}})
    assert ("port", "value", "must be >= 1") in found
    assert ("flag", "type", "expected boolean, got integer") in found  # 1 is no boolean
    assert ("mode", "value", "expected one of 'a', 'b'") in found
    assert ("nope", "unknown", "unknown key 'nope'") in found
    assert ("named.ok.from", "value", "must be >= 0") in found
    assert ("named.BAD.from", "missing", "required field is missing") in found
    assert any(path == "named.BAD" and kind == "key" and "pattern" in message for path, kind, message in found)
    assert len(found) == 7


def test_types_are_exact_not_coerced():
    assert ("port", "type", "expected integer or null, got string") in problems({"port": "5002"})
    assert ("port", "type", "expected integer or null, got boolean") in problems({"port": True})
    assert parse(Outer, {"port": None}).port is None  # null skips the rules of `int | None`


def test_a_union_is_read_by_the_shape_of_the_value():
    assert parse(Outer, {"items": {"from": 2}}).items == Inner(first=2)
    assert parse(Outer, {"items": [{"from": 2}]}).items == [Inner(first=2)]
    # only the branch the value's shape picks is reported, with its own path
    assert problems({"items": [{"from": "x"}]}) == [("items.0.from", "type", "expected integer, got string")]
    assert problems({"items": "x"}) == [("items", "type", "expected list or mapping, got string")]


def test_a_check_across_fields_runs_once_the_fields_are_valid():
    assert problems({"items": {"from": 13}}) == [("items", "value", "13 is unlucky")]


def test_dump_writes_keys_in_declaration_order_and_reads_back():
    value = parse(Outer, {"named": {"a": {"from": 1, "name": "y"}}, "port": 80})
    data = dump(value)
    assert list(data) == ["port", "flag", "mode", "items", "named"]
    assert data["named"] == {"a": {"from": 1, "name": "y"}}
    assert parse(Outer, json.loads(json.dumps(data))) == value


def spec_document(env: str) -> dict:
    base, base_origins = read_yaml(REPO / "deploytool.yaml")
    overlay, overlay_origins = read_yaml(REPO / "environments" / f"{env}.yaml")
    return merge(base, base_origins, overlay, overlay_origins)[0]


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_the_json_schema_accepts_the_repository_spec_and_parse_agrees(env):
    schema = json_schema(Spec)
    validator = jsonschema.validators.validator_for(schema)(schema)
    validator.check_schema(schema)
    document = spec_document(env)
    assert list(validator.iter_errors(document)) == []
    parse(Spec, document)


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
def test_the_json_schema_and_parse_both_refuse_a_broken_spec(change):
    document = spec_document("dev")
    overlay = yaml.safe_load(change)
    broken = merge(document, {}, overlay, {})[0]
    schema = json_schema(Spec)
    assert list(jsonschema.validators.validator_for(schema)(schema).iter_errors(broken))
    with pytest.raises(Invalid):
        parse(Spec, broken)


@record(kw_only=False)
class Point(Record):
    x: int
    y: int = 0
    tags: list[str] = field(factory=list)
    note: str = field(default="", compare=False)


def test_a_record_is_frozen_equal_by_value_and_hashable():
    p = Point(1, 2)
    assert p == Point(x=1, y=2) and p != Point(1, 3)
    assert p == Point(1, 2, note="ignored")  # compare=False: carried along, not part of the value
    with pytest.raises(AttributeError):
        p.x = 5  # type: ignore[misc]
    assert Point(1).tags == [] and Point(1).tags is not Point(1).tags  # a fresh default per instance
    assert repr(p) == "Point(x=1, y=2, tags=[])"
    assert hash(Inner(first=1)) == hash(Inner(first=1))
    assert replace(p, y=9) == Point(1, 9)


def test_keyword_only_records_refuse_positional_arguments_and_missing_fields():
    with pytest.raises(TypeError):
        Inner(1)  # type: ignore[misc]
    with pytest.raises(TypeError):
        Inner()  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="without a default follows"):

        @record(kw_only=False)
        class Bad(Record):
            a: int = 0
            b: int
