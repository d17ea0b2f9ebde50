"""The fast YAML writer is byte-identical to PyYAML's safe_dump on every kind of value it meets."""

from __future__ import annotations

import random
import string

import pytest
import yaml

from deploytool import pipeline
from deploytool.render import yamltext
from deploytool.render.yamltext import dump_yaml, pyyaml_dump
from tests.deploytool.test_render import REPO

TRICKY = [
    "",
    " ",
    "a b",
    " lead",
    "trail ",
    "a  b",
    "yes",
    "no",
    "on",
    "off",
    "true",
    "True",
    "null",
    "~",
    "Null",
    "1",
    "01",
    "0x1F",
    "1.5",
    "1e3",
    ".5",
    ".inf",
    "-.inf",
    ".nan",
    "1_000",
    "1:30",
    "190:20:30",
    "2001-12-14",
    "2001-12-14t21:59:43.10-05:00",
    "-",
    "-a",
    "- a",
    "--x",
    "---",
    "...",
    "...x",
    "x...",
    "?",
    "?x",
    "? x",
    ":",
    ":x",
    "x:",
    "x: y",
    "x:y",
    "#x",
    "x #y",
    "x#y",
    "a,b",
    "[a]",
    "{a}",
    "a[b]",
    "a{b}",
    "&a",
    "*a",
    "!a",
    "|a",
    ">a",
    "'a'",
    '"a"',
    "%a",
    "@a",
    "`a",
    "a'b",
    'a"b',
    "$",
    "${X:?X is not set}",
    "$$PORT",
    "a=b",
    "=",
    "<<",
    "a\\b",
    "tab\there",
    "new\nline",
    "é",
    "127.0.0.1:5002:5002",
    "8080:80",
    "5s",
    "0o17",
    "+1",
    "-1",
    "1.0.0",
    "x" * 130,
    ("word " * 30).strip(),
    "a " + "b" * 125,
    "b" * 118 + " c",
    "b" * 119 + " c",
    ("a  b " * 40).strip(),
    "it's " + "word " * 40,
    ("x " * 70) + "'",
    " " + "y " * 70,
    ("y " * 70) + " ",
    "z" * 100 + "  " + "z" * 30 + " q",
    "q " * 200,
    'python -m app migrate && exec gunicorn --bind "[::]:$$PORT" --worker-class gthread --workers 2 --threads 8 app:x',
]


def test_tricky_strings_are_spelled_like_pyyaml():
    for text in TRICKY:
        for document in (
            {"k": text},
            {"k": [text]},
            {text[:100]: "v"} if text else {"e": text},
            {"a": {"b": {"c": text, "list": [text, text + " tail"]}}},
            {"long-key-" * 5: text},
        ):
            assert dump_yaml(document) == pyyaml_dump(document), repr(text)


def test_random_documents_match_pyyaml():
    rng = random.Random(13)
    alphabet = string.ascii_letters + string.digits + " _-.:/$#{}[],'\"!&*?|>%@=+~"

    def text() -> str:
        size = rng.randint(0, 24) if rng.random() < 0.8 else rng.randint(100, 300)  # long ones fold at 120
        return "".join(rng.choice(alphabet) for _ in range(size))

    def value(depth: int):
        kind = rng.randint(0, 6 if depth < 3 else 3)
        if kind == 0:
            return rng.choice([0, 7, -3, 5002, True, False, None])
        if kind <= 3:
            return text()
        if kind == 4:
            return [rng.choice([text(), rng.randint(0, 99)]) for _ in range(rng.randint(0, 3))]
        return {key(): value(depth + 1) for _ in range(rng.randint(0, 4))}

    def key() -> str:  # keys with a space go to PyYAML whole; most keys here take the fast path
        return text().replace(" ", "_")[:60] or "k"

    for _ in range(500):
        document = {key(): value(0) for _ in range(rng.randint(1, 5))}
        assert dump_yaml(document) == pyyaml_dump(document), document


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_rendered_compose_files_take_the_fast_path(env, monkeypatch):
    def refuse(document):
        raise AssertionError("fell back to PyYAML")

    monkeypatch.setattr(yamltext, "pyyaml_dump", refuse)
    rendered = pipeline.render_environment(REPO / "deploytool.yaml", env)
    compose = next(a for a in rendered.artifacts if a.path.endswith("docker-compose.yml"))
    assert compose.content.split("\n", 2)[2] == pyyaml_dump(compose.document)
    assert yaml.safe_load(compose.content) == compose.document
