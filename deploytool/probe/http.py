"""A small keep-alive HTTP/1.1 GET client for the probe, on asyncio streams: pooled connections per origin.

A probe asks one server hundreds of small questions. httpx spent ~0.5 ms of Python per request (pools,
models, locks, a thread per request in flight); here a request is one write and a few reads on a kept-alive
connection of the event loop, so a probe of 200 tenants costs about what one `curl` fetching the same URLs
costs (benchmarks/live_probe.py). No proxies from the environment, no redirects followed (a redirect is an
answer to judge), TLS verified with the system's certificates (`SSL_CERT_FILE` / `SSL_CERT_DIR` honoured).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Mapping
from urllib.parse import urlsplit

MAX_BODY = 16 * 1024 * 1024  # an answer larger than this is not a health or QR answer
USER_AGENT = "deploytool-probe"

Answer = tuple[int, Mapping[str, str], bytes]  # status, headers (lower-case names), body
Origin = tuple[str, str, int]
Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class TransportError(Exception):
    """No HTTP answer. `reason` says what happened; `retry`: worth asking again (not ready yet?)."""

    def __init__(self, reason: str, retry: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry = retry


class _Dropped(Exception):
    """The connection ended before a whole answer (a kept-alive one may have been closed by the server)."""


class Client:
    """GET over kept-alive connections (at most `max_connections` idle per origin), in one event loop."""

    def __init__(self, max_connections: int) -> None:
        self.max_connections = max_connections
        self._idle: dict[Origin, list[Connection]] = {}
        self._tls: ssl.SSLContext | None = None

    async def get(self, url: str, headers: Mapping[str, str], timeout: float) -> Answer:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            raise TransportError(f"request failed: unsupported URL {url!r}", retry=False)
        try:
            port = parts.port or (443 if scheme == "https" else 80)
        except ValueError as exc:
            raise TransportError(f"request failed: {exc}", retry=False) from None
        origin: Origin = (scheme, parts.hostname, port)
        default_port = port == (443 if scheme == "https" else 80)
        host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
        lines = [
            f"GET {parts.path or '/'}{'?' + parts.query if parts.query else ''} HTTP/1.1",
            f"Host: {host if default_port else f'{host}:{port}'}",
            f"User-Agent: {USER_AGENT}",
            "Accept-Encoding: identity",
            *(f"{name}: {value}" for name, value in headers.items()),
        ]
        request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        try:
            return await asyncio.wait_for(self._exchange(origin, request), timeout)
        except TimeoutError:
            raise TransportError(f"timeout after {timeout:.3g}s", retry=True) from None

    async def _exchange(self, origin: Origin, request: bytes) -> Answer:
        for _ in range(2):  # a kept-alive connection the server closed meanwhile is replaced once
            idle = self._idle.get(origin)
            reused = bool(idle)
            reader, writer = idle.pop() if idle else await self._connect(origin)
            try:
                writer.write(request)
                status, headers, body, keep = await _read_answer(reader)
            except (_Dropped, ConnectionError, asyncio.IncompleteReadError) as exc:
                writer.close()
                if reused:
                    continue
                detail = str(exc) or type(exc).__name__ if not isinstance(exc, asyncio.IncompleteReadError) else ""
                raise TransportError(f"connection dropped: {detail or 'the answer ended early'}", retry=True) from None
            except BaseException:  # a timeout (cancellation) or a malformed answer: this connection is done
                writer.close()
                raise
            pool = self._idle.setdefault(origin, [])
            if keep and len(pool) < self.max_connections:
                pool.append((reader, writer))
            else:
                writer.close()
            return status, headers, body
        raise TransportError("connection dropped: the server closed the connection twice", retry=True)

    async def _connect(self, origin: Origin) -> Connection:
        scheme, host, port = origin
        tls: ssl.SSLContext | None = None
        if scheme == "https":
            if self._tls is None:
                self._tls = ssl.create_default_context()
            tls = self._tls
        try:
            reader, writer = await asyncio.open_connection(host, port, ssl=tls, limit=1 << 20)
        except ConnectionRefusedError:
            raise TransportError("connection refused", retry=True) from None
        except socket.gaierror as exc:
            raise TransportError(f"host name not resolved ({exc})", retry=True) from None
        except OSError as exc:  # unreachable, TLS handshake, ...
            raise TransportError(f"connection failed: {exc or type(exc).__name__}", retry=True) from None
        sock = writer.get_extra_info("socket")
        if sock is not None:  # requests go out at once, not after the delayed ACK of the last answer
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return reader, writer

    def close(self) -> None:
        idle, self._idle = self._idle, {}
        for connections in idle.values():
            for _, writer in connections:
                writer.close()


async def _read_answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes, bool]:
    """One HTTP/1.x answer: (status, headers, body, whether the connection may be used again)."""
    while True:
        line = await reader.readline()
        if not line:
            raise _Dropped("the server closed the connection")
        version, _, rest = line.decode("latin-1").partition(" ")
        code = rest[:3]
        if not version.startswith("HTTP/1.") or not code.isdigit():
            raise TransportError(f"connection dropped: not an HTTP answer: {line[:60]!r}", retry=True)
        headers: dict[str, str] = {}
        while True:
            raw = await reader.readline()
            if raw in (b"\r\n", b"\n"):
                break
            if not raw:
                raise _Dropped("the answer's headers ended early")
            name, _, value = raw.decode("latin-1").partition(":")
            key = name.strip().lower()
            headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
        status = int(code)
        if 100 <= status < 200:
            continue  # 100 Continue and friends: the real answer follows
        break
    connection = headers.get("connection", "").lower()
    keep = "close" not in connection and (version == "HTTP/1.1" or "keep-alive" in connection)
    if status in (204, 304):
        return status, headers, b"", keep
    if "chunked" in headers.get("transfer-encoding", "").lower():
        chunks: list[bytes] = []
        size_total = 0
        while True:
            size_line = await reader.readline()
            try:
                size = int(size_line.split(b";")[0].strip(), 16)
            except ValueError:
                raise _Dropped(f"bad chunk size {size_line[:20]!r}") from None
            if size == 0:
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return status, headers, b"".join(chunks), keep
            size_total += size
            if size_total > MAX_BODY:
                raise TransportError(f"request failed: answer larger than {MAX_BODY} bytes", retry=False)
            chunks.append(await reader.readexactly(size))
            await reader.readexactly(2)
    length = headers.get("content-length")
    if length is not None:
        if not length.isdigit():
            raise _Dropped(f"bad Content-Length {length!r}")
        if int(length) > MAX_BODY:
            raise TransportError(f"request failed: answer larger than {MAX_BODY} bytes", retry=False)
        return status, headers, await reader.readexactly(int(length)), keep
    parts: list[bytes] = []  # no length: the body ends with the connection
    received = 0
    while chunk := await reader.read(1 << 16):
        received += len(chunk)
        if received > MAX_BODY:
            raise TransportError(f"request failed: answer larger than {MAX_BODY} bytes", retry=False)
        parts.append(chunk)
    return status, headers, b"".join(parts), False
