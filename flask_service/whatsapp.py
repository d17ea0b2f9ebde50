"""Calls from flask to the tenant's WhatsApp (node) server.

The response of node (status code, JSON body, ``Retry-After``) is relayed as is.
When node cannot be reached or does not answer in time the caller gets a 503
``whatsapp_unreachable`` naming the tenant and the URL tried, never a 500 and
never the API key.

One dead WhatsApp server must not take the other tenants down with it:
- connecting has its own short timeout (``WHATSAPP_CONNECT_TIMEOUT_S``): the address of a killed
  container often swallows the SYN instead of refusing it, and only answering needs the longer
  ``WHATSAPP_TIMEOUT_S`` (node's ``/qr`` may wait up to 3 s for the first QR). The name lookup gets
  the same deadline: Docker's DNS forwards the name of a stopped container upstream, and where
  upstream does not answer, getaddrinfo blocks for 10 s (httpx's timeouts do not cover it);
- a circuit breaker per base URL: after ``WHATSAPP_BREAKER_FAILURES`` failures in a row, calls to that
  server answer 503 at once for ``WHATSAPP_BREAKER_COOLDOWN_S``; then one trial call goes through, and
  its outcome closes or re-opens the circuit. So a dead server costs each worker one timeout per
  cool-down, not one per request, and its requests cannot pile up on the web server's threads.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import socket
import threading
import time
from collections.abc import Callable
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


class CircuitBreaker:
    """Consecutive failures of one server; thread-safe (gunicorn gthread workers share it)."""

    def __init__(self, failures: int, cooldown_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.threshold = max(1, failures)
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._open_until = 0.0  # meaningful only when failures >= threshold

    def allow(self) -> float:
        """0 when a call may go through, else the seconds until the next trial call."""
        with self._lock:
            if self._failures < self.threshold:
                return 0.0
            now = self._clock()
            if now < self._open_until:
                return self._open_until - now
            # This caller is the trial; everyone else keeps failing fast until it reports back (or, should
            # it never report, until one more cool-down has passed).
            self._open_until = now + self.cooldown_s
            return 0.0

    def record(self, ok: bool) -> None:
        with self._lock:
            if ok:
                self._failures = 0
                return
            self._failures += 1
            if self._failures >= self.threshold:
                self._open_until = self._clock() + self.cooldown_s

    @property
    def failures(self) -> int:
        return self._failures


class LookupTimeout(Exception):
    pass


def _lookup_within(host: str, timeout_s: float) -> None:
    """Raise :class:`LookupTimeout` when resolving ``host`` takes longer than ``timeout_s``.

    getaddrinfo cannot be interrupted, so it runs in a daemon thread that is left to finish on its own;
    the circuit breaker keeps such threads to about one per dead server and cool-down.
    """
    try:
        ipaddress.ip_address(host.strip("[]"))
        return  # a literal address needs no lookup
    except ValueError:
        pass
    done = threading.Event()

    def lookup() -> None:
        try:
            socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except OSError:
            pass  # httpx looks the name up again and reports the failure itself
        finally:
            done.set()

    threading.Thread(target=lookup, name=f"lookup {host}", daemon=True).start()
    if not done.wait(timeout_s):
        raise LookupTimeout(host)


def breaker_for(base_url: str) -> CircuitBreaker:
    """The breaker of ``base_url`` in this app (one registry per app, so tests never share state)."""
    cfg = current_app.config
    registry: dict[str, CircuitBreaker] = current_app.extensions.setdefault("whatsapp_breakers", {})
    breaker = registry.get(base_url)
    if breaker is None:  # setdefault: two threads creating one at once end up with the same object
        candidate = CircuitBreaker(cfg["WHATSAPP_BREAKER_FAILURES"], cfg["WHATSAPP_BREAKER_COOLDOWN_S"])
        breaker = registry.setdefault(base_url, candidate)
    return breaker


def base_url_for(tenant_id: str) -> str:
    """Raises :class:`resolver.UnknownTenant`."""
    cfg = current_app.config
    return resolve_base_url(tenant_id, cfg["WHATSAPP_TENANT_URLS"], cfg["WHATSAPP_SERVER_URL"])


def call_node(method: str, tenant_id: str, action: str, json_body: Any = None) -> NodeResponse:
    """``METHOD {base}/tenants/{tenant_id}/{action}`` with ``X-Api-Key``."""
    cfg = current_app.config
    base_url = base_url_for(tenant_id)
    url = f"{base_url}/tenants/{quote(tenant_id, safe='')}/{action}"
    shown_url = _public_url(url)
    breaker = breaker_for(base_url)
    wait_s = breaker.allow()
    if wait_s > 0:
        return _unreachable(
            tenant_id,
            shown_url,
            f"{breaker.failures} failed call(s) in a row; not tried again for {wait_s:.1f} s",
            retry_after_s=wait_s,
        )
    headers = {"Accept": "application/json"}
    if cfg["WHATSAPP_API_KEY"]:
        headers["X-Api-Key"] = cfg["WHATSAPP_API_KEY"]
    timeout = cfg["WHATSAPP_TIMEOUT_S"]
    connect_timeout = min(cfg["WHATSAPP_CONNECT_TIMEOUT_S"], timeout)
    try:
        _lookup_within(urlsplit(base_url).hostname or "", connect_timeout)
        with httpx.Client(
            timeout=httpx.Timeout(timeout, connect=connect_timeout), trust_env=False, follow_redirects=False
        ) as client:
            resp = client.request(method, url, headers=headers, json=json_body)
    except (httpx.ConnectTimeout, LookupTimeout):
        breaker.record(ok=False)
        log.warning("WhatsApp server of tenant %s: no connection within %ss: %s", tenant_id, connect_timeout, shown_url)
        return _unreachable(tenant_id, shown_url, f"no connection within {connect_timeout:g} s")
    except httpx.TimeoutException:
        breaker.record(ok=False)
        log.warning("WhatsApp server of tenant %s timed out after %ss: %s", tenant_id, timeout, shown_url)
        return _unreachable(tenant_id, shown_url, f"no answer within {timeout:g} s")
    except httpx.HTTPError as exc:
        breaker.record(ok=False)
        log.warning("WhatsApp server of tenant %s unreachable (%s): %s", tenant_id, type(exc).__name__, shown_url)
        return _unreachable(tenant_id, shown_url, "connection failed")
    breaker.record(ok=True)  # any HTTP answer, even an error status, means the server is alive

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


def _unreachable(tenant_id: str, url: str, why: str, retry_after_s: float = 5.0) -> NodeResponse:
    return NodeResponse(
        503,
        {
            "error": "whatsapp_unreachable",
            "message": f"The WhatsApp server of tenant {tenant_id} at {url} is unreachable: {why}",
            "tenant_id": tenant_id,
            "url": url,
        },
        {"Retry-After": str(max(1, math.ceil(retry_after_s)))},
    )
