"""One dead WhatsApp server must not stall the others: separate connect timeout, per-server circuit breaker."""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask_service_testlib import OPS_KEY, FakeNode, free_port

from flask_service.config import ConfigError, load_config

STRONG_KEY = "isolation-test-secret-key-0123456789abcdef"

OPS = {"X-Api-Key": OPS_KEY}
REPO = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def swallowing_address() -> Iterator[str]:
    """A loopback address whose connects hang like a killed container's: a listener that never accepts,
    with its accept queue filled, so the kernel drops further SYNs instead of refusing them."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    address = listener.getsockname()
    fillers: list[socket.socket] = []
    try:
        for _ in range(16):  # the queue holds backlog + 1; stop at the first connect that does not complete
            client = socket.socket()
            client.settimeout(0.3)
            try:
                client.connect(address)
            except TimeoutError:
                client.close()
                break
            fillers.append(client)
        else:
            pytest.fail("could not fill the accept queue of a loopback listener")
        yield f"http://{address[0]}:{address[1]}"
    finally:
        for client in fillers:
            client.close()
        listener.close()


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_after_the_threshold_and_lets_one_trial_through_after_the_cooldown() -> None:
    from flask_service.whatsapp import CircuitBreaker

    clock = Clock()
    breaker = CircuitBreaker(failures=2, cooldown_s=5.0, clock=clock)
    assert breaker.allow() == 0
    breaker.record(ok=False)
    assert breaker.allow() == 0  # one failure is below the threshold
    breaker.record(ok=False)
    assert breaker.allow() == pytest.approx(5.0)
    clock.now += 4.0
    assert breaker.allow() == pytest.approx(1.0)
    clock.now += 1.0
    assert breaker.allow() == 0  # the trial call
    assert breaker.allow() == pytest.approx(5.0)  # others keep failing fast while it runs
    breaker.record(ok=False)  # the trial failed: open again for a whole cool-down
    assert breaker.allow() == pytest.approx(5.0)
    clock.now += 5.0
    assert breaker.allow() == 0
    breaker.record(ok=True)  # the trial answered: closed
    assert breaker.allow() == 0 and breaker.allow() == 0
    breaker.record(ok=False)
    assert breaker.allow() == 0  # the count started again from zero


def test_a_lost_trial_does_not_keep_the_circuit_open_for_ever() -> None:
    from flask_service.whatsapp import CircuitBreaker

    clock = Clock()
    breaker = CircuitBreaker(failures=1, cooldown_s=2.0, clock=clock)
    breaker.record(ok=False)
    clock.now += 2.0
    assert breaker.allow() == 0  # a trial that never reports back (its thread died)
    clock.now += 2.0
    assert breaker.allow() == 0  # another trial after one more cool-down


def test_config_reads_connect_timeout_and_breaker_settings() -> None:
    names = ("WHATSAPP_CONNECT_TIMEOUT_S", "WHATSAPP_BREAKER_FAILURES", "WHATSAPP_BREAKER_COOLDOWN_S")
    cfg = load_config({"SECRET_KEY": STRONG_KEY})
    assert tuple(cfg[name] for name in names) == (1.0, 1, 5.0)
    assert cfg["WHATSAPP_CONNECT_TIMEOUT_S"] < cfg["WHATSAPP_TIMEOUT_S"]
    cfg = load_config(
        {
            "SECRET_KEY": STRONG_KEY,
            "WHATSAPP_CONNECT_TIMEOUT_S": "0.25",
            "WHATSAPP_BREAKER_FAILURES": "3",
            "WHATSAPP_BREAKER_COOLDOWN_S": "2",
        }
    )
    assert tuple(cfg[name] for name in names) == (0.25, 3, 2.0)
    for name, value in [
        ("WHATSAPP_CONNECT_TIMEOUT_S", "0"),
        ("WHATSAPP_BREAKER_FAILURES", "0"),
        ("WHATSAPP_BREAKER_FAILURES", "x"),
        ("WHATSAPP_BREAKER_COOLDOWN_S", "-1"),
    ]:
        with pytest.raises(ConfigError, match=name):
            load_config({"SECRET_KEY": STRONG_KEY, name: value})


def test_a_server_that_swallows_connects_costs_the_connect_timeout_not_the_read_timeout(make_app) -> None:  # type: ignore[no-untyped-def]
    with swallowing_address() as url:
        app = make_app(WHATSAPP_SERVER_URL=url, WHATSAPP_TIMEOUT_S=5.0, WHATSAPP_CONNECT_TIMEOUT_S=0.3)
        started = time.monotonic()
        resp = app.test_client().get("/api/qr?user_id=7", headers=OPS)
        elapsed = time.monotonic() - started
    assert resp.status_code == 503
    body = resp.get_json()
    assert body["error"] == "whatsapp_unreachable" and body["tenant_id"] == "7"
    assert "no connection within 0.3 s" in body["message"]
    assert elapsed < 2.0  # one read timeout (5 s) would be far more


def test_a_slow_answer_still_gets_the_read_timeout(make_app, node: FakeNode) -> None:  # type: ignore[no-untyped-def]
    node.behaviour["5"] = "slow"
    node.slow_s = 0.6
    app = make_app(WHATSAPP_SERVER_URL=node.url, WHATSAPP_TIMEOUT_S=3.0, WHATSAPP_CONNECT_TIMEOUT_S=0.1)
    resp = app.test_client().get("/api/whatsapp-status?user_id=5", headers=OPS)
    assert resp.status_code != 503, resp.get_json()


def test_repeated_calls_to_a_dead_server_fail_fast_and_other_servers_are_untouched(make_app, node: FakeNode) -> None:  # type: ignore[no-untyped-def]
    with swallowing_address() as dead:
        app = make_app(
            WHATSAPP_TENANT_URLS={"1": dead, "2": dead, "3": node.url},
            WHATSAPP_TIMEOUT_S=5.0,
            WHATSAPP_CONNECT_TIMEOUT_S=0.5,
            WHATSAPP_BREAKER_COOLDOWN_S=30.0,
        )
        client = app.test_client()
        assert client.get("/api/qr?user_id=1", headers=OPS).status_code == 503  # pays the connect timeout once
        for tenant in ("1", "2", "1", "2"):
            started = time.monotonic()
            resp = client.get(f"/api/qr?user_id={tenant}", headers=OPS)
            assert time.monotonic() - started < 0.2, "the open circuit must answer without trying to connect"
            assert resp.status_code == 503
            body = resp.get_json()
            assert body["error"] == "whatsapp_unreachable" and body["tenant_id"] == tenant
            assert f"tenant {tenant}" in body["message"] and "not tried again" in body["message"]
            assert 1 <= int(resp.headers["Retry-After"]) <= 30
        assert client.get("/api/qr?user_id=3", headers=OPS).status_code == 200  # another server: own circuit


def test_the_circuit_closes_when_the_server_answers_again(make_app) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    app = make_app(WHATSAPP_SERVER_URL=f"http://127.0.0.1:{port}", WHATSAPP_BREAKER_COOLDOWN_S=0.2)
    client = app.test_client()
    assert "connection failed" in client.get("/api/qr?user_id=1", headers=OPS).get_json()["message"]
    assert "not tried again" in client.get("/api/qr?user_id=1", headers=OPS).get_json()["message"]
    node = FakeNode(port=port)
    try:
        deadline = time.monotonic() + 5
        status = 503
        while status != 200 and time.monotonic() < deadline:
            status = client.get("/api/qr?user_id=1", headers=OPS).status_code
            time.sleep(0.05)
        assert status == 200
    finally:
        node.close()


@pytest.mark.parametrize("where", ["flask_service/Dockerfile", "deploytool.yaml"])
def test_web_runs_threaded_workers_so_one_hung_tenant_cannot_hold_them_all(where: str) -> None:
    """The image's CMD (Railway) and the spec's `start` (compose); the e2e test proves the effect."""
    text = (REPO / where).read_text()
    starts = [line for line in text.splitlines() if "gunicorn" in line and not line.lstrip().startswith("#")]
    assert starts, f"{where}: no gunicorn command"
    for line in starts:
        assert "--worker-class gthread" in line, line
        threads = re.search(r"--threads\s+\\?\"?(?:\$\{WEB_THREADS:-)?(\d+)", line)
        assert threads and int(threads.group(1)) >= 4, line


def test_a_name_lookup_that_hangs_costs_the_connect_timeout(make_app, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """Docker's DNS forwards a stopped container's name upstream; without an answer, getaddrinfo blocks 10 s."""
    real = socket.getaddrinfo
    release = threading.Event()

    def hanging(host: str, *args, **kwargs):  # type: ignore[no-untyped-def]
        if host == "whatsapp-gone":
            release.wait(10)
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", hanging)
    app = make_app(WHATSAPP_SERVER_URL="http://whatsapp-gone:5001", WHATSAPP_CONNECT_TIMEOUT_S=0.3)
    try:
        started = time.monotonic()
        resp = app.test_client().get("/api/qr?user_id=4", headers=OPS)
        elapsed = time.monotonic() - started
    finally:
        release.set()
    assert resp.status_code == 503
    assert "tenant 4" in resp.get_json()["message"] and "no connection within 0.3 s" in resp.get_json()["message"]
    assert elapsed < 2.0
