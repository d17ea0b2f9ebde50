"""Tenant → WhatsApp server base URL, for every topology.

* ``shared``: every tenant is served by ``WHATSAPP_SERVER_URL``.
* ``per-port`` / ``sharded``: ``WHATSAPP_TENANT_URLS`` maps tenant ids to base URLs.

The map wins over the shared URL for the tenants it lists. A tenant found in
neither is unknown (the API answers 404 ``unknown_tenant``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from urllib.parse import urlsplit

TENANT_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class UnknownTenant(LookupError):
    def __init__(self, tenant_id: str) -> None:
        super().__init__(tenant_id)
        self.tenant_id = tenant_id


def is_valid_tenant_id(value: object) -> bool:
    return isinstance(value, str) and TENANT_ID_RE.fullmatch(value) is not None


def normalize_base_url(url: str) -> str | None:
    """Return ``url`` without trailing slashes, or None if it is not an http(s) URL."""
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        return None
    return url.rstrip("/")


def parse_tenant_urls(raw: str | None, *, error: type[Exception] = ValueError) -> dict[str, str]:
    """Parse ``WHATSAPP_TENANT_URLS`` (JSON object tenant id → base URL)."""
    if raw is None or not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise error(
            f"WHATSAPP_TENANT_URLS is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno});"
            ' expected an object such as {"1": "http://whatsapp-1:5001"}'
        ) from None
    if not isinstance(data, dict):
        raise error(
            f"WHATSAPP_TENANT_URLS must be a JSON object mapping tenant id to base URL, got {type(data).__name__}"
        )
    result: dict[str, str] = {}
    for tenant_id, url in data.items():
        if not is_valid_tenant_id(tenant_id):
            raise error(f"WHATSAPP_TENANT_URLS: tenant id {tenant_id!r} does not match ^[A-Za-z0-9_-]{{1,64}}$")
        base = normalize_base_url(url) if isinstance(url, str) else None
        if base is None:
            raise error(f"WHATSAPP_TENANT_URLS: the URL of tenant {tenant_id!r} must be an http(s) URL")
        result[tenant_id] = base
    return result


def resolve_base_url(tenant_id: str, tenant_urls: Mapping[str, str], server_url: str | None) -> str:
    """Base URL of the WhatsApp server that holds ``tenant_id``'s session."""
    if tenant_id in tenant_urls:
        return tenant_urls[tenant_id]
    if server_url:
        return server_url
    raise UnknownTenant(tenant_id)
