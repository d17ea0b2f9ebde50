"""Run probe targets: per target an asyncio poll loop (interval, Retry-After) until it passes, fails for good,
or its deadline passes; a semaphore bounds the requests in flight.

Requests go through one keep-alive client on the same event loop (`probe/http.py`: pooled connections per
origin, no thread per request): a probe of 200 tenants costs about what one `curl` fetching the same URLs
over one connection costs (benchmarks/live_probe.py); httpx on a thread pool cost ~2.5x that."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from deploytool.errors import UserError
from deploytool.probe.checks import Verdict, judge
from deploytool.probe.http import Client, TransportError
from deploytool.probe.targets import ProbeTarget, display_url
from deploytool.redact import redact_values as redact

Status = Literal["pass", "idle", "fail", "skip"]  # idle passes: the tenant waits for a person (checks.IDLE_ANSWERS)
MAX_ATTEMPT_TIMEOUT = 10.0  # one request never waits longer, so a hung server is asked again


@dataclass(frozen=True)
class ProbeResult:
    """Exactly one per target. `url` never holds a secret; `reason` says what came back."""

    id: str
    kind: str
    service: str
    tenant: str | None
    via: str | None
    url: str | None
    status: Status
    http_status: int | None
    attempts: int
    elapsed: float
    reason: str


@dataclass(frozen=True)
class ProbeReport:
    """Results in target order. `ok`: no target failed and at least one passed (`pass` or `idle`)."""

    environment: str
    results: list[ProbeResult]
    elapsed: float

    def count(self, status: Status) -> int:
        return sum(1 for r in self.results if r.status == status)

    @property
    def passed(self) -> int:
        return self.count("pass")

    @property
    def failed(self) -> int:
        return self.count("fail")

    @property
    def skipped(self) -> int:
        return self.count("skip")

    @property
    def idle(self) -> int:
        return self.count("idle")

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.passed + self.idle > 0

    @property
    def failed_tenants(self) -> list[str]:
        """Tenants with at least one failed target, in first-failure order."""
        seen: dict[str, None] = {}
        for r in self.results:
            if r.status == "fail" and r.tenant is not None:
                seen.setdefault(r.tenant, None)
        return list(seen)


OnResult = Callable[[ProbeResult], None]


def missing_key_reason(name: str) -> str:
    return f"{name} is not set: give it in the environment or render the environment first"


async def _probe_one(
    target: ProbeTarget,
    client: Client,
    sem: asyncio.Semaphore,
    keys: Mapping[str, str],
    timeout: float,
    interval: float,
    attempt_cap: float,
) -> ProbeResult:
    secrets = [v for v in keys.values() if v]
    shown = redact(display_url(target.url), secrets) if target.url else None

    def result(
        status: Status, reason: str, http: int | None = None, attempts: int = 0, elapsed: float = 0.0
    ) -> ProbeResult:
        return ProbeResult(
            id=target.id,
            kind=target.kind,
            service=target.service,
            tenant=target.tenant,
            via=target.via,
            url=shown,
            status=status,
            http_status=http,
            attempts=attempts,
            elapsed=round(elapsed, 3),
            reason=redact(reason, secrets),
        )

    if target.url is None:
        return result("skip", target.skip_reason or "skipped")
    headers = {"Accept": "application/json"}
    if target.auth:
        key = keys.get(target.auth)
        if not key:
            return result("fail", missing_key_reason(target.auth))
        headers["X-Api-Key"] = key

    start: float | None = None
    deadline = 0.0
    attempts = 0
    http_status: int | None = None
    url = target.url

    while True:
        async with sem:
            now = time.monotonic()
            if start is None:
                start, deadline = now, now + timeout
            attempts += 1
            attempt_timeout = max(0.05, min(attempt_cap, deadline - now))
            try:
                code, resp_headers, body = await client.get(url, headers, attempt_timeout)
                http_status = code
                verdict = judge(target.kind, target.tenant, code, resp_headers, body)
            except TransportError as exc:
                http_status = None
                verdict = Verdict("retry" if exc.retry else "fail", exc.reason)
        now = time.monotonic()
        if verdict.outcome != "retry":
            return result(verdict.outcome, verdict.reason, http_status, attempts, now - start)
        delay = max(interval, verdict.retry_after or 0.0)
        if now + delay >= deadline:
            note = f" (still failing after {attempts} attempt{'s' if attempts != 1 else ''} in {now - start:.1f}s)"
            return result("fail", verdict.reason + note, http_status, attempts, now - start)
        await asyncio.sleep(delay)


async def run_probe_async(
    targets: Sequence[ProbeTarget],
    keys: Mapping[str, str],
    timeout: float = 30.0,
    interval: float = 1.0,
    concurrency: int = 16,
    on_result: OnResult | None = None,
    *,
    environment: str = "",
) -> ProbeReport:
    """As `run_probe`, inside a running event loop."""
    if not timeout > 0:
        raise UserError(f"--timeout: expected seconds > 0, got {timeout}")
    if not interval >= 0:
        raise UserError(f"interval: expected seconds >= 0, got {interval}")
    if concurrency < 1:
        raise UserError(f"--concurrency: expected an integer >= 1, got {concurrency}")
    began = time.monotonic()
    sem = asyncio.Semaphore(concurrency)
    attempt_cap = min(timeout, MAX_ATTEMPT_TIMEOUT)

    client = Client(max_connections=concurrency)

    async def one(target: ProbeTarget) -> ProbeResult:
        res = await _probe_one(target, client, sem, keys, timeout, interval, attempt_cap)
        if on_result is not None:
            on_result(res)
        return res

    try:
        results = await asyncio.gather(*(one(t) for t in targets))
    finally:
        client.close()
    return ProbeReport(
        environment=environment,
        results=list(results),
        elapsed=round(time.monotonic() - began, 3),
    )


def run_probe(
    targets: Sequence[ProbeTarget],
    keys: Mapping[str, str],
    timeout: float = 30.0,
    interval: float = 1.0,
    concurrency: int = 16,
    on_result: OnResult | None = None,
    *,
    environment: str = "",
) -> ProbeReport:
    """Probe every target (skipped ones are reported as such) and return one result per target, in order.

    `keys` maps key names (`target.auth`) to values; a missing key fails only the targets that need it.
    Each target is polled every `interval` s (or the server's Retry-After, capped at 10 s) while it answers
    503 or cannot be reached, until `timeout` s after its first attempt; at most `concurrency` requests are
    in flight. `on_result` is called with each result as soon as it is known.
    """
    return asyncio.run(
        run_probe_async(targets, keys, timeout, interval, concurrency, on_result, environment=environment)
    )
