"""Calls from flask to the tenant's WhatsApp (node) server.

The response of node (status code, JSON body, ``Retry-After``) is relayed as is.
When node cannot be reached or does not answer in time the caller gets a 503
``whatsapp_unreachable`` naming the tenant and the URL tried, never a 500 and
never the API key.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import httpx
from flask import current_app

from .resolver import resolve_base_url

log = logging.getLogger(__name__)


@dataclass
class NodeResponse:
    status: int
    body: dict[str, Any] | list[Any]
    headers: dict[str, str] = field(default_factory=dict)


def _public_url(url: str) -> str:
    """``url`` without any user:password part (safe to show and log)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def base_url_for(tenant_id: str) -> str:
    """Raises :class:`resolver.UnknownTenant`."""
    cfg = current_app.config
    return resolve_base_url(tenant_id, cfg["WHATSAPP_TENANT_URLS"], cfg["WHATSAPP_SERVER_URL"])


def call_node(method: str, tenant_id: str, action: str, json_body: Any = None) -> NodeResponse:
    """``METHOD {base}/tenants/{tenant_id}/{action}`` with ``X-Api-Key``."""
    cfg = current_app.config
    url = f"{base_url_for(tenant_id)}/tenants/{quote(tenant_id, safe='')}/{action}"
    shown_url = _public_url(url)
    headers = {"Accept": "application/json"}
    if cfg["WHATSAPP_API_KEY"]:
        headers["X-Api-Key"] = cfg["WHATSAPP_API_KEY"]
    timeout = cfg["WHATSAPP_TIMEOUT_S"]
    try:
        with httpx.Client(timeout=timeout, trust_env=False, follow_redirects=False) as client:
            resp = client.request(method, url, headers=headers, json=json_body)
    except httpx.TimeoutException:
        log.warning("WhatsApp server of tenant %s timed out after %ss: %s", tenant_id, timeout, shown_url)
        return _unreachable(tenant_id, shown_url, f"no answer within {timeout:g} s")
    except httpx.HTTPError as exc:
        log.warning("WhatsApp server of tenant %s unreachable (%s): %s", tenant_id, type(exc).__name__, shown_url)
        return _unreachable(tenant_id, shown_url, "connection failed")

    relay_headers = {}
    if "Retry-After" in resp.headers:
        relay_headers["Retry-After"] = resp.headers["Retry-After"]
    try:
        body = resp.json()
    except ValueError:
        body = None
    if not isinstance(body, (dict, list)):
        log.warning(
            "WhatsApp server of tenant %s answered %s without a JSON body: %s", tenant_id, resp.status_code, shown_url
        )
        return NodeResponse(
            502,
            {
                "error": "whatsapp_bad_response",
                "message": f"The WhatsApp server of tenant {tenant_id} answered HTTP {resp.status_code}"
                " without a JSON body",
                "tenant_id": tenant_id,
                "url": shown_url,
                "upstream_status": resp.status_code,
            },
            relay_headers,
        )
    status = resp.status_code
    if status in (401, 403):
        # node refused *our* key: a deployment error, not the caller's missing login
        log.error("WhatsApp server of tenant %s rejected WHATSAPP_API_KEY (HTTP %s): %s", tenant_id, status, shown_url)
        return NodeResponse(
            502,
            {
                "error": "whatsapp_auth_failed",
                "message": f"The WhatsApp server of tenant {tenant_id} at {shown_url} rejected WHATSAPP_API_KEY"
                f" (HTTP {status}); check that flask and node share the same key",
                "tenant_id": tenant_id,
                "url": shown_url,
                "upstream_status": status,
            },
        )
    if not 200 <= status <= 599:
        status = 502
    return NodeResponse(status, body, relay_headers)


def _unreachable(tenant_id: str, url: str, why: str) -> NodeResponse:
    return NodeResponse(
        503,
        {
            "error": "whatsapp_unreachable",
            "message": f"The WhatsApp server of tenant {tenant_id} at {url} is unreachable: {why}",
            "tenant_id": tenant_id,
            "url": url,
        },
        {"Retry-After": "5"},
    )
