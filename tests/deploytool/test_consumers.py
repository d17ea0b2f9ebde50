"""The real consumers `validate` runs: what they see does not depend on the caller's folder or variables."""

from __future__ import annotations

import threading
import time

import pytest

from deploytool import pipeline
from deploytool.cli import main
from deploytool.plan.model import Finding
from deploytool.targets import compose as compose_target
from deploytool.targets.compose import ComposeTarget
from deploytool.targets.local import LocalTarget
from deploytool.targets.railway import RailwayTarget


def test_the_callers_dotenv_and_variables_do_not_change_the_verdict(make_project, monkeypatch, tmp_path, capsys):
    spec = make_project()
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    (folder / ".env").write_text("this is not = an env file\n")  # Compose fails reading it, when it does
    monkeypatch.chdir(folder)
    monkeypatch.setenv("OPS_API_KEY", "")  # set but empty: `${OPS_API_KEY:?...}` would fail with it
    assert main(["--spec", str(spec), "validate", "dev"]) == 0, capsys.readouterr()


def test_a_module_named_compose_does_not_hide_the_compose_binary(tmp_path, monkeypatch):
    (tmp_path / "compose.py").write_text("")  # benchmarks/compose.py once did, when run as a script
    monkeypatch.syspath_prepend(str(tmp_path))
    binary = compose_target.compose_binary()
    assert binary is not None and binary.name == "docker-compose"


# --- validate starts each target's consumer as soon as that target's files are rendered ---------------------

TWO_TARGETS = "targets: [compose, railway]\nrailway: {repo: acme/chat}\n"


def test_compose_reads_its_file_while_the_next_target_renders(make_project, monkeypatch):
    """Compose on a 1,000-service file is most of `validate`: it must not wait for the Railway file and the
    manifest. The Railway render below waits for the Compose check to have started; it never would if the
    checks started only after the whole render."""
    spec = make_project({"prod": TWO_TARGETS})
    started = threading.Event()
    seen: list[bool] = []
    compose_check, railway_render = ComposeTarget.check, RailwayTarget.render

    def check(self, *args):
        started.set()
        return compose_check(self, *args)

    def render(self, plan, ctx):
        seen.append(started.wait(timeout=5))
        return railway_render(self, plan, ctx)

    monkeypatch.setattr(ComposeTarget, "check", check)
    monkeypatch.setattr(RailwayTarget, "render", render)
    _, findings = pipeline.validate_environment(spec, "prod")
    assert seen == [True]
    assert pipeline.errors(findings) == []
    # the same findings as a render followed by every check
    assert findings == pipeline.findings_of(pipeline.render_environment(spec, "prod"))


def test_a_render_that_fails_after_compose_started_waits_for_it(make_project, monkeypatch):
    """A later target's render raising leaves no Compose process or check thread behind."""
    spec = make_project({"prod": TWO_TARGETS})
    started, finished = threading.Event(), threading.Event()
    compose_check = ComposeTarget.check

    def check(self, *args):
        started.set()
        try:
            return compose_check(self, *args)
        finally:
            time.sleep(0.3)  # still running when the render below fails
            finished.set()

    def render(self, plan, ctx):
        assert started.wait(timeout=5)
        raise RuntimeError("the Railway render failed")

    monkeypatch.setattr(ComposeTarget, "check", check)
    monkeypatch.setattr(RailwayTarget, "render", render)
    with pytest.raises(RuntimeError, match="the Railway render failed"):
        pipeline.validate_environment(spec, "prod")
    assert finished.is_set()
    assert not [t for t in threading.enumerate() if t.name.startswith("check")]


def test_compose_renders_and_starts_first_whatever_the_spec_order(make_project, monkeypatch):
    """Compose is the slow consumer: its file is rendered, and its check started, before the targets listed
    ahead of it, so they render while Compose reads. Findings keep the spec's target order, and the files
    are a plain render's."""
    spec = make_project({"prod": "targets: [local, railway, compose]\nrailway: {repo: acme/chat}\n"})
    events: list[str] = []
    for plugin in (LocalTarget, RailwayTarget, ComposeTarget):
        monkeypatch.setattr(plugin, "render", _recorded(plugin, "render", events))
        monkeypatch.setattr(plugin, "check", _recorded(plugin, "check", events, found=True))
    rendered, findings = pipeline.validate_environment(spec, "prod")
    assert events[:2] == ["compose render", "compose check"]
    assert [f.code for f in findings if f.code.endswith("-check")] == ["local-check", "railway-check", "compose-check"]
    # the same findings, and the same files (manifest included), as a render followed by every check
    again = pipeline.render_environment(spec, "prod")
    assert [(a.path, a.content) for a in rendered.artifacts] == [(a.path, a.content) for a in again.artifacts]
    assert findings == pipeline.findings_of(again)


def _recorded(plugin, method, events, found=False):
    original = getattr(plugin, method)

    def call(self, *args):
        events.append(f"{self.target.value} {method}")
        result = original(self, *args)
        return [*result, Finding(f"{self.target.value}-check", "recorded")] if found else result

    return call
