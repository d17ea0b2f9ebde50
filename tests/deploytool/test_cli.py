"""The CLI surface: exit codes 0/1/2, messages without tracebacks, schema, show redaction."""

from __future__ import annotations

import contextlib
import inspect
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from deploytool.cli import app, main
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
    assert code == 2 and "Missing argument 'ENV'" in err
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


# --- the command line itself ------------------------------------------------------------------------


def deploytool(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """A real `python -m deploytool` process, from the repository (this checkout first on the path)."""
    environ = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "deploytool", *args], capture_output=True, text=True, cwd=REPO, env=environ, check=False
    )


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["validate", "dev", "--bogus"], "No such option: --bogus"),
        (["validate"], "Missing argument 'ENV'."),
        (["probe", "dev", "--concurrency", "0"], "Invalid value for '--concurrency': 0 is not in the range 1<=x<=256."),
        (["probe", "dev", "--concurrency", "257"], "Invalid value for '--concurrency': 257 is not in the range"),
        (
            ["probe", "dev", "--concurrency", "many"],
            "Invalid value for '--concurrency': 'many' is not a valid integer.",
        ),
        (["logs", "dev", "--lines", "0"], "Invalid value for '--lines': 0 is not in the range 1<=x<=100000."),
        (["logs", "dev", "--lines", "100001"], "Invalid value for '--lines': 100001 is not in the range 1<=x<=100000"),
        (["up", "dev", "--timeout", "soon"], "Invalid value for '--timeout':"),
        (["init", "x", "--web-port", "http"], "Invalid value for '--web-port':"),
        (["railway", "plan", "dev", "--yes"], "No such option: --yes"),
        (["nosuch"], "No such command 'nosuch'."),
        (["--spec", "deploytool.yaml"], "Missing command."),
        (["render", "dev", "--che"], "No such option: --che"),  # no abbreviations, as before
        (["--specc", "x", "validate", "dev"], "No such option: --specc"),
    ],
)
def test_usage_errors_exit_2_with_the_usage_and_one_error_line(capsys, args, error):
    code, out, err = run(args, capsys)
    assert code == 2 and out == ""
    lines = err.splitlines()
    assert len(lines) == 2, err
    assert lines[0].startswith("Usage: deploytool ")
    assert lines[1].startswith(f"error: {error}")
    assert "Traceback" not in err


def test_a_usage_error_names_the_command_it_was_for(capsys):
    _, _, err = run(["railway", "apply", "prod", "--bogus"], capsys)
    assert err.startswith("Usage: deploytool railway apply ")


def test_usage_error_in_a_real_process_has_no_traceback():
    result = deploytool("logs", "dev", "--lines", "0")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [
        "Usage: deploytool logs [OPTIONS] {ENV} [SERVICE]",
        "error: Invalid value for '--lines': 0 is not in the range 1<=x<=100000.",
    ]


def test_a_crash_prints_no_local_variable(monkeypatch):
    # A bug's traceback must not show the values of locals (a secret read from .secrets.env, say).
    code = (
        "import deploytool.pipeline as p\n"
        "def boom(spec, env, out, sets=()):\n"
        "    secret_value = 'hunter2-s3cr3t'\n"
        "    raise RuntimeError('bug')\n"
        "p.render_environment = boom\n"
        "from deploytool.cli import entry\n"
        "entry()\n"
    )
    environ = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"}
    environ.pop("TYPER_STANDARD_TRACEBACK", None)
    result = subprocess.run(
        [sys.executable, "-c", code, "show", "dev"], capture_output=True, text=True, cwd=REPO, env=environ, check=False
    )
    assert result.returncode == 1 and "RuntimeError: bug" in result.stderr
    assert "hunter2-s3cr3t" not in result.stderr


def test_version_prints_and_runs_no_command(capsys):
    from deploytool import __version__

    code, out, err = run(["--version", "validate", "no-such-env"], capsys)
    assert (code, out, err) == (0, f"deploytool {__version__}\n", "")
    result = CliRunner().invoke(app, ["--version"], prog_name="deploytool")
    assert (result.exit_code, result.output) == (0, f"deploytool {__version__}\n")
    process = deploytool("--version")
    assert (process.returncode, process.stdout) == (0, f"deploytool {__version__}\n")


@pytest.mark.parametrize("args", [[], ["railway"]])
def test_no_command_prints_the_help_and_exits_2(capsys, args):
    code, out, err = run(args, capsys)
    assert code == 2 and out == ""
    assert err.startswith(f"Usage: deploytool {' '.join(args)}".rstrip() + " ")
    assert "Commands:" in err and "error:" not in err  # the help itself, not an error around it


SET_HELP = (
    "--set PATH=VALUE Override one spec field for this run, after every overlay (a YAML value, e.g. "
    "services.web.port=5202; null removes it); repeatable."
)
# Every option of every command, as `--help` shows it (whitespace aside): the command line's surface.
HELP = {
    "": ["--spec PATH Spec file; overlays are read from environments/ beside it. [default: deploytool.yaml]",
         "--version Print the version and exit.", "--install-completion Install completion for the current shell.",
         "--show-completion Show completion for the current shell", "-h, --help Show this message and exit.",
         "railway Plan or apply ENV's Railway file"],
    "validate": ["ENV <str> Environment name: environments/ENV.yaml. [required]",
                 "--out PATH Output folder (default: deploy/ENV beside the spec)."],
    "render": ["--check Write nothing; exit 1 if files on disk differ.", SET_HELP],
    "show": ["--out PATH Output folder", SET_HELP],
    "init": ["FOLDER <path> Project folder (default: here). [default: .]",
             "--project NAME Project name (lowercase, dashes).", "--topology TOPOLOGY per-port, shared or sharded.",
             "--tenants IDS Comma-separated tenant ids, e.g. 1,2,3.",
             "--targets TARGETS Comma-separated: local, compose, railway.",
             "--web-port PORT Port of the Flask app. [default: 5002]",
             "--whatsapp-port PORT First port of the WhatsApp servers. [default: 5001]",
             "--repo OWNER/NAME GitHub owner/name (railway target)."],
    "schema": ["--format FORMAT json (JSON Schema, for editors) or markdown (docs). [default: json]"],
    "up": ["--runner RUNNER procfile (processes here) or compose (needs Docker). [default: procfile]",
           "--timeout SECONDS Seconds to wait for every /health. [default: 90.0]",
           "--keep N Releases kept in ENV's history (the live one too). [default: 5; 1<=x<=100]",
           "--rollback-on-failure --runner compose: on a failure, start the previous release again."],
    "releases": ["--format FORMAT table or json. [default: table]", "--out PATH Output folder"],
    "down": ["--volumes Also remove the data volumes (WhatsApp sessions, database)."],
    "ps": ["--out PATH Output folder"],
    "logs": ["SERVICE <str> One service (default: all).", "--lines N Lines per service. [default: 100; 1<=x<=100000]",
             "-f, --follow Keep printing new lines (Ctrl-C stops)."],
    "restart": ["SERVICE <str> The service to restart (see `deploytool ps ENV`). [required]",
                "--timeout SECONDS Seconds to wait for its /health. [default: 90.0]"],
    "run": ["SERVICE <str> The service whose environment the command gets. [required]",
            "-- COMMAND... <list[str]> The command and its arguments. [required]",
            "--runner RUNNER procfile or compose (default: the one running ENV, else procfile).",
            "Everything after `--` is the command, passed on untouched"],
    "env": ["SERVICE <str> The process (e.g. web, whatsapp-1). [required]",
            "--target TARGET local or compose (default: ENV's first target that runs processes).",
            "--format FORMAT dotenv (the env file), json or shell (export lines). [default: dotenv]",
            "--reveal Secrets' values (from the environment, else .secrets.env) instead of their names.", SET_HELP],
    "doctor": ["Check what each command needs", "Exit 0 when the default path"],
    "probe": ["--url SERVICE=URL SERVICE=URL of a remote service; repeatable.",
              "--format FORMAT table, json or junit. [default: table]", "--output FILE Write the report to FILE.",
              "--timeout SECONDS Seconds each target may take, retries included. [default: 30.0]",
              "--concurrency N Targets probed at once. [default: 16; 1<=x<=256]",
              "--interval SECONDS Seconds between retries of one target. [default: 1.0]"],
    "railway": ["plan `railway config plan` of the project's file for ENV",
                "apply `railway config apply` of the project's file for ENV"],
    "railway plan": ["--json Pass --json: the Railway CLI prints its raw JSON.",
                     "--detailed-exit-code Pass --detailed-exit-code: exit 2 when changes are pending.",
                     "--plan-out FILE Pass --out FILE: a pinned plan for `apply --plan FILE`.",
                     "--set PATH=VALUE Refused: Railway gets the committed spec alone (exit 2, naming it)."],
    "railway apply": ["--json Pass --json: the Railway CLI prints its raw JSON.",
                      "--yes Pass --yes: apply without asking (implied by CI=true).",
                      "--confirm-destructive Pass --confirm-destructive: allow removals without a prompt.",
                      "--plan FILE Pass --plan FILE: apply exactly a plan made with --plan-out.",
                      "--wait Wait until every redeployed service is live (or failed), then probe; needs --yes or "
                      "--plan.", "--timeout SECONDS --wait: seconds for every deployment. [default: 600.0]",
                      "--rollback-on-failure --wait: on a failure, roll back to the previous release.",
                      "--keep N Releases kept in ENV's history (the live one too). [default: 5; 1<=x<=100]",
                      "--url SERVICE=URL --wait: SERVICE=URL for the probe; repeatable."],
    "rollback": ["--to N The release to go back to (default: the one before the live one).",
                 "--timeout SECONDS Seconds for each service. [default: 600.0]", "--keep N Releases kept"],
    "tenants": ["list Every tenant with the service serving it", "move Pin TENANT to shard N",
                "rebalance Print the fewest moves that even out ENV's shards",
                "import Find the linked WhatsApp sessions"],
    "tenants list": ["--out PATH Output folder"],
    "tenants move": ["TENANT <str> The tenant to move. [required]",
                     "--shard N The shard to move it to (whatsapp-shard-N). [required]",
                     "--timeout SECONDS Seconds for each restart, and for the tenant to connect on its new shard. "
                     "[default: 90.0]"],
    "tenants rebalance": ["--apply Make the moves (one at a time), not only print them."],
    "tenants import": ["--from DIR Folder of session folders", "--apply Write the sessions into ENV's store",
                       "--from-volume NAME A Docker volume of a file-store layout (compose), instead of --from.",
                       "--replace Overwrite a tenant that has a linked session in the store already."],
}  # fmt: skip


@pytest.mark.parametrize("command", list(HELP), ids=lambda c: c or "top")
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_every_help_lists_its_options_with_their_help(command, flag):
    result = CliRunner().invoke(app, [*command.split(), flag], prog_name="deploytool", env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Usage: deploytool {command}".rstrip() + " ")
    text = " ".join(result.output.split())
    for entry in HELP[command]:
        assert entry in text, f"{entry!r} not in `deploytool {command} {flag}`:\n{result.output}"


def test_help_imports_no_command_library():
    # --help is timed against bare Python (benchmarks/startup.py): it pays for typer alone. A command's
    # help also pays for typer's pydantic (it coerces --spec), never for a command's own libraries.
    code = (
        "import sys\n"
        "from deploytool.cli import main\n"
        "heavy = {'pydantic', 'rich', 'yaml', 'jinja2', 'requests', 'httpx', 'docker', 'deploytool.pipeline'}\n"
        "assert main(['--help']) == 0\n"
        "top = sorted(heavy & set(sys.modules))\n"
        "assert main(['probe', '--help']) == 0 and main(['railway', 'apply', '--help']) == 0\n"
        "print(top, sorted(heavy - {'pydantic'} & set(sys.modules)))\n"
    )
    environ = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environ, check=True)
    assert result.stdout.splitlines()[-1] == "[] []"


# What each command's function receives from a line (typer's conversion, names and defaults).
PARSED = [
    (["validate", "dev"], {"env": "dev", "out": None, "sets": ()}),
    (["validate", "dev", "--set", "a.b=1", "--set", "c=[x]"], {"sets": ["a.b=1", "c=[x]"]}),
    (["render", "prod", "--check", "--out", "o"], {"env": "prod", "out": Path("o"), "check": True}),
    (["show", "dev"], {"env": "dev", "out": None}),
    (["init"], {"folder": Path("."), "project": None, "topology": None, "tenants": None, "targets": None,
                "web_port": 5002, "whatsapp_port": 5001, "repo": None}),
    (["init", "here", "--tenants", "1,2", "--web-port", "80"], {"folder": Path("here"), "tenants": "1,2",
                                                                 "web_port": 80}),
    (["schema"], {"fmt": "json"}),
    (["up", "dev"], {"env": "dev", "runner": "procfile", "timeout": 90.0, "sets": ()}),
    (["up", "dev", "--set", "services.web.port=5202"], {"sets": ["services.web.port=5202"]}),
    (["show", "dev", "--set", "x=1"], {"sets": ["x=1"]}),
    (["probe", "dev", "--set", "x=1"], {"sets": ["x=1"]}),
    (["render", "dev", "--set", "x=1"], {"sets": ["x=1"]}),
    (["up", "dev", "--runner", "compose", "--timeout", "5"], {"runner": "compose", "timeout": 5.0}),
    (["down", "dev", "--volumes"], {"env": "dev", "volumes": True}),
    (["up", "dev"], {"keep": 5}),
    (["up", "dev", "--keep", "2"], {"keep": 2, "rollback_on_failure": False}),
    (["up", "dev", "--runner", "compose", "--rollback-on-failure"], {"rollback_on_failure": True}),
    (["releases", "dev"], {"env": "dev", "out": None, "fmt": "table"}),
    (["releases", "dev", "--format", "json"], {"fmt": "json"}),
    (["rollback", "prod"], {"env": "prod", "to": None, "out": None, "timeout": 600.0, "keep": 5}),
    (["rollback", "prod", "--to", "3", "--timeout", "60"], {"to": 3, "timeout": 60.0}),
    (["railway", "apply", "prod", "--wait", "--yes", "--timeout", "120", "--rollback-on-failure", "--keep", "3",
      "--url", "web=https://w"],
     {"wait": True, "timeout": 120.0, "rollback_on_failure": True, "keep": 3, "url": ["web=https://w"]}),
    (["railway", "apply", "prod"], {"wait": False, "rollback_on_failure": False, "keep": 5, "url": ()}),
    (["ps", "dev"], {"env": "dev", "out": None}),
    (["logs", "dev"], {"env": "dev", "service": None, "lines": 100, "follow": False}),
    (["logs", "dev", "web", "-f", "--lines", "5"], {"service": "web", "lines": 5, "follow": True}),
    (["restart", "dev", "web"], {"env": "dev", "service": "web", "timeout": 90.0}),
    (["run", "dev", "web", "--", "python", "-m", "x", "--out", "o"],
     {"env": "dev", "service": "web", "command": ["python", "-m", "x", "--out", "o"], "out": None, "runner": None}),
    (["run", "dev", "web", "--runner", "compose", "--", "sh"], {"runner": "compose", "command": ["sh"]}),
    (["probe", "dev"], {"url": (), "fmt": "table", "output": None, "timeout": 30.0, "concurrency": 16,
                        "interval": 1.0}),
    (["probe", "dev", "--url", "web=https://w", "--url", "whatsapp=https://a", "--format", "junit",
      "--concurrency", "256", "--output", "p.xml"],
     {"url": ["web=https://w", "whatsapp=https://a"], "fmt": "junit", "concurrency": 256, "output": Path("p.xml")}),
    (["env", "dev", "web"], {"env": "dev", "service": "web", "target": None, "form": "dotenv", "reveal": False,
                             "out": None, "sets": ()}),
    (["env", "dev", "whatsapp-1", "--target", "compose", "--format", "shell", "--reveal", "--set", "x=1"],
     {"service": "whatsapp-1", "target": "compose", "form": "shell", "reveal": True, "sets": ["x=1"]}),
    (["railway", "plan", "dev", "--json", "--detailed-exit-code", "--plan-out", "p.plan"],
     {"json_output": True, "detailed_exit_code": True, "plan_out": Path("p.plan")}),
    (["railway", "apply", "dev", "--yes", "--plan", "p.plan", "--set", "a=1"],
     {"json_output": False, "yes": True, "confirm_destructive": False, "plan": Path("p.plan"), "sets": ["a=1"]}),
]  # fmt: skip


def parse(args: list[str]) -> tuple[Any, Any]:
    """The root context and the command's context of `deploytool ARGS`, parsed by typer's click, run not."""
    command: Any = typer.main.get_command(app)
    root = ctx = command.make_context("deploytool", list(args), resilient_parsing=False)
    while hasattr(command, "resolve_command"):
        name, command, rest = command.resolve_command(ctx, [*ctx._protected_args, *ctx.args])
        ctx = command.make_context(name, rest, parent=ctx)
    return root, ctx


@pytest.mark.parametrize(("args", "expected"), PARSED, ids=lambda a: " ".join(a) if isinstance(a, list) else "")
def test_every_parsed_value_reaches_its_command(args, expected):
    _, ctx = parse(args)
    assert {name: ctx.params[name] for name in expected} == expected
    assert set(ctx.params) - {"ctx"} <= set(inspect.signature(ctx.command.callback).parameters)


def test_spec_travels_with_each_call_not_between_calls(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(REPO)
    code, _, err = run(["--spec", str(tmp_path / "nope.yaml"), "show", "dev"], capsys)
    assert code == 2 and "spec file not found" in err
    code, out, _ = run(["show", "dev"], capsys)  # default deploytool.yaml, here
    assert code == 0 and "services:" in out
    root, _ = parse(["--spec=elsewhere.yaml", "validate", "dev"])
    assert root.params["spec"] == Path("elsewhere.yaml")


class _Terminal(io.StringIO):
    """Typed answers on a terminal: `init` asks only when stdin is one."""

    def isatty(self) -> bool:
        return True


QUESTIONS = [
    "Project name [my-app]: ",
    "Topology (per-port, shared, sharded) [shared]: ",
    "Tenant ids (comma-separated) [1,2,3]: ",
    "Targets (local, compose, railway) [local,compose]: ",
]


def test_init_asks_on_a_terminal_with_the_defaults_shown(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", _Terminal("acme-chat\n\na,b\n\n"))
    folder = tmp_path / "My_App"
    code, out, _ = run(["init", str(folder)], capsys)
    assert code == 0
    assert out.startswith("".join(QUESTIONS))
    spec = load_spec(folder / "deploytool.yaml", "dev").spec
    assert spec.project == "acme-chat" and spec.tenant_ids() == ["a", "b"]
    assert [t.value for t in spec.targets] == ["local", "compose"]


def test_init_takes_the_defaults_without_a_terminal(tmp_path):
    # CliRunner's stdin is no terminal: nothing is asked, even with answers waiting on it.
    result = CliRunner().invoke(app, ["init", str(tmp_path / "quiet")], input="other\n", prog_name="deploytool")
    assert result.exit_code == 0, result.output
    assert "Project name" not in result.output
    assert load_spec(tmp_path / "quiet" / "deploytool.yaml", "dev").spec.project == "quiet"


def test_end_of_input_at_a_question_aborts(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", _Terminal("acme\n"))  # one answer, then end of input
    code, out, err = run(["init", str(tmp_path / "My_App")], capsys)
    assert code == 130 and err.strip() == "aborted"
    assert out.startswith("".join(QUESTIONS[:2]))
    assert not (tmp_path / "My_App").exists()


# --- shell completion --------------------------------------------------------------------------------


def complete(words: str, *, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """A shell's completion request, as the bash script of --show-completion sends it (typer's protocol)."""
    cword = len(words.split()) - (0 if words.endswith(" ") else 1)
    request = {"_DEPLOYTOOL_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": str(cword)}
    return deploytool(env={**request, **(env or {})})


def test_show_completion_prints_the_bash_script():
    # Run from bash, as a user does: typer names the shell it runs in (the one on the process tree).
    command = f"PYTHONPATH={REPO} {sys.executable} -m deploytool --show-completion bash; exit $?"
    result = subprocess.run(
        ["bash", "--norc", "-c", command],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "SHELL": "/bin/bash"},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "_DEPLOYTOOL_COMPLETE=complete_bash" in result.stdout
    assert "complete -o default -F _deploytool_completion deploytool" in result.stdout


def test_a_completion_request_completes_commands_and_options():
    result = complete("deploytool val")
    assert (result.returncode, result.stdout.split(), result.stderr) == (0, ["validate"], "")
    assert complete("deploytool probe dev --conc").stdout.split() == ["--concurrency"]
    assert complete("deploytool railway ").stdout.split() == ["plan", "apply"]


def test_env_completes_from_the_environments_beside_the_spec(make_project):
    spec = make_project({"dev": "{}\n", "demo": "{}\n", "prod": "{}\n"})
    (spec.parent / "environments" / "prod.lock.json").write_text("{}")
    assert complete(f"deploytool --spec {spec} validate ").stdout.split() == ["demo", "dev", "prod"]
    assert complete(f"deploytool --spec {spec} logs d").stdout.split() == ["demo", "dev"]
    assert complete("deploytool railway plan st").stdout.split() == ["staging"]  # ./deploytool.yaml


def test_completion_in_process_returns_from_main(monkeypatch, capsys):
    # A completion request and --show-completion end with sys.exit inside typer: main still returns.
    monkeypatch.setenv("_DEPLOYTOOL_COMPLETE", "complete_bash")
    monkeypatch.setenv("COMP_WORDS", "deploytool --spec deploytool.yaml sh")
    monkeypatch.setenv("COMP_CWORD", "3")
    assert run([], capsys)[:2] == (0, "show\n")
    monkeypatch.delenv("_DEPLOYTOOL_COMPLETE")
    monkeypatch.setattr("typer.completion._get_shell_name", lambda: "zsh")
    code, out, _ = run(["--show-completion"], capsys)
    assert code == 0 and "compdef _deploytool_completion deploytool" in out


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
