"""Templates: generated Python takes values only as literals (fuzzed), templates can be overridden and edited.

The Railway file is executed by Railway's CLI and by `deploytool validate`, so a spec value that escaped a
string literal or a comment would be code run on the user's machine (the staging reproduction below).
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deploytool import pipeline
from deploytool.cli import main
from deploytool.plan.model import Plain, ServiceUrl
from deploytool.render import templating
from deploytool.spec.model import Target
from deploytool.targets import plugin
from deploytool.targets.railway import RAILWAY_FILE, evaluate_like_cli
from tests.conftest import REPO

TEMPLATES_ENV = "DEPLOYTOOL_TEMPLATES"  # the documented override (render/templating.py)
INJECTION = "staging\nimport os; os.system('id')\n#"  # the value, verbatim

RAILWAY_OVERLAY = """
targets: [compose, railway]
railway: {repo: acme/chat}
"""

# Every kind of resource the Railway file can declare: a worker, an image, a built generic service with its
# own volume and env, the Redis add-on, WhatsApp shards with volumes.
FULL = """
topology: {kind: sharded, max_tenants_per_shard: 2}
services:
  worker:
    kind: worker
    source: flask_service
    start: python -m flask_service worker
  search:
    kind: generic
    image: getmeili/meilisearch:v1.7
    port: 7700
    volume: true
    volume_path: /meili_data
    env: {MEILI_ENV: development}
  thumbs:
    kind: generic
    source: flask_service
    start: python -m thumbs
    port: 7800
    health_path: /healthz
    env: {THUMBS_MODE: fast}
addons: [redis]
targets: [compose, railway]
railway: {repo: acme/chat, branch: main, environment: production}
"""


def railway_source(rendered: pipeline.Rendered) -> str:
    return next(a.content for a in rendered.artifacts if a.path.endswith(RAILWAY_FILE))


def layout_names(source: str) -> list[Any]:
    """The Railway environment names the generated file's `LAYOUTS = {<literal>: <function>}` maps."""
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and [t.id for t in node.targets if isinstance(t, ast.Name)] == ["LAYOUTS"]:
            assert isinstance(node.value, ast.Dict)
            return [ast.literal_eval(key) for key in node.value.keys if key is not None]
    raise AssertionError("no LAYOUTS in the file")


def constant(source: str, name: str) -> Any:
    """The value a top-level `NAME = <literal>` of the generated file assigns."""
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and [t.id for t in node.targets if isinstance(t, ast.Name)] == [name]:
            return ast.literal_eval(node.value)
    raise AssertionError(f"no {name} in the file")


# --- the issue: a Railway environment name that closes a comment and runs code -----------------------------


@pytest.mark.parametrize(
    "environment",
    [
        INJECTION,
        'staging"""\nimport pathlib; pathlib.Path("{marker}").touch()\n#',
        "s\r__import__('pathlib').Path('{marker}').touch()",
    ],
)
def test_a_railway_environment_name_is_never_code(make_project, tmp_path, environment):
    marker = tmp_path / "executed"
    environment = environment.replace("{marker}", str(marker))
    overlay = f"targets: [compose, railway]\nrailway: {{repo: acme/chat, environment: {json.dumps(environment)}}}\n"
    spec = make_project({"staging": overlay})
    env = {k: v for k, v in os.environ.items() if k != TEMPLATES_ENV} | {"PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-m", "deploytool", "--spec", str(spec), "validate", "staging"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = result.stdout + result.stderr
    assert "uid=" not in output and not marker.exists(), output  # os.system('id') / the marker never ran
    assert result.returncode in (0, 1, 2) and "Traceback" not in output, output
    if result.returncode != 2:  # the spec accepted the name: the file carries it only as a literal
        source = railway_source(pipeline.render_environment(spec, "staging"))
        assert layout_names(source) == [environment]
        assert [n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Import)] == []


# --- the structural guarantee -------------------------------------------------------------------------------


def copy_templates(tmp_path: Path) -> Path:
    folder = tmp_path / "templates"
    shutil.copytree(REPO / "templates", folder)
    return folder


def test_a_python_template_cannot_write_a_raw_value(make_project, tmp_path, monkeypatch):
    """`{{ value }}` without `literal`/`identifier` in a Python template fails the render, whatever the value."""
    spec = make_project({"staging": RAILWAY_OVERLAY})
    folder = copy_templates(tmp_path)
    template = folder / "railway.py.j2"
    text = template.read_text()
    assert "{{ env.project|literal }}" in text
    template.write_text(text.replace("{{ env.project|literal }}", "{{ env.project }}", 1))
    monkeypatch.setenv(TEMPLATES_ENV, str(folder))
    with pytest.raises(TypeError, match="without the `literal` or `identifier` filter"):
        pipeline.render_environment(spec, "staging")
    # a filter whose output is text (not a PySource) is refused the same way
    template.write_text(text.replace("{{ env.project|literal }}", "{{ env.project|literal|upper }}", 1))
    templating.environment.cache_clear()  # the same folder: drop the compiled template it holds
    with pytest.raises(TypeError, match="without the `literal` or `identifier` filter"):
        pipeline.render_environment(spec, "staging")
    templating.environment.cache_clear()


def test_only_the_templating_module_makes_python_source():
    """PySource is the proof a text is a checked literal or name: nothing else in deploytool may mint one."""
    makers = [
        str(path.relative_to(REPO))
        for path in (REPO / "deploytool").rglob("*.py")
        if re.search(r"\bPySource\(", path.read_text()) and path.name != "templating.py"
    ]
    assert makers == []


@pytest.mark.parametrize(
    "value", ["a\nb", "a\rb", "\u2028", "\u2029", "\x85", '"""', "\\", "'", "#", "\ud800", "\x00", "\U0001f600"]
)
def test_a_string_literal_is_one_ascii_line_that_reads_back(value):
    source = templating.literal({"k": [value, (value,)]})
    assert source.isascii() and len(f"-{source}-".splitlines()) == 1
    assert ast.literal_eval(source) == {"k": [value, (value,)]}


def test_service_names_never_shadow_the_files_own_names(make_project):
    """A service called `service` made main() raise UnboundLocalError; `db` rewired DATABASE_URL to it."""
    extra = """
services:
  service: {kind: generic, image: "nginx:1", port: 8080, volume: true}
  db: {kind: generic, image: "nginx:1", port: 8081}
  db-volume: {kind: generic, image: "nginx:1", port: 8082}
"""
    spec = make_project({"staging": RAILWAY_OVERLAY + extra})
    rendered = pipeline.render_environment(spec, "staging")
    graph = evaluate_like_cli(railway_source(rendered))
    resources = {r["address"]: r for r in graph["resources"]}
    assert {"service.service", "service.db", "service.db-volume"} <= set(resources)
    web_db = resources["service.web"]["variables"]["DATABASE_URL"]
    assert web_db.get("type") == "reference" and web_db.get("resource") == "database.Postgres"
    assert [f for f in pipeline.findings_of(rendered) if f.code.startswith("RAILWAY_")] == []


def test_a_procfile_line_cannot_hold_two_processes(make_project, capsys):
    # the spec refuses a multi-line command where it is written...
    spec = make_project({"dev": 'services:\n  web:\n    local_start: "serve\\nevil: rm -rf ~"\n'})
    assert main(["--spec", str(spec), "validate", "dev"]) == 2
    assert "services.web.local_start: must be one line" in capsys.readouterr().err
    # ...and the local target refuses one that reaches it some other way (a plan built in code)
    plan = pipeline.render_environment(make_project(), "dev").plan
    web = plan.service("web")
    forged = dataclasses.replace(web, spec=web.spec.model_copy(update={"local_start": "serve\nevil: rm -rf ~"}))
    plan = dataclasses.replace(plan, services=tuple(forged if s is web else s for s in plan.services))
    assert "PROCFILE_LINE_BREAK" in [f.code for f in plugin(Target.local).plan_findings(plan)]


# --- templates are files: an edited copy changes the output --------------------------------------------------


def test_an_edited_template_changes_the_output(make_project, tmp_path, monkeypatch):
    spec = make_project({"staging": "targets: [local, railway]\nrailway: {repo: acme/chat}\n"})
    folder = copy_templates(tmp_path)
    for name, old, new in (
        ("Procfile.j2", "or .secrets.env.\n", "or .secrets.env. Edited by hand.\n"),
        ("railway.py.j2", "set once in Railway.\n", "set once in Railway (edited).\n"),
        ("env.example.j2", "names only, never values", "NAMES ONLY"),
    ):
        path = folder / name
        assert old in path.read_text(), name
        path.write_text(path.read_text().replace(old, new, 1))
    before = {a.path: a.content for a in pipeline.render_environment(spec, "staging").artifacts}
    monkeypatch.setenv(TEMPLATES_ENV, str(folder))
    after = {a.path: a.content for a in pipeline.render_environment(spec, "staging").artifacts}
    changed = {path for path in before if before[path] != after[path]}
    assert {p.rsplit("/", 1)[-1] for p in changed} >= {"Procfile", "railway.py", ".env.example"}
    assert "Edited by hand." in next(v for k, v in after.items() if k.endswith("Procfile"))
    assert "NAMES ONLY" in next(v for k, v in after.items() if k.endswith(".env.example"))
    monkeypatch.setenv(TEMPLATES_ENV, str(tmp_path / "missing"))
    assert main(["--spec", str(spec), "render", "staging", "--check"]) == 2


# --- compiled templates: Jinja's bytecode cache, never stale, never another program's ------------------------


@pytest.fixture
def template_cache(tmp_path, monkeypatch):
    """Jinja's default cache folder moved under this test's own temp folder; fresh Environments."""
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    templating.environment.cache_clear()
    yield temp / f"_jinja2-cache-{os.getuid()}"
    templating.environment.cache_clear()


def test_compiled_templates_are_reused_and_an_edit_is_compiled_anew(
    make_project, tmp_path, template_cache, monkeypatch
):
    spec = make_project({"staging": RAILWAY_OVERLAY})
    first = railway_source(pipeline.render_environment(spec, "staging"))
    entries = {path: path.stat().st_mtime_ns for path in template_cache.glob("deploytool-*.cache")}
    assert len(entries) >= 2, "the Railway file and the env example are cached"
    templating.environment.cache_clear()  # as a new process: its Environment loads what the last one wrote
    assert railway_source(pipeline.render_environment(spec, "staging")) == first
    assert {path: path.stat().st_mtime_ns for path in template_cache.glob("deploytool-*.cache")} == entries
    # the same template file, edited after it was cached: its checksum differs, so it is compiled again
    folder = copy_templates(tmp_path)
    template = folder / "railway.py.j2"
    monkeypatch.setenv(TEMPLATES_ENV, str(folder))
    for note in ("(edited once)", "(edited twice)"):
        template.write_text(template.read_text().replace("set once in Railway", f"set once in Railway {note}", 1))
        templating.environment.cache_clear()
        assert note in railway_source(pipeline.render_environment(spec, "staging"))


def test_code_compiled_without_the_python_rules_is_never_loaded(make_project, tmp_path, template_cache, monkeypatch):
    """Jinja compiles `finalize` into the code, and its cache key is the template's name and file only: code
    compiled for the same file by an Environment without the rules (here the text one, as another program
    or an older deploytool would) must not be what the Railway render runs."""
    spec = make_project({"staging": RAILWAY_OVERLAY})
    folder = copy_templates(tmp_path)
    template = folder / "railway.py.j2"
    template.write_text(template.read_text().replace("{{ env.project|literal }}", "{{ env.project }}", 1))
    monkeypatch.setenv(TEMPLATES_ENV, str(folder))
    text = templating.environment("text", folder)  # no `finalize`: the filters alone, as another program has
    text.filters.update(literal=templating.literal, identifier=templating.identifier)
    text.get_template("railway.py.j2")  # compiled, and cached, without the rule
    assert list(template_cache.glob("deploytool-*.cache"))
    with pytest.raises(TypeError, match="without the `literal` or `identifier` filter"):
        pipeline.render_environment(spec, "staging")


@pytest.mark.parametrize("blocked", ["folder", "vanished"])
def test_a_cache_that_cannot_be_used_is_no_cache(make_project, template_cache, blocked):
    """A file where Jinja's folder goes (Jinja refuses the folder), or the folder removed after it was checked
    (a temp cleaner: nothing can be written there): the render works all the same, compiling in memory."""
    spec = make_project({"staging": RAILWAY_OVERLAY})
    expected = railway_source(pipeline.render_environment(spec, "staging"))
    shutil.rmtree(template_cache)
    templating.environment.cache_clear()
    if blocked == "folder":
        template_cache.write_text("not a folder\n")
    else:
        for kind in ("python", "text"):  # made, with their cache, before the folder goes
            templating.environment(kind, templating.templates_dir())
        shutil.rmtree(template_cache)
    assert railway_source(pipeline.render_environment(spec, "staging")) == expected
    assert template_cache.is_file() if blocked == "folder" else not template_cache.exists()


# --- fuzz: every value that reaches the Railway file, at the plan (below the spec's patterns) ----------------

MARKER = Path(tempfile.gettempdir()) / "deploytool-fuzz-executed"  # a payload below creates it if it ever runs
TOUCH = f"__import__('pathlib').Path({str(MARKER)!r}).touch()"
FRAGMENTS = [f"\n{TOUCH}\n#", f'"""\n{TOUCH}\n#', f"\r{TOUCH}", f'")\n{TOUCH}\n("',

    "\n", "\r", "\r\n", "'", '"', "\\", "\u2028", "\u2029", "\x85", "#", '"""', "'''", "\x0b", "\x0c", "\t",
    "{{", "}}", "{%", "${{", "\ud800", "é", "\\n", "x", "import os", ");", "\nimport os; os.system('id')\n#",
]  # fmt: skip
NASTY = st.one_of(
    st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=8).map("".join),
    st.text(min_size=1, max_size=12),
)


def shape(source: str) -> str:
    """The syntax tree with every constant blanked and names numbered by first use: what the file *does*."""
    names: dict[str, str] = {}

    class Blank(ast.NodeTransformer):
        def visit_Constant(self, node: ast.Constant) -> ast.AST:
            return ast.copy_location(ast.Constant(value="<value>"), node)

        def visit_Name(self, node: ast.Name) -> ast.AST:
            node.id = names.setdefault(node.id, f"name{len(names)}")
            return node

        def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
            node.name = names.setdefault(node.name, f"name{len(names)}")  # a layout's is named after its env
            self.generic_visit(node)
            return node

    return ast.dump(Blank().visit(ast.parse(source)))


def _replace(obj: Any, **changes: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        return dataclasses.replace(obj, **changes)  # type: ignore[type-var]
    return obj.model_copy(update=changes)


@pytest.fixture(scope="module")
def full_plan(tmp_path_factory):
    from tests.conftest import BASE_SPEC

    root = tmp_path_factory.mktemp("full")
    (root / "environments").mkdir()
    for folder in ("flask_service", "node_service"):
        (root / folder).mkdir()
        (root / folder / "Dockerfile").write_text("FROM python:3.11-slim\n")
    (root / "deploytool.yaml").write_text(BASE_SPEC)
    (root / "environments" / "prod.yaml").write_text(FULL)
    rendered = pipeline.render_environment(root / "deploytool.yaml", "prod")
    return rendered.plan, rendered.ctx


def _fuzzed(plan: Any, draw: Any) -> tuple[Any, str]:
    """`plan` with every value that reaches the Railway file taken from `draw()`, and an output folder name."""
    services = []
    for index, svc in enumerate(plan.services):
        # what an instance takes from its spec as is lives in `svc.spec`; the rest are the instance's own fields
        from_spec: dict[str, Any] = {"dockerfile": draw(), "volume_path": "/" + draw()}
        for field in ("source", "start", "pre_deploy", "image"):
            if getattr(svc, field):
                from_spec[field] = draw()
        # distinct names (a suffix per service): the file declares each resource once, so equal names would
        # merge two resources and change the file's shape for a reason that is not the value's
        changes: dict[str, Any] = {"name": f"{draw()}{index}", "spec": svc.spec.model_copy(update=from_spec)}
        for field in ("health_path", "volume"):
            if getattr(svc, field):
                changes[field] = draw() + (str(index) if field == "volume" else "")
        env = []
        for name, value in svc.env:
            if isinstance(value, Plain):
                value = _replace(value, value=draw())
            elif isinstance(value, ServiceUrl):
                value = _replace(value, path=draw())
            env.append((name, value))
        services.append(_replace(svc, env=tuple(env), **changes))
    railway = _replace(plan.railway, environment=draw(), repo=draw(), branch=draw())
    fuzzed = _replace(plan, project=draw(), env_name=draw(), services=tuple(services), railway=railway)
    # an output folder the file system can name (no NUL, no lone surrogate): it reaches a comment
    return fuzzed, draw().replace("\x00", "").encode("utf-8", "ignore").decode() or "out"


def _railway_file(plan: Any, ctx: Any, out: str) -> str:
    # no peers: the file is rendered from the plan itself
    fuzzed_ctx = dataclasses.replace(ctx, out=ctx.root / out, peers=None)
    (artifact,) = [a for a in plugin(Target.railway).render(plan, fuzzed_ctx) if a.path.endswith(RAILWAY_FILE)]
    return artifact.content


@settings(
    max_examples=200, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_fuzzed_values_reach_the_railway_file_only_as_literals(full_plan, data):
    plan, ctx = full_plan
    drawn: list[str] = []

    def draw() -> str:
        drawn.append(data.draw(NASTY))
        return drawn[-1]

    fuzzed, out = _fuzzed(plan, draw)
    source = _railway_file(fuzzed, ctx, out)
    # Its twin: the same plan with every distinct value a plain token instead ("v0x", "v1x", ...). The file's
    # services share a body function where their values are equal, so what the file does may follow which
    # values are equal, and nothing else: the twin's file does exactly the same.
    tokens: dict[str, str] = {}
    replay = iter(drawn)
    twin, twin_out = _fuzzed(plan, lambda: tokens.setdefault(next(replay), f"v{len(tokens)}x"))
    assert shape(source) == shape(_railway_file(twin, ctx, twin_out))  # same statements and calls
    railway = fuzzed.railway
    assert layout_names(source) == [railway.environment]
    assert constant(source, "PROJECT") == fuzzed.project
    # and running it the way Railway's CLI does runs no code of the spec's (the sdk may refuse odd values)
    MARKER.unlink(missing_ok=True)
    with contextlib.suppress(Exception):
        evaluate_like_cli(source)
    assert not MARKER.exists()
