"""Probe targets: the manifest's checks, each bound to the base URL it can be reached at (or a reason to skip)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import ValidationError

from deploytool.errors import UserError
from deploytool.render.manifest import Manifest

PRIVATE_SKIP = "no reachable URL (private service)"
KINDS = ("health", "qr")


@dataclass(frozen=True)
class ProbeTarget:
    """One check: GET `url` (None when skipped) and judge the answer by `kind`.

    `auth` is the *name* of the key (env var) sent as `X-Api-Key`, never its value.
    """

    id: str
    kind: str
    service: str
    path: str
    url: str | None
    tenant: str | None = None
    auth: str | None = None
    via: str | None = None
    skip_reason: str | None = None


def display_url(url: str) -> str:
    """The URL without user:password, fit for output."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def check_base_url(url: str, where: str) -> str:
    """A base URL as given (trailing slash dropped); UserError unless it is http(s)://host[:port][/prefix]."""
    try:
        parts = urlsplit(url.strip())
        _ = parts.port  # raises ValueError on a bad port
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise UserError(
            f"{where}: {display_url(url)!r} is not a base URL: expected http(s)://HOST[:PORT], "
            "for example https://web.up.railway.app"
        )
    return url.strip().rstrip("/")


def parse_url_options(values: Iterable[str]) -> dict[str, str]:
    """`--url SERVICE=URL` options as a mapping; UserError on a missing `=` or a service given twice."""
    urls: dict[str, str] = {}
    for value in values:
        name, sep, url = value.partition("=")
        name = name.strip()
        if not sep or not name or not url.strip():
            raise UserError(
                f"--url {display_url(value)!r}: expected SERVICE=URL, for example web=https://web.up.railway.app"
            )
        if name in urls:
            raise UserError(f"--url: service {name!r} given twice")
        urls[name] = url.strip()
    return urls


def as_manifest(manifest: Manifest | Mapping[str, Any]) -> Manifest:
    """The typed manifest (a mapping is validated: UserError naming the field that is wrong)."""
    if isinstance(manifest, Manifest):
        return manifest
    try:
        return Manifest.model_validate(manifest)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        field = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise UserError(f"manifest: {field}: {first['msg']} (render the environment again)") from None


def build_targets(manifest: Manifest | Mapping[str, Any], urls: Mapping[str, str]) -> list[ProbeTarget]:
    """Bind every probe target of a rendered manifest to a base URL, in manifest order.

    Remote mode (any `urls` given, or any service with a `public_url`): only services with such a URL are
    probed (`urls` wins over `public_url`), every other target is skipped as private. Local mode: every
    service's `local_url`. Raises UserError for unknown services in `urls`, bad URLs or a broken manifest.
    """
    manifest = as_manifest(manifest)
    by_name = {svc.name: svc for svc in manifest.services}
    unknown = sorted(set(urls) - set(by_name))
    if unknown:
        raise UserError(
            f"--url: unknown service{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
            f"known services: {', '.join(sorted(by_name))}"
        )

    base: dict[str, str] = {}
    publics = {n: s.public_url for n, s in by_name.items() if s.public_url}
    if urls or publics:
        for name, url in publics.items():
            base[name] = check_base_url(url, f"manifest: services.{name}.public_url")
        for name, url in urls.items():
            base[name] = check_base_url(url, f"--url {name}")
    else:
        for name, svc in by_name.items():
            if svc.local_url is not None:  # a worker listens nowhere: nothing of it to probe
                base[name] = check_base_url(svc.local_url, f"manifest: services.{name}.local_url")

    targets: list[ProbeTarget] = []
    for i, raw in enumerate(manifest.probe_targets):
        if raw.service not in by_name:
            raise UserError(f"manifest: probe_targets[{i}].service: {raw.service!r} is not a service of the manifest")
        if raw.kind == "qr" and (raw.tenant is None or raw.auth is None):
            raise UserError(f"manifest: probe_targets[{i}]: a qr target needs a tenant and an auth key name")
        root = base.get(raw.service)
        targets.append(
            ProbeTarget(
                id=raw.id,
                kind=raw.kind,
                service=raw.service,
                path=raw.path,
                url=None if root is None else root + raw.path,
                tenant=raw.tenant,
                auth=raw.auth,
                via=raw.via,
                skip_reason=None if root is not None else PRIVATE_SKIP,
            )
        )
    return targets
