"""The CLI surface: exit codes 0/1/2, messages without tracebacks, schema, show redaction."""

from __future__ import annotations

import contextlib
import inspect
import json
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deploytool.cli import build_parser, main
from deploytool.errors import UserError
from deploytool.spec.load import load_spec
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
    assert code == 2 and "error: the following arguments are required: ENV" in err
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


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["validate", "dev", "--bogus"], "unrecognized arguments: --bogus"),
        (["validate"], "the following arguments are required: ENV"),
        (["probe", "dev", "--concurrency", "0"], "argument --concurrency: 0 is not in the range 1<=x<=256"),
        (["probe", "dev", "--concurrency", "many"], "argument --concurrency: 'many' is not a valid integer"),
        (["logs", "dev", "--lines", "0"], "argument --lines: 0 is not in the range 1<=x<=100000"),
        (["up", "dev", "--timeout", "soon"], "argument --timeout: invalid float value: 'soon'"),
        (["railway", "plan", "dev", "--yes"], "unrecognized arguments: --yes"),
        (["nosuch"], "argument COMMAND: invalid choice: 'nosuch'"),
        (["--spec", "deploytool.yaml"], "the following arguments are required: COMMAND"),
        (["render", "dev", "--che"], "unrecognized arguments: --che"),  # no abbreviations, as before
    ],
)
def test_usage_errors_exit_2_with_the_usage_and_one_error_line(capsys, args, error):
    code, out, err = run(args, capsys)
    assert code == 2 and out == ""
    lines = err.splitlines()
    assert lines[0].startswith("usage: deploytool ")
    assert lines[-1].startswith(f"error: {error}")
    assert sum(line.startswith("error:") for line in lines) == 1
    assert "Traceback" not in err


def test_a_usage_error_names_the_command_it_was_for(capsys):
    _, _, err = run(["railway", "apply", "prod", "--bogus"], capsys)
    assert err.startswith("usage: deploytool railway apply ")


def test_usage_error_in_a_real_process_has_no_traceback():
    result = subprocess.run(
        [sys.executable, "-m", "deploytool", "logs", "dev", "--lines", "0"],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines()[-1] == "error: argument --lines: 0 is not in the range 1<=x<=100000"
    assert "Traceback" not in result.stderr


def test_version_prints_and_runs_no_command(capsys):
    from deploytool import __version__

    code, out, err = run(["--version", "validate", "no-such-env"], capsys)
    assert (code, out, err) == (0, f"deploytool {__version__}\n", "")


@pytest.mark.parametrize("args", [[], ["railway"]])
def test_no_command_prints_the_help_and_exits_2(capsys, args):
    code, out, err = run(args, capsys)
    assert code == 2 and out == ""
    assert err.startswith(f"usage: deploytool {' '.join(args)}".rstrip() + " ")
    assert "commands:" in err


# Every option of every command, as `--help` shows it (whitespace aside): the command line's surface.
HELP = {
    "": ["--spec PATH Spec file; overlays are read from environments/ beside it. [default: deploytool.yaml]",
         "--version Print the version and exit.", "railway Plan or apply ENV's Railway file"],
    "validate": ["ENV Environment name: environments/ENV.yaml.",
                 "--out PATH Output folder (default: deploy/ENV beside the spec)."],
    "render": ["--check Write nothing; exit 1 if files on disk differ."],
    "show": ["--out PATH Output folder"],
    "init": ["FOLDER Project folder (default: here). [default: .]",
             "--project NAME Project name (lowercase, dashes).", "--topology TOPOLOGY per-port, shared or sharded.",
             "--tenants IDS Comma-separated tenant ids, e.g. 1,2,3.",
             "--targets TARGETS Comma-separated: local, compose, railway.",
             "--web-port PORT Port of the Flask app. [default: 5002]",
             "--whatsapp-port PORT First port of the WhatsApp servers. [default: 5001]",
             "--repo OWNER/NAME GitHub owner/name (railway target)."],
    "schema": ["--format FORMAT json (JSON Schema, for editors) or markdown (docs). [default: json]"],
    "up": ["--runner RUNNER procfile (processes here) or compose (needs Docker). [default: procfile]",
           "--timeout SECONDS Seconds to wait for every /health. [default: 90.0]"],
    "down": ["--volumes Also remove the data volumes (WhatsApp sessions, database)."],
    "ps": ["--out PATH Output folder"],
    "logs": ["SERVICE One service (default: all).", "--lines N Lines per service. [default: 100; 1<=x<=100000]",
             "-f, --follow Keep printing new lines (Ctrl-C stops)."],
    "restart": ["SERVICE The service to restart (see `deploytool ps ENV`).",
                "--timeout SECONDS Seconds to wait for its /health. [default: 90.0]"],
    "probe": ["--url SERVICE=URL SERVICE=URL of a remote service; repeatable.",
              "--format FORMAT table, json or junit. [default: table]", "--output FILE Write the report to FILE.",
              "--timeout SECONDS Seconds each target may take, retries included. [default: 30.0]",
              "--concurrency N Targets probed at once. [default: 16; 1<=x<=256]",
              "--interval SECONDS Seconds between retries of one target. [default: 1.0]"],
    "railway": ["plan `railway config plan` of ENV's own file", "apply `railway config apply` of ENV's own file"],
    "railway plan": ["--json Pass --json: the Railway CLI prints its raw JSON.",
                     "--detailed-exit-code Pass --detailed-exit-code: exit 2 when changes are pending."],
    "railway apply": ["--json Pass --json: the Railway CLI prints its raw JSON.",
                      "--yes Pass --yes: apply without asking (implied by CI=true).",
                      "--confirm-destructive Pass --confirm-destructive: allow removals without a prompt."],
}  # fmt: skip


@pytest.mark.parametrize("command", list(HELP), ids=lambda c: c or "top")
def test_every_help_lists_its_options_with_their_help(capsys, command):
    code, out, err = run([*command.split(), "--help"], capsys)
    assert code == 0 and err == ""
    assert out.startswith(f"usage: deploytool {command}".rstrip() + " ")
    text = " ".join(out.split())
    for entry in HELP[command]:
        assert entry in text, f"{entry!r} not in `deploytool {command} --help`:\n{out}"


def test_help_imports_no_command_library():
    # --help is timed against bare Python (benchmarks/startup.py): it must not pay for any command.
    code = (
        "import sys\n"
        "from deploytool.cli import main\n"
        "assert main(['--help']) == 0 and main(['probe', '--help']) == 0\n"
        "print(sorted({'typer', 'click', 'pydantic', 'rich', 'yaml', 'jinja2', 'httpx'} & set(sys.modules)))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.splitlines()[-1] == "[]"


@pytest.mark.parametrize(
    "args",
    [
        ["validate", "dev"],
        ["render", "dev"],
        ["show", "dev"],
        ["init"],
        ["schema"],
        ["up", "dev"],
        ["down", "dev"],
        ["ps", "dev"],
        ["logs", "dev"],
        ["restart", "dev", "web"],
        ["probe", "dev"],
        ["railway", "plan", "dev"],
        ["railway", "apply", "dev"],
    ],
    ids=" ".join,
)
def test_every_parsed_value_reaches_its_command(args):
    parsed = vars(build_parser().parse_args(args))
    command = parsed.pop("command")
    parameters = set(inspect.signature(command).parameters)
    assert set(parsed) - {"spec"} == parameters - {"spec"}


def test_spec_travels_with_each_call_not_between_calls(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(REPO)
    code, _, err = run(["--spec", str(tmp_path / "nope.yaml"), "show", "dev"], capsys)
    assert code == 2 and "spec file not found" in err
    code, out, _ = run(["show", "dev"], capsys)  # default deploytool.yaml, here
    assert code == 0 and "services:" in out


class _Terminal:
    def isatty(self) -> bool:
        return True


def test_init_asks_on_a_terminal_with_the_defaults_shown(tmp_path, monkeypatch, capsys):
    asked = []
    answers = iter(["acme-chat", "", "a,b", ""])

    def answer(prompt: str) -> str:
        asked.append(prompt)
        return next(answers)

    monkeypatch.setattr("sys.stdin", _Terminal())
    monkeypatch.setattr("builtins.input", answer)
    folder = tmp_path / "My_App"
    assert main(["init", str(folder)]) == 0
    assert asked == [
        "Project name [my-app]: ",
        "Topology (per-port, shared, sharded) [shared]: ",
        "Tenant ids (comma-separated) [1,2,3]: ",
        "Targets (local, compose, railway) [local,compose]: ",
    ]
    spec = load_spec(folder / "deploytool.yaml", "dev").spec
    assert spec.project == "acme-chat" and spec.tenant_ids() == ["a", "b"]
    assert [t.value for t in spec.targets] == ["local", "compose"]


def test_init_takes_the_defaults_without_a_terminal(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("builtins.input", lambda prompt: pytest.fail(f"asked {prompt!r} without a terminal"))
    assert main(["init", str(tmp_path / "quiet")]) == 0
    assert load_spec(tmp_path / "quiet" / "deploytool.yaml", "dev").spec.project == "quiet"


def test_end_of_input_at_a_question_aborts(tmp_path, monkeypatch, capsys):
    def eof(prompt: str) -> str:
        raise EOFError

    monkeypatch.setattr("sys.stdin", _Terminal())
    monkeypatch.setattr("builtins.input", eof)
    code, _, err = run(["init", str(tmp_path / "x")], capsys)
    assert code == 130 and err.strip() == "aborted"
    assert not (tmp_path / "x" / "deploytool.yaml").exists()


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


@pytest.mark.parametrize(
    "argv",
    [
        ["validate", "dev"],
        ["--spec", "x.yaml", "render", "prod", "--check", "--out", "o"],
        ["--spec=x.yaml", "probe", "dev", "--url", "web=https://w", "--url", "whatsapp=https://a", "--format", "junit"],
        ["logs", "dev", "web", "-f", "--lines", "5"],
        ["railway", "apply", "prod", "--yes", "--json"],
        ["init", "here", "--tenants", "1,2"],
    ],
)
def test_the_parser_of_one_command_reads_its_line_as_the_whole_parser_does(argv):
    only = build_parser(argv)
    assert len(only._subparsers._group_actions[0].choices) == 1  # just the one named
    assert vars(only.parse_args(argv)) == vars(build_parser().parse_args(argv))


def test_help_or_an_unknown_command_gets_every_command(capsys):
    assert main(["valdate", "dev"]) == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'valdate'" in err and "'probe'" in err
    assert main(["--help"]) == 0
    assert "railway" in capsys.readouterr().out
