"""One probe GET with requests: the answer (status, headers, body), or a TransportError saying what happened.

requests is the one HTTP stack: it takes HTTP_PROXY / HTTPS_PROXY / NO_PROXY and REQUESTS_CA_BUNDLE from the
environment (trust_env), as curl would, so a deployment reachable only through a proxy is probed through it.
It bounds what a server can send (100 header lines of at most 64 KiB); the body is bounded here. Redirects are
not followed: a redirect is an answer to judge. Imported only by a probe run (`runner.run_probe`): every other
command would pay for requests' import.
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Iterator, Mapping

import requests
from requests.adapters import HTTPAdapter

MAX_BODY = 16 * 1024 * 1024  # an answer larger than this is not a health or QR answer
USER_AGENT = "deploytool-probe"

Answer = tuple[int, Mapping[str, str], bytes]  # status, headers (case-insensitive names), body


class TransportError(Exception):
    """No HTTP answer. `reason` says what happened; `retry`: worth asking again (not ready yet?).
    `dropped`: the connection ended under the request, which a kept-alive one the server closed does too."""

    def __init__(self, reason: str, retry: bool, dropped: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry = retry
        self.dropped = dropped


class Sessions:
    """A requests.Session per worker thread: its kept-alive connections are used by one thread at a time, so
    no lock is shared between workers. `close` closes every session (and its connections) made."""

    def __init__(self, host_pools: int) -> None:
        self.host_pools = host_pools
        self._local = threading.local()
        self._made: list[requests.Session] = []
        self._lock = threading.Lock()

    def session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()  # trust_env stays True: proxies and CA bundle from the environment
            session.headers["User-Agent"] = USER_AGENT
            # One connection per origin (one thread uses this session), for up to `host_pools` origins at once:
            # a per-port deployment has an origin per tenant, and the default of 10 would reconnect each time.
            adapter = HTTPAdapter(pool_connections=self.host_pools, pool_maxsize=1, max_retries=0)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            with self._lock:
                self._made.append(session)
            self._local.session = session
        return session

    def close(self) -> None:
        with self._lock:
            made, self._made = self._made, []
        for session in made:
            session.close()


def get(session: requests.Session, url: str, headers: Mapping[str, str], timeout: float) -> Answer:
    """GET `url`; at most `timeout` s to connect and between bytes of the answer, and about that for the body."""
    for attempt in range(2):
        try:
            return _get(session, url, headers, timeout)
        except TransportError as exc:
            # A kept-alive connection the server closed meanwhile fails the next request on it; send it again
            # once, on a new connection, instead of waiting an interval (GET is idempotent).
            if not exc.dropped or attempt:
                raise
    raise AssertionError("unreachable")


def _get(session: requests.Session, url: str, headers: Mapping[str, str], timeout: float) -> Answer:
    try:
        response = session.get(url, headers=headers, timeout=timeout, allow_redirects=False, stream=True)
    except requests.RequestException as exc:
        raise transport_error(exc, timeout) from None
    with response:  # closes the connection unless the whole body was read (then it goes back to the pool)
        length = response.headers.get("content-length", "")
        if length.isdigit() and int(length) > MAX_BODY:
            raise TransportError(f"request failed: answer larger than {MAX_BODY} bytes", retry=False)
        ends = time.monotonic() + timeout  # a server trickling bytes must not hold an attempt for ever
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in response.iter_content(1 << 16):
                size += len(chunk)
                if size > MAX_BODY:
                    raise TransportError(f"request failed: answer larger than {MAX_BODY} bytes", retry=False)
                chunks.append(chunk)
                if time.monotonic() > ends:
                    raise TransportError(f"timeout after {timeout:.3g}s", retry=True)
        except requests.RequestException as exc:
            raise transport_error(exc, timeout) from None
        return response.status_code, response.headers, b"".join(chunks)


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and what it wraps: requests wraps urllib3's errors (MaxRetryError.reason, ProtocolError's
    arguments), which wrap the OSError or http.client error that happened."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        inner = [getattr(current, "reason", None), current.__cause__, current.__context__, *current.args]
        todo.extend(e for e in inner if isinstance(e, BaseException))


def transport_error(exc: requests.RequestException, timeout: float) -> TransportError:
    """What went wrong, in a few words, and whether asking again may help (a server not up yet)."""
    if isinstance(exc, requests.Timeout):  # connect or read, to the server or to the proxy
        return TransportError(f"timeout after {timeout:.3g}s", retry=True)
    if isinstance(exc, (requests.exceptions.InvalidURL, requests.exceptions.InvalidSchema)):
        return TransportError(f"request failed: {exc}", retry=False)
    if isinstance(exc, requests.exceptions.MissingSchema | requests.exceptions.InvalidHeader):
        return TransportError(f"request failed: {exc}", retry=False)
    causes = list(_causes(exc))
    root = _root(causes)
    if isinstance(exc, requests.exceptions.ProxyError):
        return TransportError(f"proxy failed: {root}", retry=True)
    for cause in causes:
        if isinstance(cause, ConnectionRefusedError):
            return TransportError("connection refused", retry=True)
        if isinstance(cause, socket.gaierror):
            return TransportError(f"host name not resolved ({cause})", retry=True)
    if isinstance(exc, requests.exceptions.SSLError):
        return TransportError(f"TLS failed: {root}", retry=True)
    for cause in causes:
        if isinstance(cause, http.client.RemoteDisconnected | ConnectionResetError | BrokenPipeError):
            return TransportError(f"connection dropped: {cause or type(cause).__name__}", retry=True, dropped=True)
        if isinstance(cause, http.client.IncompleteRead):
            return TransportError("connection dropped: the answer ended early", retry=True)
        if isinstance(cause, http.client.BadStatusLine):
            return TransportError(f"connection dropped: not an HTTP answer: {cause}", retry=True)
        if isinstance(cause, http.client.HTTPException):  # more than 100 header lines, a line too long
            return TransportError(f"answer refused: {cause}", retry=False)
    if isinstance(exc, requests.exceptions.ChunkedEncodingError | requests.exceptions.ContentDecodingError):
        return TransportError(f"connection dropped: {root}", retry=True)
    return TransportError(f"connection failed: {root}", retry=True)


def _root(causes: list[BaseException]) -> str:
    """The innermost error's own words (an OSError's strerror), not urllib3's wrapping of it."""
    for cause in reversed(causes):
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror
    for cause in reversed(causes):
        if str(cause):
            return str(cause)
    return type(causes[0]).__name__
