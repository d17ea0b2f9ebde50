"""The environment of one local process: a small base from the caller, its env file (the one `render` wrote,
`env/local/<service>.env`), passthrough, secrets.

The caller's whole environment is not handed down (a developer's shell holds tokens of other projects);
only the names below, the passthrough names the manifest lists, and what the service's env file says.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from deploytool.errors import UserError
from deploytool.output.fs import read_regular, write_atomic
from deploytool.output.secrets import SECRETS_FILE, secret_values
from deploytool.plan.model import GENERATED_SECRETS
from deploytool.render.envfile import parse_env
from deploytool.render.manifest import ManifestService
from deploytool.run.state import UP_ENVIRON_FILE, own_run_dir, run_dir
from deploytool.safeio import load_json, read_bytes

BASE_NAMES = (
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "LANG",
    "LANGUAGE",
    "TZ",
    "TMPDIR",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "NODE_EXTRA_CA_CERTS",
)
BASE_PREFIXES = ("LC_",)
RUNNER_DEFAULTS = {"PYTHONUNBUFFERED": "1"}  # so a Python service's log is written as it happens


@dataclass(frozen=True)
class ProcessEnv:
    values: dict[str, str]
    secret_values: tuple[str, ...]  # to redact from anything the runner shows


def base_path(environ: Mapping[str, str]) -> str:
    """The caller's PATH with the directory of this Python first, so `python` is deploytool's interpreter."""
    first = os.path.dirname(sys.executable)
    rest = [p for p in environ.get("PATH", os.defpath).split(os.pathsep) if p and p != first]
    return os.pathsep.join([first, *rest])


def base_env(environ: Mapping[str, str]) -> dict[str, str]:
    env = {name: environ[name] for name in BASE_NAMES if name in environ}
    env.update({name: value for name, value in environ.items() if name.startswith(BASE_PREFIXES)})
    env["PATH"] = base_path(environ)
    env.update(RUNNER_DEFAULTS)
    return env


# Passthrough names a process cannot do without: DATABASE_URL falls back to SQLite, REDIS_URL (the Redis add-on,
# which no local process provides) has nothing to fall back to.
REQUIRED_PASSTHROUGH = ("REDIS_URL",)


def process_env(service: ManifestService, out_dir: Path, environ: Mapping[str, str]) -> ProcessEnv:
    secrets = secret_values(service.secrets, out_dir, environ)
    missing = [name for name in service.secrets if name not in secrets]
    if missing:
        raise UserError(missing_secrets_message(service.name, missing, out_dir))
    unset = [name for name in REQUIRED_PASSTHROUGH if name in service.passthrough and not environ.get(name)]
    if unset:
        raise UserError(
            f"service {service.name} needs {', '.join(unset)} (addons: redis), which the procfile runner does not "
            f"provide: set it in the environment, e.g. REDIS_URL=redis://127.0.0.1:6379/0 (or use --runner compose, "
            "which runs Redis)"
        )
    env = base_env(environ)
    env.update(env_file_values(service, out_dir))
    env.update({name: environ[name] for name in service.passthrough if name in environ})
    env.update(secrets)
    return ProcessEnv(env, tuple(v for v in secrets.values() if v))


def env_file_values(service: ManifestService, out_dir: Path) -> dict[str, str]:
    """The variables of the service's env file, read as every other reader of that dialect reads them."""
    if service.env_file is None:
        raise UserError(
            f"service {service.name}: no process env file in {out_dir}: the environment has no target that runs "
            "as processes (add `local` to `targets` and render again)"
        )
    path = out_dir / service.env_file
    text = read_regular(path, "keeps an env file", follow=True)
    if text is None:
        raise UserError(f"{path}: env file of service {service.name} not found; run `deploytool render ENV` again")
    try:
        return parse_env(text)
    except ValueError as exc:
        raise UserError(f"{path}: {exc}") from None


def env_file_digest(service: ManifestService, out_dir: Path) -> str:
    """sha256 of the service's env file as it is now ("" without one): what a running process started from."""
    import hashlib

    if service.env_file is None:
        return ""
    text = read_regular(out_dir / service.env_file, "keeps an env file", follow=True)
    return "" if text is None else hashlib.sha256(text.encode()).hexdigest()


def missing_secrets_message(service: str, missing: list[str], out_dir: Path) -> str:
    """Which secrets are missing and where to set them; `render` generates only deploytool's own."""
    path = out_dir / SECRETS_FILE
    own = [name for name in missing if name in GENERATED_SECRETS]
    theirs = [name for name in missing if name not in GENERATED_SECRETS]
    parts = []
    if theirs:
        parts.append(
            f"{', '.join(theirs)} (yours: deploytool generates no value): set it in the process environment "
            f"(export {theirs[0]}=...) or add a line {theirs[0]}=... to {path}"
        )
    if own:
        parts.append(
            f"{', '.join(own)}: set it in the environment or in {path} (`deploytool render ENV` generates it there)"
        )
    return f"service {service} needs secret(s) " + "; ".join(parts)


# ---- what `up` took from its shell, for the commands that start a service again ----------------------------

UP_ENVIRON_WHAT = "records what `up` took from the environment"


def taken_names(services: Iterable[ManifestService]) -> list[str]:
    """The variables a service takes from the shell of the command that starts it (the passthrough names:
    DATABASE_URL, REDIS_URL); secrets are read again each time (environment, else `.secrets.env`)."""
    return sorted({name for svc in services for name in svc.passthrough})


def record_up_environ(out_dir: Path, services: Iterable[ManifestService], environ: Mapping[str, str]) -> None:
    """Keep what `up` took from its environment: each name with its value, or null when it was unset."""
    # under .run/ (git-ignored), mode 0600: a DATABASE_URL may hold a password; never printed
    taken = {name: environ.get(name) for name in taken_names(services)}
    write_atomic(own_run_dir(out_dir) / UP_ENVIRON_FILE, json.dumps(taken, indent=2, sort_keys=True) + "\n", 0o600)


def up_environ(out_dir: Path) -> dict[str, str | None] | None:
    """What the running environment's `up` took from its shell; None when nothing was recorded."""
    path = run_dir(out_dir) / UP_ENVIRON_FILE
    data = read_bytes(path, UP_ENVIRON_WHAT)
    if data is None:
        return None
    found = load_json(data, str(path))
    if not isinstance(found, dict) or not all(isinstance(v, str | None) for v in found.values()):
        raise UserError(f"{path}: unreadable record of `up`'s environment; run `deploytool down`, then `up` again")
    return {str(k): v for k, v in found.items()}


@dataclass(frozen=True)
class UpEnviron:
    environ: dict[str, str]  # the caller's environment with the recorded names as `up` had them
    differs: tuple[str, ...]  # names the current shell has otherwise (never their values)

    def note(self, out_dir: Path) -> str | None:
        if not self.differs:
            return None
        it = "it" if len(self.differs) == 1 else "them"
        return (
            f"{', '.join(self.differs)}: as `deploytool up` had {it} ({run_dir(out_dir) / UP_ENVIRON_FILE}), "
            f"not as this shell has {it}"
        )


def as_up_had_it(out_dir: Path, environ: Mapping[str, str]) -> UpEnviron:
    """The environment to start a service of a running `out_dir` with (`restart`, `tenants move`, `run`): the
    caller's, with what `up` took from its shell put back, so a fresh shell restarts a shard on the session
    store it ran on. Unchanged when `up` recorded nothing."""
    recorded = up_environ(out_dir)
    merged = dict(environ)
    if recorded is None:
        return UpEnviron(merged, ())
    differs = tuple(sorted(name for name, value in recorded.items() if environ.get(name) != value))
    for name, value in recorded.items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = value
    return UpEnviron(merged, differs)
