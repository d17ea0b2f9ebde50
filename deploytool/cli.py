"""Thin commands: parse flags (typer), call the pipeline, print. `main` is the one place errors become exit codes.

Startup is part of every command's time: each command imports what it uses (the pipeline, pydantic
models, yaml, jinja2, railway-sdk, requests) when it runs, so `--help` pays for typer alone and `down`
never pays for `render`'s. Help is plain text: rendering it with rich costs more than the rest of `--help`.
"""

from __future__ import annotations

import gc
import math
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Optional, cast

import typer

from deploytool import __version__
from deploytool.errors import CheckFailed, DeploytoolError, OutputFailed, UserError

if TYPE_CHECKING:
    from deploytool.pipeline import Rendered
    from deploytool.railway_cli import Action
    from deploytool.releases import Release
    from deploytool.run import Event

app = typer.Typer(
    name="deploytool",
    help="One spec -> every deployment artifact of a multi-tenant Flask + WhatsApp system.",
    no_args_is_help=True,
    # --install-completion / --show-completion; a shell's completion request (`_DEPLOYTOOL_COMPLETE` set)
    # is answered before any parsing, and `main` turns its sys.exit into a return code.
    add_completion=True,
    pretty_exceptions_show_locals=False,  # a crash must never print a secret held in a local
    rich_markup_mode=None,  # plain help: rendering it with rich costs more than the rest of `--help`
    context_settings={"help_option_names": ["-h", "--help"]},  # -h as well, as the argparse CLI had
)


def _environments(ctx: typer.Context, incomplete: str) -> list[str]:
    """ENV completes to the names in environments/ beside this call's spec (a shell's TAB, not a check)."""
    root = ctx.find_root()
    given = _given(root, "spec")
    spec = Path(root.params["spec"]) if given and root.params.get("spec") else _search_spec()
    folder = spec.parent / "environments"
    names = (p.stem for p in folder.glob("*.yaml") if "." not in p.stem)  # not dev.local.yaml
    return sorted(name for name in names if name.startswith(incomplete))


def _given(ctx: Any, name: str) -> bool:
    """True when the option was given (on the line or in the environment), not left at its default."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")


def _search_spec() -> Path:
    """deploytool.yaml here or in the nearest folder above (as git and Compose look); here when none is."""
    from deploytool.spec.load import SPEC_FILE, find_spec

    return find_spec(Path.cwd()) or Path(SPEC_FILE)


def _int_range(low: int, high: int) -> Callable[[str], int]:
    """An int option's parser with click's wording (`0 is not in the range 1<=x<=256.`): typer's own
    check words it as pydantic does and leaves out the other bound. `min`/`max` stay for the help."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise typer.BadParameter(f"{text!r} is not a valid integer.") from None
        if not low <= value <= high:
            raise typer.BadParameter(f"{value} is not in the range {low}<=x<={high}.")
        return value

    return parse


def _seconds(high: float) -> Callable[[str], float]:
    """A duration option's parser: a finite number of seconds above 0 and at most `high` (`inf`, `nan`, 0 or
    a negative would wait forever or fail only after `up` has started the services)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise typer.BadParameter(f"{text!r} is not a valid number of seconds.") from None
        if not (math.isfinite(value) and 0 < value <= high):
            raise typer.BadParameter(f"{text} is not in the range 0<x<={high:g} (seconds).")
        return value

    return parse


MAX_WAIT_S = 3600.0  # --timeout: an hour is longer than any start or probe should take
MAX_INTERVAL_S = 60.0  # --interval: between two tries of one probe target

SpecOption = Annotated[
    Path, typer.Option("--spec", metavar="PATH", help="Spec file; overlays are read from environments/ beside it.")
]
OutOption = Annotated[
    Optional[Path],
    typer.Option("--out", metavar="PATH", help="Output folder (default: deploy/ENV beside the spec)."),
]
EnvArgument = Annotated[
    str,
    typer.Argument(
        metavar="ENV",
        help="Environment name: environments/ENV.yaml.",
        show_default=False,
        autocompletion=_environments,
    ),
]


ProjectOption = Annotated[
    Optional[str],
    typer.Option(
        metavar="NAME",
        help="--runner compose: the Compose project (like `docker compose -p`; default: <project>-<env>-<hash of "
        "the output folder>, also DEPLOYTOOL_COMPOSE_PROJECT).",
    ),
]


SetOption = Annotated[
    Optional[list[str]],
    typer.Option(
        "--set",
        metavar="PATH=VALUE",
        help="Override one spec field for this run, after every overlay (a YAML value, e.g. "
        "services.web.port=5202; null removes it); repeatable.",
    ),
]


# releases (issue 30): `up` and `railway apply` keep the newest N
KeepOption = Annotated[
    int,
    typer.Option(
        min=1,
        max=100,
        parser=_int_range(1, 100),
        metavar="N",
        help="Releases kept in ENV's history (the live one too).",
    ),
]


def _run_environ(**options: object) -> dict[str, str]:
    """os.environ plus the compose runner's options as its DEPLOYTOOL_* variables (flags win over the shell)."""
    names = {"project_name": "PROJECT", "build_network": "BUILD_NETWORK", "build_timeout": "BUILD_TIMEOUT"}
    environ = dict(os.environ)
    for key, value in options.items():
        if value is not None:
            prefix = "DEPLOYTOOL_COMPOSE_" if key == "project_name" else "DEPLOYTOOL_"
            environ[prefix + names[key]] = str(value)
    return environ


def _spec(ctx: typer.Context) -> Path:
    """The --spec of this invocation, kept on typer's context object (no module state between calls).

    Without --spec: deploytool.yaml here or in the nearest folder above, named on stderr when not here."""
    obj = ctx.find_root().obj
    if isinstance(obj, Path):
        return obj
    found = _search_spec()
    if not found.is_absolute():
        raise UserError(f"{found}: spec file not found here ({Path.cwd()}) or in any folder above (pass --spec PATH)")
    if found.parent != Path.cwd().resolve():
        _warn(f"spec: {found} (found above the current folder)")
    return found


def _render(ctx: typer.Context, env: str, out: Path | None, sets: list[str] | None = None) -> Rendered:
    """Load, plan and render ENV in memory; says on stderr what was applied over the committed spec."""
    from deploytool import pipeline

    rendered = pipeline.render_environment(_spec(ctx), env, out, sets or ())
    _warn_overrides(env, rendered)
    return rendered


def _warn_overrides(env: str, rendered: Rendered) -> None:
    if rendered.loaded.overrides:
        _warn(
            f"{env}: local overrides applied: {', '.join(rendered.loaded.overrides)} (not in the committed spec; "
            f"files in {rendered.ctx.out_rel}/, never in the committed folder)"
        )


def _echo(text: str = "") -> None:
    if sys.stdout is None:  # started with stdout closed (`>&-`): what the command says would be lost unseen
        raise OutputFailed("error: stdout: closed; nothing can be printed (run it with stdout open)")
    try:
        typer.echo(text)
    except BrokenPipeError:
        raise  # the reader went away (`| head -1`): `entry` ends quietly, as a shell pipeline does
    except OSError as exc:  # `>/dev/full`, an I/O error: one line on stderr, not a traceback
        raise OutputFailed(f"error: stdout: cannot write: {exc.strerror or exc}") from None


def _warn(text: str) -> None:
    typer.echo(text, err=True)


def _as_up_had_it(folder: Path, environ: Mapping[str, str]) -> dict[str, str]:
    """`environ` with what `up` took from its shell put back (DATABASE_URL, REDIS_URL), said when this shell's
    differs (names only: the values are never printed)."""
    from deploytool.run.environment import as_up_had_it

    taken = as_up_had_it(folder, environ)
    note = taken.note(folder)
    if note:
        _warn(note)
    return taken.environ


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


def _version(value: bool) -> None:
    if value:
        _echo(f"deploytool {__version__}")
        raise typer.Exit(0)


@app.callback()
def _global(
    ctx: typer.Context,
    spec: SpecOption = Path("deploytool.yaml"),
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    ctx.obj = spec if _given(ctx, "spec") else None  # None: search upward


def _report_findings(findings: list) -> None:  # type: ignore[type-arg]
    for finding in findings:
        (_echo if finding.severity == "error" else _warn)(str(finding))


@app.command()
def validate(ctx: typer.Context, env: EnvArgument, out: OutOption = None, sets: SetOption = None) -> None:
    """Check the spec, the plan and the rendered files (Compose schema + config, railway-sdk). No network.

    A consumer that is not installed is named as skipped (a warning; an error under CI=true)."""
    import dataclasses

    from deploytool import pipeline
    from deploytool.plan.model import CHECK_SKIPPED

    # CI checks what is committed: a local overlay on a CI machine must not hide (or cause) a failure
    from deploytool.railway_cli import ci_says_yes

    ci = ci_says_yes(os.environ)
    rendered, findings = pipeline.validate_environment(_spec(ctx), env, out, sets or (), local=not ci)
    if ci:  # a green CI run means every consumer saw the files
        findings = [dataclasses.replace(f, severity="error") if f.code == CHECK_SKIPPED else f for f in findings]
    _warn_overrides(env, rendered)
    _report_findings(findings)
    failed = pipeline.errors(findings)
    if failed:
        raise CheckFailed(f"{env}: {len(failed)} check(s) failed")
    skipped = sum(f.code == CHECK_SKIPPED for f in findings)
    _echo(
        f"{env}: ok ({len(rendered.plan.services)} services, {len(rendered.plan.tenants)} tenants, "
        f"{len(rendered.artifacts)} artifacts)" + (f"; {skipped} consumer check(s) skipped" if skipped else "")
    )


@app.command()
def render(
    ctx: typer.Context,
    env: EnvArgument,
    out: OutOption = None,
    check: Annotated[bool, typer.Option("--check", help="Write nothing; exit 1 if files on disk differ.")] = False,
    sets: SetOption = None,
) -> None:
    """Write every artifact of ENV (atomically), or with --check compare them with the disk."""
    from deploytool import pipeline

    if check and sets:
        raise UserError("render --check compares the committed spec with the committed files; --set does not apply")
    # --check compares what CI compares: the committed spec alone, never this checkout's local overlay
    # `validate` also runs the slow consumers; each target's checks start as soon as its files are rendered
    if check:
        rendered, findings = pipeline.validate_environment(_spec(ctx), env, out, local=False, deep=False)
    else:
        rendered, findings = pipeline.validate_environment(_spec(ctx), env, out, sets or (), deep=False)
        _warn_overrides(env, rendered)
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
    from deploytool import run

    running = run.running_runner(rendered.ctx.out)
    if running is not None:  # releases (issue 30): what the next `up` does to tenants
        _impact(rendered, running.name)
    from deploytool.output.secrets import SECRETS_FILE, git_ignored

    if (rendered.ctx.out / SECRETS_FILE).is_file():
        shown = rendered.ctx.in_out(SECRETS_FILE)
        ignored = git_ignored(rendered.ctx.out / SECRETS_FILE)  # None: not in a git work tree, or no git
        if added:
            _echo(f"secrets   {shown}: generated {', '.join(added)} ({'git-ignored, ' if ignored else ''}0600)")
        if ignored is False:
            _warn(f"warning: {shown} is not git-ignored: add `{SECRETS_FILE}` to .gitignore before `git add`")


TableOrJson = Annotated[str, typer.Option("--format", metavar="FORMAT", help="table (default) or json.")]


def _table_or_json(form: str) -> bool:
    """True for json; UserError naming the choices for anything but table and json."""
    if form not in ("table", "json"):
        raise UserError(f"--format: expected table or json, got {form!r}")
    return form == "json"


def _json(data: object) -> None:
    import json

    _echo(json.dumps(data, indent=2, sort_keys=True))


@app.command()
def show(
    ctx: typer.Context,
    env: EnvArgument,
    out: OutOption = None,
    sets: SetOption = None,
    form: Annotated[str, typer.Option("--format", metavar="FORMAT", help="yaml (default) or json.")] = "yaml",
) -> None:
    """Print the resolved plan of ENV, secrets redacted."""
    import yaml

    from deploytool.show import describe_plan

    if form not in ("yaml", "json"):
        raise UserError(f"--format: expected yaml or json, got {form!r}")
    rendered = _render(ctx, env, out, sets)
    document = describe_plan(rendered.plan, rendered.ctx)
    if form == "json":
        import json

        _echo(json.dumps(document, indent=2))  # the plan's own order, as the YAML has it
        return
    _echo(yaml.safe_dump(document, sort_keys=False, width=120).rstrip())


@app.command("env")
def env_command(
    ctx: typer.Context,
    env: EnvArgument,
    service: Annotated[str, typer.Argument(metavar="SERVICE", help="The process (e.g. web, whatsapp-1).")],
    target: Annotated[
        Optional[str],
        typer.Option(metavar="TARGET", help="local or compose (default: ENV's first target that runs processes)."),
    ] = None,
    form: Annotated[
        str, typer.Option("--format", metavar="FORMAT", help="dotenv (the env file), json or shell (export lines).")
    ] = "dotenv",
    reveal: Annotated[
        bool,
        typer.Option(
            "--reveal", help="Secrets' values (from the environment, else .secrets.env) instead of their names."
        ),
    ] = False,
    out: OutOption = None,
    sets: SetOption = None,
) -> None:
    """Print SERVICE's variables as its env file has them: eval "$(deploytool env dev web --format shell --reveal)"."""
    from deploytool.envcmd import FORMATS, formatted, process_variables

    if form not in FORMATS:
        raise UserError(f"--format {form}: expected one of {', '.join(FORMATS)}")
    result = process_variables(_spec(ctx), env, service, target, out, sets or (), os.environ if reveal else None, form)
    typer.echo(formatted(result, form), nl=False)


@app.command()
def init(
    folder: Annotated[Path, typer.Argument(metavar="FOLDER", help="Project folder (default: here).")] = Path("."),
    project: Annotated[Optional[str], typer.Option(metavar="NAME", help="Project name (lowercase, dashes).")] = None,
    topology: Annotated[Optional[str], typer.Option(metavar="TOPOLOGY", help="per-port, shared or sharded.")] = None,
    tenants: Annotated[
        Optional[str], typer.Option(metavar="IDS", help="Comma-separated tenant ids, e.g. 1,2,3.")
    ] = None,
    targets: Annotated[
        Optional[str], typer.Option(metavar="TARGETS", help="Comma-separated: local, compose, railway.")
    ] = None,
    web_port: Annotated[int, typer.Option(metavar="PORT", help="Port of the Flask app.")] = 5002,
    whatsapp_port: Annotated[int, typer.Option(metavar="PORT", help="First port of the WhatsApp servers.")] = 5001,
    repo: Annotated[
        Optional[str], typer.Option(metavar="OWNER/NAME", help="GitHub owner/name (railway target).")
    ] = None,
) -> None:
    """Start a new project: write deploytool.yaml and environments/*.yaml (asks what flags leave open)."""
    from deploytool.init import parse_answers, spec_files, write_new

    def ask(value: str | None, question: str, default: str) -> str:
        if value is not None:
            return value
        return str(typer.prompt(question, default=default)) if sys.stdin.isatty() else default

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
    for done, rel in written:
        _echo(f"{done:9} {folder / rel}")
    _echo(
        f"next: put your services in {answers.web_source}/ and {answers.whatsapp_source}/, then "
        f"`deploytool --spec {folder / 'deploytool.yaml'} validate dev`"
    )


@app.command()
def schema(
    fmt: Annotated[
        str, typer.Option("--format", metavar="FORMAT", help="json (JSON Schema, for editors) or markdown (docs).")
    ] = "json",
) -> None:
    """Print the JSON Schema of deploytool.yaml (for editors), or the reference as Markdown."""
    import json

    from deploytool.spec.model import Spec

    if fmt == "markdown":
        from deploytool.spec.reference import spec_reference

        _echo(spec_reference().rstrip("\n"))
        return
    if fmt != "json":
        raise UserError(f"--format: expected json or markdown, got {fmt!r}")
    _echo(json.dumps(Spec.model_json_schema(by_alias=True), indent=2, sort_keys=True))


@app.command()
def up(
    ctx: typer.Context,
    env: EnvArgument,
    out: OutOption = None,
    runner: Annotated[
        str, typer.Option(metavar="RUNNER", help="procfile (processes here) or compose (needs Docker).")
    ] = "procfile",
    timeout: Annotated[
        float,
        typer.Option(parser=_seconds(MAX_WAIT_S), metavar="SECONDS", help="Seconds to wait for every /health."),
    ] = 90.0,
    project_name: ProjectOption = None,
    build_timeout: Annotated[
        Optional[float],
        typer.Option(metavar="SECONDS", help="--runner compose: seconds for building the images (default 900)."),
    ] = None,
    build_network: Annotated[
        Optional[str],
        typer.Option(
            metavar="NETWORK",
            help="--runner compose: network for image builds, e.g. host where containers have no NAT (default: "
            "scripts/engine's choice for its own engine, else the engine's).",
        ),
    ] = None,
    sets: SetOption = None,
    keep: KeepOption = 5,
    rollback_on_failure: Annotated[
        bool,
        typer.Option("--rollback-on-failure", help="--runner compose: on a failure, start the previous release again."),
    ] = False,
    force_recreate: Annotated[
        bool, typer.Option("--force-recreate", help="On a running ENV, restart every service, changed or not.")
    ] = False,
) -> None:
    """Render ENV if needed, start it, and return once every service is healthy.

    On a running ENV, like `docker compose up -d`: start what is missing, restart what changed, leave the rest."""
    from deploytool import pipeline, run
    from deploytool.targets import target_of_runner

    chosen = run.runner(runner)
    if rollback_on_failure and runner not in _ROLLBACKS:
        raise UserError(f"--rollback-on-failure: --runner {runner} has no rollback (it runs from source)")
    needed = target_of_runner(runner)
    rendered = _render(ctx, env, out, sets)
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
    _impact(rendered, runner)  # releases (issue 30): what this `up` does to tenants
    with _up_progress(len(rendered.plan.services)) as on_event:
        environ = _run_environ(project_name=project_name, build_timeout=build_timeout, build_network=build_network)
        # releases (issue 30): every `up` is a release, a failed one too
        try:
            statuses = chosen.up(rendered.ctx.out, environ, timeout, on_event, force_recreate)
        except DeploytoolError as exc:
            if isinstance(exc, UserError):  # refused before anything started (a port taken, already running)
                raise
            failed = _record_up(rendered, runner, "failed", keep, environ, note=str(exc).strip().splitlines()[-1][:200])
            if rollback_on_failure:
                _warn(str(exc) if not isinstance(exc, UserError) else f"error: {exc}")
                _warn(f"{env}: release {failed.number} failed; rolling back (--rollback-on-failure)")
                _ROLLBACKS[runner](ctx, env, out, None, timeout, keep)
                raise CheckFailed(f"{env}: release {failed.number} failed and was rolled back") from None
            raise
    release = _record_up(rendered, runner, "live", keep, environ)
    _echo(f"{env}: release {release.number} ({runner}); see `deploytool releases {env}`")
    for status in statuses:
        _echo(f"{status.state:9} {status.name:24} {status.url}")
    _echo(f"{env}: {len(statuses)} services up ({runner}); stop them with `deploytool down {env}`")
    from deploytool import tenant_import

    hint = (tenant_import.file_sessions_hint if runner == "procfile" else tenant_import.volume_sessions_hint)(
        rendered.ctx.out, env, environ
    )
    if hint:
        _warn(hint)


# --- releases (issue 30) -----------------------------------------------------------------------------------


def _record_up(
    rendered: Rendered,
    runner: str,
    status: Literal["live", "failed"],
    keep: int,
    environ: dict[str, str],
    note: str | None = None,
) -> Release:
    """Write the release of this `up`; with compose, its images and (live) the tags that keep them."""
    from deploytool import releases
    from deploytool.impact import planned_services

    manifest = rendered.manifest
    images = _RELEASE_IMAGES.get(runner)
    plain = planned_services(rendered.plan)
    services: dict[str, releases.ServiceRelease] = {}

    artifacts = releases.artifact_hashes(manifest.artifacts, manifest.spec_artifacts)

    def build(number: int) -> Release:
        services.update(plain)
        files = None
        if images is not None:
            for name, image in images.services(rendered.ctx.out, environ, number, status == "live").items():
                kept = plain.get(name, releases.ServiceRelease())
                services[name] = kept.model_copy(update=image.model_dump(exclude_none=True))
            if status == "live":  # what a rollback to this release runs (never .secrets.env)
                files = images.keep_files(rendered.ctx.out, number, artifacts)
        return releases.new_release(
            number,
            target=cast("releases.Target", runner),  # a release's target is the runner's name
            status=status,
            spec_folder=rendered.loaded.root,
            artifacts=artifacts,
            services=services,
            note=note,
            files=files,
        )

    dropped = None if images is None else lambda gone: images.untag(rendered.ctx.out, environ, gone)
    made = releases.add_release(rendered.ctx.out, rendered.plan.env_name, build, keep, dropped)
    if images is not None and status == "live":
        images.tag(environ, made)
    return made


class _ComposeImages:
    """What `up --runner compose` keeps per release (deploytool/compose_releases.py)."""

    @staticmethod
    def services(out: Path, environ: dict[str, str], number: int, keep_tag: bool) -> dict[str, Any]:
        from deploytool import compose_releases
        from deploytool.run.compose import project_name

        images = compose_releases.built_images(out, project_name(out, environ))
        found = compose_releases.release_services(environ, images, number)
        return found if keep_tag else {k: v.model_copy(update={"tag": None}) for k, v in found.items()}

    @staticmethod
    def tag(environ: dict[str, str], release: Release) -> None:
        from deploytool import compose_releases

        compose_releases.tag_release(environ, release)

    @staticmethod
    def keep_files(out: Path, number: int, artifacts: dict[str, str]) -> tuple[str, ...]:
        from deploytool import compose_releases

        return compose_releases.keep_files(out, number, artifacts)

    @staticmethod
    def untag(out: Path, environ: dict[str, str], dropped: Any) -> None:
        from deploytool import compose_releases

        compose_releases.untag(environ, dropped)
        compose_releases.drop_files(out, dropped)


_RELEASE_IMAGES: dict[str, _ComposeImages] = {"compose": _ComposeImages()}


def _impact(rendered: Rendered, target: str, say: Callable[[str], None] | None = None) -> None:
    """Print the tenant impact of `rendered` against the live `target` release of its folder, if any."""
    from deploytool import releases
    from deploytool.impact import impact_lines

    if not releases.store_path(rendered.ctx.out).is_file():
        return
    live = releases.read_store(rendered.ctx.out, rendered.plan.env_name).live(target)
    for line in impact_lines(rendered.plan, live, releases.last_probe_states(rendered.ctx.out)):
        (say or _echo)(f"{rendered.plan.env_name}: {line}")


@app.command("releases")
def releases_command(
    ctx: typer.Context,
    env: EnvArgument,
    out: OutOption = None,
    fmt: Annotated[str, typer.Option("--format", metavar="FORMAT", help="table or json.")] = "table",
) -> None:
    """ENV's release history, newest first: each `up` and `railway apply`, with its status."""
    from deploytool import pipeline, releases
    from deploytool.spec.load import check_env_name

    if fmt not in ("table", "json"):
        raise UserError(f"--format: expected table or json, got {fmt!r}")
    check_env_name(env)
    folder = out or pipeline.default_out(_spec(ctx), env)
    store = releases.read_store(folder, env)
    if fmt == "json":
        _echo(releases.as_json(store))
        return
    if not store.releases:
        _echo(f"{env}: no releases yet (`deploytool up {env}` or `deploytool railway apply {env}` records one)")
        return
    for line in releases.table(store):
        _echo(line)


@app.command()
def rollback(
    ctx: typer.Context,
    env: EnvArgument,
    to: Annotated[
        Optional[int],
        typer.Option("--to", metavar="N", help="The release to go back to (default: the one before the live one)."),
    ] = None,
    out: OutOption = None,
    timeout: Annotated[
        float, typer.Option(parser=_seconds(MAX_WAIT_S), metavar="SECONDS", help="Seconds for each service.")
    ] = 600.0,
    keep: KeepOption = 5,
) -> None:
    """Go back to the previous (or the named) release of ENV, on the target that release ran on."""
    from deploytool import pipeline, releases
    from deploytool.spec.load import check_env_name

    check_env_name(env)
    folder = out or pipeline.default_out(_spec(ctx), env)
    store = releases.read_store(folder, env)
    named = store.get(to) if to is not None else None
    newest = store.newest_first()
    target = named.target if named is not None else newest[0].target if newest else None
    if target is None:
        raise UserError(f"{env}: no releases yet; nothing to roll back (see `deploytool releases {env}`)")
    handler = _ROLLBACKS.get(target)
    if handler is None:
        number = (named or newest[0]).number
        raise UserError(f"{env}: release {number} ran with {target}; rollback knows {', '.join(sorted(_ROLLBACKS))}")
    handler(ctx, env, out, to, timeout, keep)


def _rollback_railway(
    ctx: typer.Context, env: str, out: Path | None, to: int | None, timeout: float, keep: int
) -> None:
    from deploytool import pipeline, railway_cli
    from deploytool.railway_deploy import rollback_to

    rendered = pipeline.render_environment(_spec(ctx), env, out, local=False)
    cli = railway_cli.find_cli(os.environ)
    railway_env = rendered.plan.railway.environment
    railway_cli.require_link(railway_env, railway_cli.linked_environment(cli, os.environ), env)
    rollback_to(_railway_env(rendered, cli, rendered.loaded.root, railway_env), to, timeout, keep, _echo)


def _on_railway(
    ctx: typer.Context, env: str, out: Path | None, targets: list[str]
) -> tuple[str, dict[str, str], Path, str] | None:
    """(cli, environ, folder, Railway environment) when ENV, not running here, is on Railway; else None."""
    from deploytool.targets.railway import RailwayTarget

    if RailwayTarget.target.value not in targets:
        return None
    from deploytool import pipeline, railway_cli

    rendered = pipeline.render_environment(_spec(ctx), env, out, local=False)
    return railway_cli.find_cli(os.environ), dict(os.environ), rendered.loaded.root, rendered.plan.railway.environment


def _rollback_compose(
    ctx: typer.Context, env: str, out: Path | None, to: int | None, timeout: float, keep: int
) -> None:
    from deploytool import compose_releases, pipeline

    folder = (out or pipeline.default_out(_spec(ctx), env)).resolve()
    compose_releases.rollback_to(folder, env, _spec(ctx).parent, to, timeout, keep, _run_environ(), _echo, _warn)


# rollback ENV, by the target the release ran on
_ROLLBACKS: dict[str, Callable[[typer.Context, str, Path | None, int | None, float, int], None]] = {
    "railway": _rollback_railway,
    "compose": _rollback_compose,
}


RMI_CHOICES = ("local",)  # like `docker compose down --rmi local`: the images built here, without an `image:` name


@app.command()
def down(
    ctx: typer.Context,
    env: EnvArgument,
    out: OutOption = None,
    volumes: Annotated[
        bool, typer.Option("--volumes", help="Also remove the data volumes (WhatsApp sessions, database).")
    ] = False,
    project_name: ProjectOption = None,
    rmi: Annotated[
        Optional[str],
        typer.Option(
            "--rmi",
            metavar="local",
            help="--runner compose: also remove the images this environment built (not the pulled ones).",
        ),
    ] = None,
) -> None:
    """Stop everything `up` started for ENV (processes or compose), and nothing else."""
    from deploytool import pipeline, run
    from deploytool.spec.load import check_env_name

    check_env_name(env)
    folder = out or pipeline.default_out(_spec(ctx), env)
    if rmi is not None and rmi not in RMI_CHOICES:  # `all` would remove the pulled postgres and redis images too
        raise UserError(f"--rmi: expected local (the images this environment built), got {rmi!r}")
    environ = _run_environ(project_name=project_name)
    stopped = run.down(folder, environ, volumes=volumes, rmi_local=rmi is not None)
    if rmi is not None:  # releases (issue 30): their `:rN` tags keep the built images alive; --rmi asks them gone
        from deploytool import compose_releases, releases

        tagged = [r for r in releases.read_store(folder, env).releases if any(s.tag for s in r.services.values())]
        if tagged:
            compose_releases.untag(environ, tagged)
            _warn(
                f"{env}: removed the image tags of release(s) {', '.join(str(r.number) for r in tagged)}; "
                "`rollback` to them needs their images again (`up` builds anew)"
            )
    _echo(f"{env}: stopped {', '.join(stopped)}" if stopped else f"{env}: nothing was running")


@app.command()
def ps(
    ctx: typer.Context,
    env: EnvArgument,
    out: OutOption = None,
    project_name: ProjectOption = None,
    form: TableOrJson = "table",
) -> None:
    """What runs for ENV: every service and add-on with its runner, state, exit code, uptime, port and tenants.

    Exit 1 when ENV was started and one of them does not run (stopped, unhealthy, not created)."""
    from dataclasses import asdict

    from deploytool import pipeline, run
    from deploytool.output import read_manifest
    from deploytool.spec.load import check_env_name

    check_env_name(env)
    as_json = _table_or_json(form)
    folder = out or pipeline.default_out(_spec(ctx), env)
    manifest = read_manifest(folder)
    remote = _on_railway(ctx, env, out, manifest.targets) if run.running_runner(folder) is None else None
    if remote is not None:  # releases (issue 30): an environment on Railway, not running here
        from deploytool.railway_deploy import remote_ps, remote_rows

        found = remote_rows(*remote, [svc.name for svc in manifest.services])
        if as_json:
            _json(found)
        else:
            for line in remote_ps(found):
                _echo(line)
        broken = [row["service"] for row in found if row["state"] in ("FAILED", "CRASHED", "NO DEPLOYMENT", "REMOVED")]
        if broken:
            raise CheckFailed(f"{env}: not running on Railway: {', '.join(broken)}")
        return
    rows = run.ps_rows(folder, _run_environ(project_name=project_name))
    if as_json:
        _json([asdict(row) for row in rows])
    else:
        _echo(f"{'SERVICE':24} {'RUNNER':9} {'STATE':11} {'EXIT':>4} {'UPTIME':>8} {'PORT':>5}  TENANTS")
        for row in rows:
            exit_code = "-" if row.exit_code is None else row.exit_code
            uptime = "-" if row.uptime_s is None else _duration(row.uptime_s)
            _echo(
                f"{row.service:24} {row.runner or '-':9} {row.state:11} {exit_code:>4} {uptime:>8} "
                f"{row.port or '-':>5}  {','.join(row.tenants) or '-'}"
            )
    down = [row.service for row in rows if row.runner is not None and not row.up]
    if down:
        raise CheckFailed(f"{env}: not running: {', '.join(down)}")


def _duration(seconds: int) -> str:
    """`ps`'s uptime: 42s, 5m12s, 3h04m, 2d05h."""
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


@app.command()
def logs(
    ctx: typer.Context,
    env: EnvArgument,
    service: Annotated[Optional[str], typer.Argument(metavar="SERVICE", help="One service (default: all).")] = None,
    out: OutOption = None,
    lines: Annotated[
        int, typer.Option(min=1, max=100_000, parser=_int_range(1, 100_000), metavar="N", help="Lines per service.")
    ] = 100,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines (Ctrl-C stops).")] = False,
    project_name: ProjectOption = None,
) -> None:
    """The last log lines of ENV's services, secrets masked."""
    from deploytool import pipeline, run
    from deploytool.spec.load import check_env_name

    check_env_name(env)
    folder = out or pipeline.default_out(_spec(ctx), env)
    running = run.running_runner(folder)
    if running is None:  # releases (issue 30): an environment on Railway shows Railway's logs
        from deploytool.output import read_manifest
        from deploytool.render.manifest import MANIFEST

        manifest = read_manifest(folder) if (folder / MANIFEST).is_file() else None
        remote = _on_railway(ctx, env, out, manifest.targets) if manifest is not None else None
        if remote is not None:
            from deploytool.railway_deploy import remote_logs

            names = [svc.name for svc in manifest.services] if manifest is not None else []
            if service is not None and service not in names:
                raise UserError(f"service {service!r}: not in this environment (known: {', '.join(names)})")
            if follow:
                raise UserError(f"{env}: runs on Railway; --follow is not supported there (`railway logs` streams)")
            for line in remote_logs(*remote, [service] if service else names, lines):
                _echo(line)
            return
    current = running or run.runner("procfile")
    for line in current.logs(folder, _run_environ(project_name=project_name), service, lines, follow):
        _echo(line)


@app.command()
def restart(
    ctx: typer.Context,
    env: EnvArgument,
    service: Annotated[
        str, typer.Argument(metavar="SERVICE", help="The service to restart (see `deploytool ps ENV`).")
    ],
    out: OutOption = None,
    timeout: Annotated[
        float, typer.Option(parser=_seconds(MAX_WAIT_S), metavar="SECONDS", help="Seconds to wait for its /health.")
    ] = 90.0,
    project_name: ProjectOption = None,
) -> None:
    """Restart one service of a running environment, with the runner that started it."""
    from deploytool import pipeline, run
    from deploytool.spec.load import check_env_name

    check_env_name(env)
    folder = out or pipeline.default_out(_spec(ctx), env)
    current = run.running_runner(folder)
    if current is None:
        raise UserError(f"{env}: nothing is running; start it with `deploytool up {env}`")
    environ = _as_up_had_it(folder, _run_environ(project_name=project_name))
    with _up_progress(1) as on_event:
        status = current.restart(folder, environ, service, timeout, on_event)
    _echo(f"{status.state:9} {status.name:24} {status.url}")


@app.command(
    "run",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    epilog="Everything after `--` is the command, passed on untouched: deploytool run dev web -- python -m "
    "flask_service create-user --username demo --password demo-password --tenant 1",
)
def run_command(
    ctx: typer.Context,
    env: EnvArgument,
    service: Annotated[str, typer.Argument(metavar="SERVICE", help="The service whose environment the command gets.")],
    command: Annotated[
        list[str], typer.Argument(metavar="-- COMMAND...", help="The command and its arguments.", show_default=False)
    ],
    out: OutOption = None,
    runner: Annotated[
        Optional[str],
        typer.Option(metavar="RUNNER", help="procfile or compose (default: the one running ENV, else procfile)."),
    ] = None,
) -> None:
    """Run one command with exactly SERVICE's environment (its variables and secrets); exit with its code."""
    from deploytool import pipeline, run
    from deploytool.spec.load import check_env_name

    check_env_name(env)
    folder = out or pipeline.default_out(_spec(ctx), env)
    current = run.running_runner(folder)
    if runner is not None and current is not None and current.name != runner:
        raise UserError(f"{env}: runs with --runner {current.name}; drop --runner {runner} or stop it first")
    chosen = run.runner(runner) if runner is not None else current or run.runner("procfile")
    environ = _as_up_had_it(folder, os.environ) if current is not None else dict(os.environ)
    code = chosen.run_command(folder, environ, service, [*command, *ctx.args])
    if code:
        raise typer.Exit(code)


@app.command()
def probe(
    ctx: typer.Context,
    env: EnvArgument,
    out: OutOption = None,
    url: Annotated[
        Optional[list[str]],
        typer.Option("--url", metavar="SERVICE=URL", help="SERVICE=URL of a remote service; repeatable."),
    ] = None,
    fmt: Annotated[str, typer.Option("--format", metavar="FORMAT", help="table, json or junit.")] = "table",
    output: Annotated[
        Optional[Path], typer.Option("--output", metavar="FILE", help="Write the report to FILE.")
    ] = None,
    timeout: Annotated[
        float,
        typer.Option(
            parser=_seconds(MAX_WAIT_S), metavar="SECONDS", help="Seconds each target may take, retries included."
        ),
    ] = 30.0,
    concurrency: Annotated[
        int, typer.Option(min=1, max=256, parser=_int_range(1, 256), metavar="N", help="Targets probed at once.")
    ] = 16,
    interval: Annotated[
        float,
        typer.Option(parser=_seconds(MAX_INTERVAL_S), metavar="SECONDS", help="Seconds between retries of one target."),
    ] = 1.0,
    sets: SetOption = None,
) -> None:
    """Probe /health of every service and the QR endpoint of every tenant of a live deployment."""
    from deploytool import probe as probing
    from deploytool.probe.report import check_output_path, write_report

    if fmt not in probing.FORMATS:  # before any work: a typo must not cost a whole probe run
        raise UserError(f"--format: expected {', '.join(probing.FORMATS)}, got {fmt!r}")
    if output is not None:
        check_output_path(output)
    urls = probing.parse_url_options(url or [])
    # Targets come from the plan as the spec says now (not from a possibly stale manifest on disk).
    rendered = _render(ctx, env, out, sets)
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
    from deploytool.releases import record_probe

    record_probe(rendered.ctx.out, report.results)  # releases (issue 30): tenants' link state for the impact lines
    text = probing.format_report(report, fmt, color=fmt == "table" and output is None and sys.stdout.isatty())
    if output is not None:
        write_report(output, text)
    if output is None or fmt == "table":
        _echo(text.rstrip("\n"))
    if not report.ok:
        raise CheckFailed(f"{env}: probe failed")


@app.command()
def doctor(ctx: typer.Context, form: TableOrJson = "table") -> None:
    """Check what each command needs (Python, Node 22, Docker + Compose v2, the Railway CLI and its link).

    Exit 0 when the default path (validate, render, up, probe with the procfile runner) has what it needs,
    1 when not. Local only: no network."""
    from deploytool import doctor as checking

    as_json = _table_or_json(form)
    obj = ctx.find_root().obj
    spec = obj if isinstance(obj, Path) else _search_spec()
    checks = checking.run_checks(os.environ, Path.cwd(), spec if spec.is_file() else None)
    ready, line = checking.summary(checks)
    if as_json:
        fields = ("name", "needed_by", "ok", "detail", "fix")
        _json({"ready": ready, "summary": line, "checks": [{f: getattr(c, f) for f in fields} for c in checks]})
        if not ready:
            raise typer.Exit(CheckFailed.exit_code)
        return
    for check in checks:
        _echo(check.line())
    if not ready:
        raise CheckFailed(line)
    _echo(line)


railway_app = typer.Typer(
    help="Plan or apply ENV's Railway file with Railway's CLI, only while it is linked to ENV's environment.",
    no_args_is_help=True,
)
app.add_typer(railway_app, name="railway")

JsonOption = Annotated[bool, typer.Option("--json", help="Pass --json: the Railway CLI prints its raw JSON.")]


def _railway(
    ctx: typer.Context,
    env: str,
    out: Path | None,
    action: Action,
    sets: list[str] | None,
    wait: WaitOptions | None = None,
    keep: int | None = None,
    **flags: Any,
) -> None:
    from deploytool import railway_cli
    from deploytool.targets.railway import RAILWAY_FILE

    folder, railway_env, warnings, rendered = railway_cli.prepare_rendered(_spec(ctx), env, out, sets or ())
    for warning in warnings:
        _warn(warning)
    cli = railway_cli.find_cli(os.environ)
    linked = railway_cli.linked_environment(cli, os.environ)
    railway_cli.require_link(railway_env, linked, env)
    if wait is not None:  # releases (issue 30): --wait takes the CLI's JSON, so it is told to print it
        flags["json_output"] = True
    from deploytool.targets.railway import RailwayTarget

    _impact(rendered, RailwayTarget.target.value, _warn)  # releases (issue 30): what it does to tenants
    command = railway_cli.config_command(cli, action, **flags)
    shown = " ".join(command[1:])
    _warn(f"{env}: railway {shown} in {folder} ({RAILWAY_FILE}; linked to Railway environment {linked.name!r})")
    if wait is not None:
        _railway_wait(rendered, cli, folder, railway_env, command, wait)
        return
    code = railway_cli.run_streaming(command, os.environ, folder)
    if code:
        raise typer.Exit(code)
    if keep is not None:  # releases (issue 30): a plain apply is a release too, pending (nobody waited)
        from deploytool.railway_deploy import record_applied

        release = record_applied(_railway_env(rendered, cli, folder, railway_env), keep, _warn)
        _warn(
            f"{env}: release {release.number} (pending: not waited for; `deploytool railway apply {env} --wait` "
            "follows a deploy until it is live)"
        )


# --- releases on Railway (issue 30): apply --wait, rollback ------------------------------------------------


@dataclass(frozen=True)
class WaitOptions:
    timeout: float
    rollback_on_failure: bool
    keep: int
    urls: list[str]


def _railway_env(rendered: Rendered, cli: str, folder: Path, railway_env: str) -> Any:
    from deploytool import releases
    from deploytool.impact import planned_services
    from deploytool.plan.model import Role
    from deploytool.railway_deploy import RailwayEnv

    manifest = rendered.manifest
    return RailwayEnv(
        cli=cli,
        environ=dict(os.environ),
        cwd=folder,
        environment=railway_env,
        env_name=rendered.plan.env_name,
        out=rendered.ctx.out,
        services=tuple(sorted(svc.name for svc in rendered.plan.services)),
        whatsapp=frozenset(svc.name for svc in rendered.plan.services if svc.role == Role.whatsapp),
        artifacts=releases.artifact_hashes(manifest.artifacts, manifest.spec_artifacts),
        planned=planned_services(rendered.plan),
    )


def _railway_wait(
    rendered: Rendered, cli: str, folder: Path, railway_env: str, command: list[str], wait: WaitOptions
) -> None:
    from deploytool import probe as probing
    from deploytool import railway_deploy

    urls = probing.parse_url_options(wait.urls)
    target = _railway_env(rendered, cli, folder, railway_env)
    code = railway_deploy.apply_and_wait(
        target, command, wait.timeout, wait.rollback_on_failure, wait.keep, _echo, _warn
    )
    if code:
        raise typer.Exit(code)
    manifest = rendered.manifest
    if not urls and not any(svc.public_url for svc in manifest.services):
        _echo(
            f"{rendered.plan.env_name}: probe skipped: no public URL is known; give --url SERVICE=URL (or run "
            f"`deploytool probe {rendered.plan.env_name} --url ...`)"
        )
        return
    report = probing.probe_environment(manifest, rendered.ctx.out, urls, os.environ)
    from deploytool.releases import record_probe

    record_probe(rendered.ctx.out, report.results)
    _echo(probing.format_report(report, "table", color=False).rstrip("\n"))
    if not report.ok:
        raise CheckFailed(f"{rendered.plan.env_name}: live on Railway, but the probe failed")


RailwaySetOption = Annotated[
    Optional[list[str]],
    typer.Option(
        "--set",
        metavar="PATH=VALUE",
        help="Refused: Railway gets the committed spec alone (exit 2, naming it).",
    ),
]


@railway_app.command("plan")
def railway_plan(
    ctx: typer.Context,
    env: EnvArgument,
    out: OutOption = None,
    json_output: JsonOption = False,
    detailed_exit_code: Annotated[
        bool,
        typer.Option("--detailed-exit-code", help="Pass --detailed-exit-code: exit 2 when changes are pending."),
    ] = False,
    plan_out: Annotated[
        Optional[Path],
        typer.Option("--plan-out", metavar="FILE", help="Pass --out FILE: a pinned plan for `apply --plan FILE`."),
    ] = None,
    sets: RailwaySetOption = None,
) -> None:
    """`railway config plan` of the project's file for ENV; refuses a drifted render, a local override, or a
    link to another environment."""
    _railway(
        ctx,
        env,
        out,
        "plan",
        sets,
        json_output=json_output,
        detailed_exit_code=detailed_exit_code,
        plan_out=plan_out.resolve() if plan_out else None,
    )


@railway_app.command("apply")
def railway_apply(
    ctx: typer.Context,
    env: EnvArgument,
    out: OutOption = None,
    json_output: JsonOption = False,
    yes: Annotated[bool, typer.Option("--yes", help="Pass --yes: apply without asking (implied by CI=true).")] = False,
    confirm_destructive: Annotated[
        bool,
        typer.Option("--confirm-destructive", help="Pass --confirm-destructive: allow removals without a prompt."),
    ] = False,
    plan: Annotated[
        Optional[Path],
        typer.Option("--plan", metavar="FILE", help="Pass --plan FILE: apply exactly a plan made with --plan-out."),
    ] = None,
    sets: RailwaySetOption = None,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait", help="Wait until every redeployed service is live (or failed), then probe; needs --yes or --plan."
        ),
    ] = False,
    timeout: Annotated[
        float,
        typer.Option(parser=_seconds(MAX_WAIT_S), metavar="SECONDS", help="--wait: seconds for every deployment."),
    ] = 600.0,
    rollback_on_failure: Annotated[
        bool, typer.Option("--rollback-on-failure", help="--wait: on a failure, roll back to the previous release.")
    ] = False,
    keep: KeepOption = 5,
    url: Annotated[
        Optional[list[str]],
        typer.Option("--url", metavar="SERVICE=URL", help="--wait: SERVICE=URL for the probe; repeatable."),
    ] = None,
) -> None:
    """`railway config apply` of the project's file for ENV; refuses a drifted render, a local override, or a
    link to another environment."""
    from deploytool.railway_cli import ci_says_yes

    yes = yes or ci_says_yes(os.environ)
    if (rollback_on_failure or url) and not wait:
        raise UserError("--rollback-on-failure and --url go with --wait")
    if wait and not (yes or plan):
        raise UserError(
            "--wait reads the Railway CLI's JSON, and with --json the CLI applies without asking: review "
            f"`deploytool railway plan {env}`, then add --yes (or apply a pinned --plan FILE)"
        )
    _railway(
        ctx,
        env,
        out,
        "apply",
        sets,
        WaitOptions(timeout, rollback_on_failure, keep, url or []) if wait else None,
        keep=keep,
        json_output=json_output,
        yes=yes,
        confirm_destructive=confirm_destructive,
        pinned_plan=plan.resolve() if plan else None,
    )


tenants_app = typer.Typer(
    help="Which shard serves each tenant; move tenants between shards (topology sharded), sessions included; "
    "import the linked sessions of an existing deployment.",
    no_args_is_help=True,
)
app.add_typer(tenants_app, name="tenants")

MoveTimeoutOption = Annotated[
    float,
    typer.Option(
        parser=_seconds(MAX_WAIT_S),
        metavar="SECONDS",
        help="Seconds for each restart, and for the tenant to connect on its new shard.",
    ),
]


@tenants_app.command("list")
def tenants_list(ctx: typer.Context, env: EnvArgument, out: OutOption = None, form: TableOrJson = "table") -> None:
    """Every tenant with the service serving it, and its live state when ENV runs here."""
    from deploytool import tenants

    as_json = _table_or_json(form)
    rows = tenants.tenant_rows(tenants.layout(_spec(ctx), env, out), os.environ)
    if as_json:
        known = [(t, svc, None if state == "-" else state, None if me == "-" else me) for t, svc, state, me in rows]
        _json([{"tenant": t, "service": svc, "state": state, "me": me} for t, svc, state, me in known])
        return
    _echo(f"{'TENANT':12} {'SERVICE':24} {'STATE':13} ME")
    for tenant, service, state, me in rows:
        _echo(f"{tenant:12} {service:24} {state:13} {me}")


@tenants_app.command("move")
def tenants_move(
    ctx: typer.Context,
    env: EnvArgument,
    tenant: Annotated[str, typer.Argument(metavar="TENANT", help="The tenant to move.", show_default=False)],
    shard: Annotated[int, typer.Option("--shard", metavar="N", help="The shard to move it to (whatsapp-shard-N).")],
    out: OutOption = None,
    timeout: MoveTimeoutOption = 90.0,
) -> None:
    """Pin TENANT to shard N (the lock), re-render, and on a running ENV move its session without a new scan."""
    from deploytool import tenants

    tenants.move_command(_spec(ctx), env, out, tenant, shard, os.environ, timeout, _echo)


@tenants_app.command("rebalance")
def tenants_rebalance(
    ctx: typer.Context,
    env: EnvArgument,
    out: OutOption = None,
    apply: Annotated[
        bool, typer.Option("--apply", help="Make the moves (one at a time), not only print them.")
    ] = False,
    timeout: MoveTimeoutOption = 90.0,
) -> None:
    """Print the fewest moves that even out ENV's shards; --apply makes them, as `tenants move` does."""
    from deploytool import tenants

    tenants.rebalance_command(_spec(ctx), env, out, apply, os.environ, timeout, _echo)


@tenants_app.command("import")
def tenants_import(
    ctx: typer.Context,
    env: EnvArgument,
    source: Annotated[
        Optional[Path],
        typer.Option(
            "--from", metavar="DIR", help="Folder of session folders: Baileys' auth/<tenant>/, an AUTH_ROOT, .run/data."
        ),
    ] = None,
    volume: Annotated[
        Optional[str],
        typer.Option(
            "--from-volume", metavar="NAME", help="A Docker volume of a file-store layout (compose), instead of --from."
        ),
    ] = None,
    out: OutOption = None,
    apply: Annotated[
        bool, typer.Option("--apply", help="Write the sessions into ENV's store, not only list them.")
    ] = False,
    replace: Annotated[
        bool, typer.Option("--replace", help="Overwrite a tenant that has a linked session in the store already.")
    ] = False,
) -> None:
    """Find the linked WhatsApp sessions under DIR, map them to ENV's tenants; --apply brings them into ENV's
    session store (files or PostgreSQL) through node_service's own store code, so nobody scans again."""
    from deploytool import tenant_import

    tenant_import.import_command(_spec(ctx), env, out, source, apply, replace, os.environ, _echo, volume)


PIPE_CLOSED = 141  # 128 + SIGPIPE: what a shell reports for a writer whose reader went away


def _stdout_closed() -> bool:
    """True once typer has met a closed stdout (EPIPE): it then wraps stdout and stderr to silence their
    flushes. Unwrapped again here, so a later call in this process (tests) writes as usual."""
    wrapped = getattr(sys.stdout, "wrapped", None)  # click's wrapper keeps the stream it silences as `wrapped`
    if wrapped is None:
        return False
    sys.stdout = wrapped
    sys.stderr = getattr(sys.stderr, "wrapped", sys.stderr)
    return True


def main(argv: list[str] | None = None) -> int:
    """Entry point: the only place exceptions become messages and exit codes (0 ok, 1 checks, 2 input, 130 aborted,
    141 stdout closed by its reader)."""
    try:
        result = app(args=argv, prog_name="deploytool", standalone_mode=False)
    except SystemExit as exc:  # typer's completion (request, --show/--install-completion) calls sys.exit
        if _stdout_closed():  # typer met EPIPE writing to stdout and exits 1: the reader went away
            return PIPE_CLOSED
        return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
    except typer.Exit as exc:
        return exc.exit_code
    except typer.TyperException as exc:  # click's errors, as typer raises them
        usage_of = getattr(exc, "ctx", None)  # a usage error carries the command's context
        if usage_of is not None and exc.format_message() == usage_of.get_help():
            _warn(exc.format_message())  # `deploytool` or `deploytool railway` alone: the help, on stderr
            return 2
        if usage_of is not None:  # bad option, missing argument: the usage line and one error line
            _warn(usage_of.get_usage())
        _warn(f"error: {exc.format_message()}")  # or another of click's errors (a file that does not open)
        return exc.exit_code
    except (typer.Abort, KeyboardInterrupt):  # Ctrl-C or end of input at one of `init`'s questions
        _warn("aborted")
        return 130
    except DeploytoolError as exc:
        _warn(f"error: {exc}" if isinstance(exc, UserError) else str(exc))
        return exc.exit_code
    return result if isinstance(result, int) else 0


def entry() -> None:
    # A short-lived process building one big tree of small objects: the default GC thresholds spend a
    # third of a 1,000-tenant render scanning objects that are never garbage (see benchmarks/render.py).
    # Only here, in the process entry point: `main` is also called in-process (tests, fuzzing), where a
    # freeze per call would keep every object of every call forever.
    gc.freeze()
    gc.set_threshold(200_000, 50, 100)
    code = 0
    try:
        code = main()
        if sys.stdout is not None:
            sys.stdout.flush()  # inside the try: a reader that went away shows here, not at interpreter exit
    except BrokenPipeError:
        code = PIPE_CLOSED
    except OSError as exc:  # the last buffered output did not fit (`>/dev/full`): said once, not at exit
        if code == 0:  # a command that failed has said why on stderr already
            _warn(f"error: stdout: cannot write: {exc.strerror or exc}")
            code = OutputFailed.exit_code
        _discard_stdout()
    if code == PIPE_CLOSED:
        # stdout was closed early (`deploytool show ENV | head -1`): nothing left to say to anyone. Point it
        # at /dev/null so the interpreter's last flush cannot fail again, and exit as a shell's pipeline does.
        _discard_stdout()
    if code == OutputFailed.exit_code and sys.stdout is not None:
        try:  # an OutputFailed left unwritten text in the buffer: the interpreter's last flush must not fail
            sys.stdout.flush()
        except OSError:
            _discard_stdout()
    sys.exit(code)


def _discard_stdout() -> None:
    """Point stdout at /dev/null (nothing is left to say to it) so no later flush can fail again."""
    if sys.stdout is None:
        return
    try:
        fd = sys.stdout.fileno()
    except (OSError, ValueError):
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)
