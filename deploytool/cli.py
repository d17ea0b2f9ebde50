"""Thin commands: parse flags, call the pipeline, print. `main` is the one place errors become exit codes.

Startup is part of every command's time: each command imports what it uses (the pipeline, yaml,
railway-sdk, httpx, the Docker SDK) when it runs, so `--help` or `down` never pay for `render`'s.
The parser is the standard library's argparse: typer, with its copy of click and its pydantic adapter,
took several times Python's own startup before any command ran.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager

from deploytool import __version__
from deploytool.errors import CheckFailed, DeploytoolError, UserError

# Not `from typing import TYPE_CHECKING`: typing and pathlib are a fifth of `--help`'s whole time, and
# every name below is only an annotation here (mypy reads any TYPE_CHECKING as true).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any, NoReturn

    from deploytool.railway_cli import Action
    from deploytool.run import Event


def _echo(text: str = "") -> None:
    # Flushed: `logs --follow` into a pipe shows each line as it comes, and stdout stays in order with
    # the warnings on stderr.
    print(text, flush=True)


def _warn(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@contextmanager
def _up_progress(total: int) -> Iterator[Callable[[Event], None]]:
    """A live line while `up` waits, on a terminal only; a log or CI gets the result lines alone."""
    if not sys.stderr.isatty():
        yield lambda event: None
        return
    from rich.console import Console

    console = Console(stderr=True)
    healthy: set[str] = set()
    with console.status(f"starting {total} services…") as live:

        def on_event(event: Event) -> None:
            if event.kind == "healthy":
                healthy.add(event.service)
            if event.kind == "failed":
                console.print(f"[red]failed[/red]    {event.service}: {event.detail}")
            live.update(f"{len(healthy)}/{total} healthy · {event.service} {event.kind}")

        yield on_event


def _report_findings(findings: list) -> None:  # type: ignore[type-arg]
    for finding in findings:
        (_echo if finding.severity == "error" else _warn)(str(finding))


def validate(spec: Path, env: str, out: Path | None) -> None:
    """Check the spec, the plan and the rendered files (Compose schema + config, railway-sdk). No network."""
    from deploytool import pipeline

    rendered, findings = pipeline.validate_environment(spec, env, out)
    _report_findings(findings)
    failed = pipeline.errors(findings)
    if failed:
        raise CheckFailed(f"{env}: {len(failed)} check(s) failed")
    _echo(
        f"{env}: ok ({len(rendered.plan.services)} services, {len(rendered.plan.tenants)} tenants, "
        f"{len(rendered.artifacts)} artifacts)"
    )


def render(spec: Path, env: str, out: Path | None, check: bool) -> None:
    """Write every artifact of ENV (atomically), or with --check compare them with the disk."""
    from deploytool import pipeline

    rendered = pipeline.render_environment(spec, env, out)
    findings = pipeline.findings_of(rendered, deep=False)  # `validate` also runs the slow consumers
    _report_findings(findings)
    if pipeline.errors(findings):
        raise CheckFailed(f"{env}: checks failed; nothing was written")
    if check:
        changes = [c for c in pipeline.check(rendered) if c.status != "unchanged"]
        for change in changes:
            _echo(f"{change.status}: {change.path}")
            if change.diff:
                _echo(change.diff.rstrip("\n"))
        if changes:
            raise CheckFailed(f"{env}: {len(changes)} file(s) out of date; run `deploytool render {env}`")
        _echo(f"{env}: {len(rendered.artifacts)} files up to date")
        return
    changes, added = pipeline.write(rendered)
    for change in changes:
        _echo(f"{change.status:9} {change.path}")
    if added:
        _echo(f"secrets   {rendered.ctx.in_out('.secrets.env')}: generated {', '.join(added)} (git-ignored, 0600)")


def show(spec: Path, env: str, out: Path | None) -> None:
    """Print the resolved plan of ENV, secrets redacted."""
    import yaml

    from deploytool import pipeline
    from deploytool.show import describe_plan

    rendered = pipeline.render_environment(spec, env, out)
    document = describe_plan(rendered.plan, rendered.ctx)
    _echo(yaml.safe_dump(document, sort_keys=False, width=120).rstrip())


def init(
    folder: Path,
    project: str | None,
    topology: str | None,
    tenants: str | None,
    targets: str | None,
    web_port: int,
    whatsapp_port: int,
    repo: str | None,
) -> None:
    """Start a new project: write deploytool.yaml and environments/*.yaml (asks what flags leave open)."""
    from deploytool.init import parse_answers, spec_files, write_new

    def ask(value: str | None, question: str, default: str) -> str:
        if value is not None:
            return value
        if not sys.stdin.isatty():
            return default
        return input(f"{question} [{default}]: ") or default

    name = ask(project, "Project name", folder.resolve().name.lower().replace("_", "-") or "my-app")
    answers = parse_answers(
        name,
        ask(topology, "Topology (per-port, shared, sharded)", "shared"),
        ask(tenants, "Tenant ids (comma-separated)", "1,2,3"),
        ask(targets, "Targets (local, compose, railway)", "local,compose"),
        web_port,
        whatsapp_port,
        repo,
    )
    written = write_new(folder, spec_files(answers))
    for rel in written:
        _echo(f"created   {folder / rel}")
    _echo(
        f"next: put your services in {answers.web_source}/ and {answers.whatsapp_source}/, then "
        f"`deploytool --spec {folder / 'deploytool.yaml'} validate dev`"
    )


def schema(fmt: str) -> None:
    """Print the JSON Schema of deploytool.yaml (for editors), or the reference as Markdown."""
    import json

    from deploytool.spec.model import Spec
    from deploytool.typed import json_schema

    if fmt == "markdown":
        from deploytool.spec.reference import spec_reference

        _echo(spec_reference().rstrip("\n"))
        return
    if fmt != "json":
        raise UserError(f"--format: expected json or markdown, got {fmt!r}")
    _echo(json.dumps(json_schema(Spec), indent=2, sort_keys=True))


def up(spec: Path, env: str, out: Path | None, runner: str, timeout: float) -> None:
    """Render ENV if needed, start it, and return once every service is healthy."""
    from deploytool import pipeline, run
    from deploytool.targets import target_of_runner

    chosen = run.runner(runner)
    needed = target_of_runner(runner)
    rendered = pipeline.render_environment(spec, env, out)
    if needed is None or needed not in rendered.plan.targets:
        have = ", ".join(t.value for t in rendered.plan.targets)
        raise UserError(
            f"{env}: targets are {have}; --runner {runner} needs the {needed.value if needed else runner!r} target "
            f"(add it to `targets` in environments/{env}.yaml)"
        )
    findings = pipeline.findings_of(rendered, consumers=False)
    _report_findings(findings)
    pipeline.require_no_errors(findings)
    pipeline.write(rendered)
    with _up_progress(len(rendered.plan.services)) as on_event:
        statuses = chosen.up(rendered.ctx.out, os.environ, timeout, on_event)
    for status in statuses:
        _echo(f"{status.state:9} {status.name:24} {status.url}")
    _echo(f"{env}: {len(statuses)} services up ({runner}); stop them with `deploytool down {env}`")


def down(spec: Path, env: str, out: Path | None, volumes: bool) -> None:
    """Stop everything `up` started for ENV (processes or compose), and nothing else."""
    from deploytool import pipeline, run
    from deploytool.spec.load import check_env_name

    check_env_name(env)
    folder = out or pipeline.default_out(spec, env)
    stopped = run.down(folder, os.environ, volumes=volumes)
    _echo(f"{env}: stopped {', '.join(stopped)}" if stopped else f"{env}: nothing was running")


def ps(spec: Path, env: str, out: Path | None) -> None:
    """What runs for ENV: every service with its runner, state, port and tenants."""
    from deploytool import pipeline, run
    from deploytool.output import read_manifest
    from deploytool.spec.load import check_env_name

    check_env_name(env)
    folder = out or pipeline.default_out(spec, env)
    manifest = read_manifest(folder)
    current = run.running_runner(folder)
    statuses = {s.name: s for s in current.status(folder, os.environ)} if current else {}
    _echo(f"{'SERVICE':24} {'RUNNER':9} {'STATE':10} {'PORT':>5}  TENANTS")
    for svc in manifest.services:
        status = statuses.get(svc.name)
        state = status.state if status else "stopped"
        tenants = ",".join(svc.tenants) or "-"
        _echo(f"{svc.name:24} {current.name if current else '-':9} {state:10} {svc.port or '-':>5}  {tenants}")


def logs(spec: Path, env: str, service: str | None, out: Path | None, lines: int, follow: bool) -> None:
    """The last log lines of ENV's services, secrets masked."""
    from deploytool import pipeline, run
    from deploytool.spec.load import check_env_name

    check_env_name(env)
    folder = out or pipeline.default_out(spec, env)
    current = run.running_runner(folder) or run.runner("procfile")
    for line in current.logs(folder, os.environ, service, lines, follow):
        _echo(line)


def restart(spec: Path, env: str, service: str, out: Path | None, timeout: float) -> None:
    """Restart one service of a running environment, with the runner that started it."""
    from deploytool import pipeline, run
    from deploytool.spec.load import check_env_name

    check_env_name(env)
    folder = out or pipeline.default_out(spec, env)
    current = run.running_runner(folder)
    if current is None:
        raise UserError(f"{env}: nothing is running; start it with `deploytool up {env}`")
    with _up_progress(1) as on_event:
        status = current.restart(folder, os.environ, service, timeout, on_event)
    _echo(f"{status.state:9} {status.name:24} {status.url}")


def probe(
    spec: Path,
    env: str,
    out: Path | None,
    url: list[str] | None,
    fmt: str,
    output: Path | None,
    timeout: float,
    concurrency: int,
    interval: float,
) -> None:
    """Probe /health of every service and the QR endpoint of every tenant of a live deployment."""
    from deploytool import pipeline
    from deploytool import probe as probing

    if fmt not in probing.FORMATS:  # before any work: a typo must not cost a whole probe run
        raise UserError(f"--format: expected {', '.join(probing.FORMATS)}, got {fmt!r}")
    urls = probing.parse_url_options(url or [])
    # Targets come from the plan as the spec says now (not from a possibly stale manifest on disk).
    rendered = pipeline.render_environment(spec, env, out)
    manifest = rendered.manifest
    total = len(manifest.probe_targets)
    with probing.live_progress(total) as on_result:
        report = probing.probe_environment(
            manifest,
            rendered.ctx.out,
            urls,
            os.environ,
            timeout=timeout,
            concurrency=concurrency,
            interval=interval,
            on_result=on_result,
        )
    text = probing.format_report(report, fmt, color=fmt == "table" and output is None and sys.stdout.isatty())
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text)
    if output is None or fmt == "table":
        _echo(text.rstrip("\n"))
    if not report.ok:
        raise CheckFailed(f"{env}: probe failed")


def _railway(spec: Path, env: str, out: Path | None, action: Action, **flags: bool) -> int:
    from deploytool import railway_cli

    file, railway_env, warnings = railway_cli.prepare(spec, env, out)
    for warning in warnings:
        _warn(warning)
    cli = railway_cli.find_cli(os.environ)
    linked = railway_cli.linked_environment(cli, os.environ)
    railway_cli.require_link(railway_env, linked, env)
    _warn(f"{env}: railway config {action} --file {file} (linked to Railway environment {linked.name!r})")
    command = railway_cli.config_command(cli, action, file, **flags)
    return railway_cli.run_streaming(command, os.environ)


def railway_plan(spec: Path, env: str, out: Path | None, json_output: bool, detailed_exit_code: bool) -> int:
    """`railway config plan` of ENV's own file; refuses a drifted render or a link to another environment."""
    return _railway(spec, env, out, "plan", json_output=json_output, detailed_exit_code=detailed_exit_code)


def railway_apply(
    spec: Path, env: str, out: Path | None, json_output: bool, yes: bool, confirm_destructive: bool
) -> int:
    """`railway config apply` of ENV's own file; refuses a drifted render or a link to another environment."""
    from deploytool.railway_cli import ci_says_yes

    return _railway(
        spec,
        env,
        out,
        "apply",
        json_output=json_output,
        yes=yes or ci_says_yes(os.environ),
        confirm_destructive=confirm_destructive,
    )


# --- parsing ----------------------------------------------------------------------------------------


class UsageError(UserError):
    """A command line that does not parse; `main` prints it under the usage of the command it was for."""

    def __init__(self, message: str, usage: str) -> None:
        super().__init__(message)
        self.usage = usage


class _Exit(Exception):
    """--help or --version has printed everything: the call ends with this code."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class Parser(argparse.ArgumentParser):
    """argparse that raises instead of calling sys.exit, so `main` alone turns a call into an exit code."""

    is_command = False

    def parse_known_args(self, args: Iterable[str] | None = None, namespace: Any = None) -> tuple[Any, list[str]]:
        parsed, extra = super().parse_known_args(args, namespace)
        # A command's parser gets every argument after the command's name, so what it leaves over is
        # unknown to it; failing here prints its usage instead of the top-level one argparse would.
        if extra and self.is_command:
            self.error(f"unrecognized arguments: {' '.join(extra)}")
        return parsed, extra

    def error(self, message: str) -> NoReturn:
        raise UsageError(message, self.format_usage())

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            sys.stderr.write(message)
        raise _Exit(status)


class _IntRange:
    """An int option with bounds, refused at parse time like any other bad option value."""

    def __init__(self, low: int, high: int) -> None:
        self.low, self.high = low, high

    def __call__(self, text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a valid integer") from None
        if not self.low <= value <= self.high:
            raise argparse.ArgumentTypeError(f"{value} is not in the range {self.low}<=x<={self.high}")
        return value


class _HelpFormatter(argparse.HelpFormatter):
    """Each option's default and range after its help: `Lines per service. [default: 100; 1<=x<=100000]`."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24, width: int | None = None):
        # The width argparse would ask shutil for: every parser builds a formatter, and importing shutil
        # (with its compression modules) cost each command ~3 ms.
        if width is None:
            try:
                width = int(os.environ["COLUMNS"]) - 2
            except (KeyError, ValueError):
                try:
                    width = os.get_terminal_size(sys.__stdout__.fileno()).columns - 2  # type: ignore[union-attr]
                except (AttributeError, ValueError, OSError):
                    width = 78
        super().__init__(prog, indent_increment, max_help_position, width)

    def _get_help_string(self, action: argparse.Action) -> str | None:
        notes = []
        default = action.default
        if default is not None and default is not argparse.SUPPRESS and not isinstance(default, bool):
            notes.append("default: %(default)s")
        if isinstance(action.type, _IntRange):
            notes.append(f"{action.type.low}<=x<={action.type.high}")
        return f"{action.help} [{'; '.join(notes)}]" if notes else action.help


def _add_command(
    commands: argparse._SubParsersAction[Parser], name: str, function: Callable[..., int | None]
) -> Parser:
    """A subcommand whose help is `function`'s docstring (its first line in the list of commands)."""
    doc = function.__doc__ or ""
    parser = commands.add_parser(
        name, help=doc.split("\n", 1)[0], description=doc, formatter_class=_HelpFormatter, allow_abbrev=False
    )
    parser.is_command = True
    parser.set_defaults(command=function)
    return parser


def _path(text: str) -> Path:
    from pathlib import Path

    return Path(text)


def _add_env(parser: Parser) -> None:
    """ENV and --out, which every command on an environment takes."""
    parser.add_argument("env", metavar="ENV", help="Environment name: environments/ENV.yaml.")
    parser.add_argument(
        "--out", type=_path, metavar="PATH", help="Output folder (default: deploy/ENV beside the spec)."
    )


def _shows_help(parser: Parser) -> Callable[[], int]:
    """A group called without a command prints its help and fails, as `deploytool` alone does."""

    def show() -> int:
        parser.print_help(sys.stderr)
        return 2

    return show


def _validate_args(command: Parser) -> None:
    _add_env(command)


def _render_args(command: Parser) -> None:
    _add_env(command)
    command.add_argument("--check", action="store_true", help="Write nothing; exit 1 if files on disk differ.")


def _init_args(command: Parser) -> None:
    command.add_argument(
        "folder", type=_path, nargs="?", default=".", metavar="FOLDER", help="Project folder (default: here)."
    )
    command.add_argument("--project", metavar="NAME", help="Project name (lowercase, dashes).")
    command.add_argument("--topology", metavar="TOPOLOGY", help="per-port, shared or sharded.")
    command.add_argument("--tenants", metavar="IDS", help="Comma-separated tenant ids, e.g. 1,2,3.")
    command.add_argument("--targets", metavar="TARGETS", help="Comma-separated: local, compose, railway.")
    command.add_argument("--web-port", type=int, default=5002, metavar="PORT", help="Port of the Flask app.")
    command.add_argument(
        "--whatsapp-port", type=int, default=5001, metavar="PORT", help="First port of the WhatsApp servers."
    )
    command.add_argument("--repo", metavar="OWNER/NAME", help="GitHub owner/name (railway target).")


def _schema_args(command: Parser) -> None:
    command.add_argument(
        "--format",
        dest="fmt",
        default="json",
        metavar="FORMAT",
        help="json (JSON Schema, for editors) or markdown (docs).",
    )


def _up_args(command: Parser) -> None:
    _add_env(command)
    command.add_argument(
        "--runner", default="procfile", metavar="RUNNER", help="procfile (processes here) or compose (needs Docker)."
    )
    command.add_argument(
        "--timeout", type=float, default=90.0, metavar="SECONDS", help="Seconds to wait for every /health."
    )


def _down_args(command: Parser) -> None:
    _add_env(command)
    command.add_argument(
        "--volumes", action="store_true", help="Also remove the data volumes (WhatsApp sessions, database)."
    )


def _logs_args(command: Parser) -> None:
    _add_env(command)
    command.add_argument("service", nargs="?", metavar="SERVICE", help="One service (default: all).")
    command.add_argument("--lines", type=_IntRange(1, 100_000), default=100, metavar="N", help="Lines per service.")
    command.add_argument("-f", "--follow", action="store_true", help="Keep printing new lines (Ctrl-C stops).")


def _restart_args(command: Parser) -> None:
    _add_env(command)
    command.add_argument("service", metavar="SERVICE", help="The service to restart (see `deploytool ps ENV`).")
    command.add_argument(
        "--timeout", type=float, default=90.0, metavar="SECONDS", help="Seconds to wait for its /health."
    )


def _probe_args(command: Parser) -> None:
    _add_env(command)
    command.add_argument(
        "--url", action="append", metavar="SERVICE=URL", help="SERVICE=URL of a remote service; repeatable."
    )
    command.add_argument("--format", dest="fmt", default="table", metavar="FORMAT", help="table, json or junit.")
    command.add_argument("--output", type=_path, metavar="FILE", help="Write the report to FILE.")
    command.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="Seconds each target may take, retries included.",
    )
    command.add_argument(
        "--concurrency", type=_IntRange(1, 256), default=16, metavar="N", help="Targets probed at once."
    )
    command.add_argument(
        "--interval", type=float, default=1.0, metavar="SECONDS", help="Seconds between retries of one target."
    )


JSON_HELP = "Pass --json: the Railway CLI prints its raw JSON."


def _railway_plan_args(command: Parser) -> None:
    _add_env(command)
    command.add_argument("--json", dest="json_output", action="store_true", help=JSON_HELP)
    command.add_argument(
        "--detailed-exit-code",
        action="store_true",
        help="Pass --detailed-exit-code: exit 2 when changes are pending.",
    )


def _railway_apply_args(command: Parser) -> None:
    _add_env(command)
    command.add_argument("--json", dest="json_output", action="store_true", help=JSON_HELP)
    command.add_argument("--yes", action="store_true", help="Pass --yes: apply without asking (implied by CI=true).")
    command.add_argument(
        "--confirm-destructive",
        action="store_true",
        help="Pass --confirm-destructive: allow removals without a prompt.",
    )


# Every command: its name, what it runs, and its own arguments, in the order `--help` lists them.
COMMANDS: tuple[tuple[str, Callable[..., int | None], Callable[[Parser], None]], ...] = (
    ("validate", validate, _validate_args),
    ("render", render, _render_args),
    ("show", show, _validate_args),
    ("init", init, _init_args),
    ("schema", schema, _schema_args),
    ("up", up, _up_args),
    ("down", down, _down_args),
    ("ps", ps, _validate_args),
    ("logs", logs, _logs_args),
    ("restart", restart, _restart_args),
    ("probe", probe, _probe_args),
)
RAILWAY_COMMANDS: tuple[tuple[str, Callable[..., int | None], Callable[[Parser], None]], ...] = (
    ("plan", railway_plan, _railway_plan_args),
    ("apply", railway_apply, _railway_apply_args),
)
RAILWAY_HELP = "Plan or apply ENV's Railway file with Railway's CLI, only while it is linked to ENV's environment."


def _command_named(args: Sequence[str]) -> str | None:
    """The command `args` name, when they name a known one without asking for help; else None."""
    rest = list(args)
    while rest and rest[0].startswith("-"):
        option = rest.pop(0)
        if option == "--spec" and rest:
            rest.pop(0)  # its value
        elif option != "--spec" and not option.startswith("--spec="):
            return None  # --help, --version, a typo: the whole parser answers
    known = {name for name, _, _ in COMMANDS} | {"railway"}
    return rest[0] if rest and rest[0] in known else None


def build_parser(args: Sequence[str] | None = None) -> Parser:
    """The command line; parsing runs nothing, so tests can check a command line with it.

    Given the arguments, only the parser of the command they name is built: each parser costs argparse a
    few translation lookups, and all of them were a tenth of `validate dev`. Help, a typo or no command
    gets the whole parser."""
    wanted = _command_named(args) if args is not None else None
    parser = Parser(
        prog="deploytool",
        description="One spec -> every deployment artifact of a multi-tenant Flask + WhatsApp system.",
        formatter_class=_HelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument(
        "--spec",
        type=_path,
        default="deploytool.yaml",  # a string default goes through `type` too
        metavar="PATH",
        help="Spec file; overlays are read from environments/ beside it.",
    )
    parser.add_argument(
        "--version", action="version", version=f"deploytool {__version__}", help="Print the version and exit."
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    for name, function, arguments in COMMANDS:
        if wanted in (None, name):
            arguments(_add_command(commands, name, function))
    if wanted in (None, "railway"):
        railway = commands.add_parser(
            "railway", help=RAILWAY_HELP, description=RAILWAY_HELP, formatter_class=_HelpFormatter, allow_abbrev=False
        )
        railway.is_command = True
        railway.set_defaults(command=_shows_help(railway))
        actions = railway.add_subparsers(title="commands", metavar="COMMAND")
        for name, function, arguments in RAILWAY_COMMANDS:
            arguments(_add_command(actions, name, function))
    return parser


def _run(args: argparse.Namespace) -> int:
    """Call the parsed command with the parsed values its parameters name (`spec` included when it has one)."""
    command: Callable[..., int | None] = args.command
    code = command.__code__
    names = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
    return command(**{name: getattr(args, name) for name in names}) or 0


def main(argv: list[str] | None = None) -> int:
    """Entry point: the only place exceptions become messages and exit codes (0 ok, 1 checks, 2 input)."""
    args = sys.argv[1:] if argv is None else argv
    parser = build_parser(args)
    try:
        if not args:  # `deploytool` alone is a usage error that explains itself (exit 2, as it always was)
            parser.print_help(sys.stderr)
            return 2
        return _run(parser.parse_args(args))
    except _Exit as exc:
        return exc.code
    except UsageError as exc:
        sys.stderr.write(exc.usage)
        _warn(f"error: {exc}")
        return 2
    except (KeyboardInterrupt, EOFError):  # EOF: Ctrl-D at one of `init`'s questions
        _warn("\naborted")
        return 130
    except DeploytoolError as exc:
        _warn(f"error: {exc}" if isinstance(exc, UserError) else str(exc))
        return exc.exit_code


def entry() -> None:
    # A short-lived process building one big tree of small objects: the default GC thresholds spend a
    # third of a 1,000-tenant render scanning objects that are never garbage (see benchmarks/render.py).
    # Only here, in the process entry point: `main` is also called in-process (tests, fuzzing), where a
    # freeze per call would keep every object of every call forever.
    gc.freeze()
    gc.set_threshold(200_000, 50, 100)
    sys.exit(main())
