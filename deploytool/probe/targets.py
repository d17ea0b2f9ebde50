"""Probe targets: the manifest's checks, each bound to the base URL it can be reached at (or a reason to skip)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from deploytool.errors import UserError

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


def _str_field(obj: Mapping[str, Any], key: str, where: str, *, optional: bool = False) -> str | None:
    value = obj.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value:
        raise UserError(f"{where}.{key}: expected a non-empty string, got {value!r} (render the environment again)")
    return value


def build_targets(manifest: Mapping[str, Any], urls: Mapping[str, str]) -> list[ProbeTarget]:
    """Bind every `probe_targets[]` entry of a rendered manifest to a base URL, in manifest order.

    Remote mode (any `urls` given, or any service with a `public_url`): only services with such a URL are
    probed (`urls` wins over `public_url`), every other target is skipped as private. Local mode: every
    service's `local_url`. Raises UserError for unknown services in `urls`, bad URLs or a broken manifest.
    """
    services = manifest.get("services")
    raw_targets = manifest.get("probe_targets")
    if not isinstance(services, list) or not isinstance(raw_targets, list):
        raise UserError("manifest: expected lists `services` and `probe_targets` (render the environment again)")
    by_name: dict[str, Mapping[str, Any]] = {}
    for i, svc in enumerate(services):
        if not isinstance(svc, Mapping):
            raise UserError(f"manifest: services[{i}]: expected an object")
        name = _str_field(svc, "name", f"manifest: services[{i}]")
        assert name is not None
        by_name[name] = svc

    unknown = sorted(set(urls) - set(by_name))
    if unknown:
        raise UserError(
            f"--url: unknown service{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
            f"known services: {', '.join(sorted(by_name))}"
        )

    base: dict[str, str] = {}
    publics = {n: s.get("public_url") for n, s in by_name.items() if s.get("public_url")}
    remote = bool(urls) or bool(publics)
    if remote:
        for name, url in publics.items():
            base[name] = check_base_url(str(url), f"manifest: services.{name}.public_url")
        for name, url in urls.items():
            base[name] = check_base_url(url, f"--url {name}")
    else:
        for name, svc in by_name.items():
            local = _str_field(svc, "local_url", f"manifest: services.{name}")
            assert local is not None
            base[name] = check_base_url(local, f"manifest: services.{name}.local_url")

    targets: list[ProbeTarget] = []
    for i, raw in enumerate(raw_targets):
        where = f"manifest: probe_targets[{i}]"
        if not isinstance(raw, Mapping):
            raise UserError(f"{where}: expected an object")
        tid = _str_field(raw, "id", where)
        kind = _str_field(raw, "kind", where)
        service = _str_field(raw, "service", where)
        path = _str_field(raw, "path", where)
        assert tid is not None and kind is not None and service is not None and path is not None
        if kind not in KINDS:
            raise UserError(f"{where}.kind: expected one of {', '.join(KINDS)}, got {kind!r}")
        if service not in by_name:
            raise UserError(f"{where}.service: {service!r} is not a service of the manifest")
        tenant = _str_field(raw, "tenant", where, optional=kind != "qr")
        auth = _str_field(raw, "auth", where, optional=kind != "qr")
        via = _str_field(raw, "via", where, optional=True)
        root = base.get(service)
        targets.append(
            ProbeTarget(
                id=tid,
                kind=kind,
                service=service,
                path=path,
                url=None if root is None else root + (path if path.startswith("/") else "/" + path),
                tenant=tenant,
                auth=auth,
                via=via,
                skip_reason=None if root is not None else PRIVATE_SKIP,
            )
        )
    return targets
