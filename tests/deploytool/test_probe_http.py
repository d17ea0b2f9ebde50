"""The probe's keep-alive client: one connection reused, a connection the server closed replaced, errors named."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from deploytool.probe.http import Client, TransportError


class Counting(ThreadingHTTPServer):
    daemon_threads = True
    connections = 0
    close_after = 0  # answer this many requests per connection, then close it (0: keep it open)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Counting

    def setup(self) -> None:
        super().setup()
        self.server.connections += 1
        self.served = 0

    def do_GET(self) -> None:
        self.served += 1
        body = f'{{"path": "{self.path}", "key": "{self.headers.get("X-Api-Key")}"}}'.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        if self.server.close_after and self.served >= self.server.close_after:
            self.close_connection = True  # without `Connection: close`: the client finds out on its next request

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[Counting]:
    srv = Counting(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()


def test_one_connection_is_kept_alive_for_many_requests(server: Counting) -> None:
    base = f"http://127.0.0.1:{server.server_address[1]}"

    async def run() -> None:
        client = Client(max_connections=4)
        for i in range(50):
            status, headers, body = await client.get(f"{base}/tenants/{i}/qr?x=1", {"X-Api-Key": "k"}, 5.0)
            assert status == 200 and headers["content-length"] == str(len(body))
            assert body == f'{{"path": "/tenants/{i}/qr?x=1", "key": "k"}}'.encode()
        client.close()

    asyncio.run(run())
    assert server.connections == 1


def test_concurrent_requests_open_connections_and_keep_at_most_the_limit(server: Counting) -> None:
    base = f"http://127.0.0.1:{server.server_address[1]}"

    async def run() -> None:
        client = Client(max_connections=2)
        for _ in range(3):
            answers = await asyncio.gather(*(client.get(f"{base}/{i}", {}, 5.0) for i in range(6)))
            assert [a[2] for a in answers] == [f'{{"path": "/{i}", "key": "None"}}'.encode() for i in range(6)]
        client.close()

    asyncio.run(run())
    assert 2 <= server.connections <= 6 + 2 * 4


def test_a_connection_the_server_closed_is_replaced_without_an_error(server: Counting) -> None:
    server.close_after = 2
    base = f"http://127.0.0.1:{server.server_address[1]}"

    async def run() -> list[int]:
        client = Client(max_connections=1)
        try:
            return [(await client.get(f"{base}/{i}", {}, 5.0))[0] for i in range(6)]
        finally:
            client.close()

    assert asyncio.run(run()) == [200] * 6
    assert server.connections == 3


def test_transport_errors_say_what_happened() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    async def error(url: str, timeout: float = 2.0) -> TransportError:
        client = Client(max_connections=1)
        with pytest.raises(TransportError) as caught:
            await client.get(url, {}, timeout)
        client.close()
        return caught.value

    refused = asyncio.run(error(f"http://127.0.0.1:{port}/health"))
    assert refused.reason == "connection refused" and refused.retry
    bad = asyncio.run(error("ftp://127.0.0.1/x"))
    assert not bad.retry and "unsupported URL" in bad.reason
    with socket.socket() as silent:  # accepts, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        slow = asyncio.run(error(f"http://127.0.0.1:{silent.getsockname()[1]}/", 0.2))
    assert slow.reason == "timeout after 0.2s" and slow.retry
