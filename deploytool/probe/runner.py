"""Run probe targets: each attempt is one GET on a thread of a pool of `concurrency` workers, each worker with
its own requests.Session (kept-alive connections, proxies and CA bundle from the environment; `probe/fetch.py`).
The calling thread schedules the attempts of every target (interval, Retry-After) until it passes, fails for
good, or its deadline passes, so a target waiting to be asked again holds no worker, and reports each result.

requests is imported on the first probe run, not with this module: every command imports the CLI's modules,
and only `probe` sends a request.
"""

from __future__ import annotations

import heapq
import queue
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

from deploytool.errors import UserError
from deploytool.probe.checks import Verdict, judge
from deploytool.probe.targets import ProbeTarget, display_url
from deploytool.redact import redact_values as redact

if TYPE_CHECKING:
    from deploytool.probe.fetch import Sessions

Status = Literal["pass", "idle", "fail", "skip"]  # idle passes: the tenant waits for a person (checks.IDLE_ANSWERS)
MAX_ATTEMPT_TIMEOUT = 10.0  # one request never waits longer, so a hung server is asked again
# Kept-alive connections all workers may hold at once, spread over their sessions: a per-port deployment has an
# origin per tenant, and each worker keeps a connection to every origin it asked (up to its share of this).
MAX_IDLE_CONNECTIONS = 1024


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


@dataclass
class _Polled:
    """A target being asked: its request, and its attempts so far (changed by the scheduling thread only)."""

    index: int
    target: ProbeTarget
    url: str
    headers: dict[str, str]
    shown: str
    start: float | None = None
    deadline: float = 0.0
    attempts: int = 0


Attempt = tuple[float, Verdict, int | None]  # when it started, the verdict, the HTTP status (None: no answer)


def _result(
    target: ProbeTarget,
    shown: str | None,
    secrets: list[str],
    status: Status,
    reason: str,
    http: int | None = None,
    attempts: int = 0,
    elapsed: float = 0.0,
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


def _prepare(index: int, target: ProbeTarget, keys: Mapping[str, str], secrets: list[str]) -> ProbeResult | _Polled:
    """The result of a target that is not asked (skipped, or its key is missing), else its request."""
    if target.url is None:
        return _result(target, None, secrets, "skip", target.skip_reason or "skipped")
    shown = redact(display_url(target.url), secrets)
    headers = {"Accept": "application/json"}
    if target.auth:
        key = keys.get(target.auth)
        if not key:
            return _result(target, shown, secrets, "fail", missing_key_reason(target.auth))
        headers["X-Api-Key"] = key
    return _Polled(index, target, target.url, headers, shown)


def _attempt(sessions: Sessions, polled: _Polled, deadline: float | None, timeout: float, cap: float) -> Attempt:
    """One GET of a target, on a worker thread, judged. `deadline` is None on the target's first attempt."""
    from deploytool.probe import fetch

    now = time.monotonic()
    if deadline is None:
        deadline = now + timeout
    try:
        code, headers, body = fetch.get(
            sessions.session(), polled.url, polled.headers, max(0.05, min(cap, deadline - now))
        )
    except fetch.TransportError as exc:
        return now, Verdict("retry" if exc.retry else "fail", exc.reason), None
    return now, judge(polled.target.kind, polled.target.tenant, code, headers, body), code


def _poll(
    polled: list[_Polled],
    secrets: list[str],
    timeout: float,
    interval: float,
    concurrency: int,
    finish: Callable[[int, ProbeResult], None],
) -> None:
    """Ask every target until it has its result; at most `concurrency` requests in flight."""
    from concurrent.futures import ThreadPoolExecutor

    from deploytool.probe import fetch

    workers = min(concurrency, len(polled))
    origins = len({urlsplit(p.url)[:2] for p in polled})
    sessions = fetch.Sessions(host_pools=max(10, min(origins, MAX_IDLE_CONNECTIONS // workers)))
    cap = min(timeout, MAX_ATTEMPT_TIMEOUT)
    # Attempts come back through a queue (not `concurrent.futures.wait` over every future, which costs a pass
    # over all of them per answer); an exception in a worker is a bug, raised here.
    answers: queue.SimpleQueue[tuple[_Polled, Attempt | BaseException]] = queue.SimpleQueue()

    def work(p: _Polled, deadline: float | None) -> None:
        try:
            answers.put((p, _attempt(sessions, p, deadline, timeout, cap)))
        except BaseException as exc:
            answers.put((p, exc))

    due = [(0.0, p.index, p) for p in polled]  # a heap of (when, tie-break, target): everything is due now
    pending = 0
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="deploytool-probe")
    try:
        while due or pending:
            now = time.monotonic()
            while due and due[0][0] <= now:
                p = heapq.heappop(due)[2]
                pool.submit(work, p, None if p.start is None else p.deadline)
                pending += 1
            wait = max(0.0, due[0][0] - now) if due else None
            if not pending:
                time.sleep(wait or 0.0)
                continue
            try:
                p, outcome = answers.get(timeout=wait)
            except queue.Empty:
                continue
            pending -= 1
            if isinstance(outcome, BaseException):
                raise outcome
            started, verdict, http_status = outcome
            if p.start is None:
                p.start, p.deadline = started, started + timeout
            p.attempts += 1
            now = time.monotonic()
            elapsed = now - p.start
            delay = max(interval, verdict.retry_after or 0.0)
            if verdict.outcome == "retry" and now + delay < p.deadline:
                heapq.heappush(due, (now + delay, p.index, p))
                continue
            status: Status = "fail" if verdict.outcome == "retry" else verdict.outcome
            reason = verdict.reason
            if verdict.outcome == "retry":
                tries = f"{p.attempts} attempt{'s' if p.attempts != 1 else ''}"
                reason += f" (still failing after {tries} in {elapsed:.1f}s)"
            finish(p.index, _result(p.target, p.shown, secrets, status, reason, http_status, p.attempts, elapsed))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # Ctrl-C: queued attempts are dropped, running ones end
        sessions.close()


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
    in flight. `on_result` is called in this thread with each result as soon as it is known.
    """
    if not timeout > 0:
        raise UserError(f"--timeout: expected seconds > 0, got {timeout}")
    if not interval >= 0:
        raise UserError(f"interval: expected seconds >= 0, got {interval}")
    if concurrency < 1:
        raise UserError(f"--concurrency: expected an integer >= 1, got {concurrency}")
    began = time.monotonic()
    secrets = [v for v in keys.values() if v]
    results: list[ProbeResult | None] = [None] * len(targets)

    def finish(index: int, result: ProbeResult) -> None:
        results[index] = result
        if on_result is not None:
            on_result(result)

    polled: list[_Polled] = []
    for index, target in enumerate(targets):
        prepared = _prepare(index, target, keys, secrets)
        if isinstance(prepared, _Polled):
            polled.append(prepared)
        else:
            finish(index, prepared)
    if polled:
        _poll(polled, secrets, timeout, interval, concurrency, finish)
    done = [r for r in results if r is not None]
    assert len(done) == len(targets)  # every target got exactly one result
    return ProbeReport(environment=environment, results=done, elapsed=round(time.monotonic() - began, 3))
