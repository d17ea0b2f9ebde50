"""The command line and the WSGI entry point as real processes."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from flask_service_testlib import STRONG_SECRET_KEY, free_port, subprocess_env

from flask_service.__main__ import main as cli_main

FAKE_PASSWORD = "Sup3rS3cret"  # interpolated, so no credential-looking URL is committed


def run(args: list[str], cwd: Path, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flask_service", *args],
        cwd=cwd,
        env=subprocess_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "flask_service: error:" in line]


def test_serve_without_secret_key_in_production_exits_cleanly(tmp_path: Path) -> None:
    # APP_ENV unset means production
    result = run(["serve"], tmp_path, timeout=30, PORT=str(free_port()))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = error_lines(result.stderr)
    assert len(lines) == 1 and "SECRET_KEY" in lines[0], result.stderr


def test_serve_with_a_blank_secret_key_in_production_exits_cleanly(tmp_path: Path) -> None:
    result = run(["serve"], tmp_path, timeout=30, PORT=str(free_port()), SECRET_KEY=" ")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = error_lines(result.stderr)
    assert len(lines) == 1 and "SECRET_KEY is too weak" in lines[0], result.stderr


def test_serve_with_malformed_tenant_urls_exits_cleanly(tmp_path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SECRET_KEY", STRONG_SECRET_KEY)
    monkeypatch.setenv("WHATSAPP_TENANT_URLS", "{1: nope}")
    assert cli_main(["serve"]) == 2
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and "WHATSAPP_TENANT_URLS" in lines[0]


def test_create_user_creates_then_updates(tmp_path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    from flask_service_testlib import create_app, login

    db_url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", db_url)
    assert cli_main(["migrate"]) == 0
    assert cli_main(["create-user", "--username", "ana", "--password", "pw1", "--tenant", "3"]) == 0
    assert "created user 'ana'" in capsys.readouterr().out
    assert cli_main(["create-user", "--username", "ana", "--password", "pw2", "--tenant", "4"]) == 0
    assert "updated user 'ana'" in capsys.readouterr().out
    assert cli_main(["create-user", "--username", "x", "--password", "p", "--tenant", "../3"]) == 2
    assert "--tenant" in capsys.readouterr().err

    app = create_app({"DATABASE_URL": db_url, "SECRET_KEY": "s"})
    client = app.test_client()
    assert login(client, "ana", "pw1").status_code == 401
    assert login(client, "ana", "pw2").status_code == 302
    with app.test_request_context():
        from flask_service.models import User, db

        assert db.session.execute(db.select(User.tenant_id)).scalar_one() == "4"
        db.engine.dispose()


def wait_http(url: str, proc: subprocess.Popen, deadline_s: float = 20) -> bytes:
    deadline = time.monotonic() + deadline_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                return resp.read()
        except OSError as exc:
            last = exc
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer: {last}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def ipv6_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def test_serve_listens_dual_stack(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'serve.sqlite3'}"
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "flask_service", "serve"],
        cwd=tmp_path,
        env=subprocess_env(APP_ENV="development", PORT=str(port), DATABASE_URL=db_url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # /health runs SELECT 1, which works on a fresh SQLite file even before migrate
        assert b'"ok"' in wait_http(f"http://127.0.0.1:{port}/health", proc)
        if ipv6_available():
            assert b'"ok"' in wait_http(f"http://[::1]:{port}/health", proc)
    finally:
        stop(proc)


def gunicorn_bin() -> str:
    path = Path(sys.executable).parent / "gunicorn"
    if not path.exists():
        pytest.skip("gunicorn is not installed next to this Python")
    return str(path)


def test_gunicorn_serves_the_wsgi_app(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'g.sqlite3'}"
    assert run(["migrate"], tmp_path, DATABASE_URL=db_url).returncode == 0
    port = free_port()
    proc = subprocess.Popen(
        [gunicorn_bin(), "--no-control-socket", "--bind", f"[::]:{port}", "--workers", "1", "flask_service.wsgi:app"],
        cwd=tmp_path,
        env=subprocess_env(SECRET_KEY=STRONG_SECRET_KEY, DATABASE_URL=db_url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert b'"db":"ok"' in wait_http(f"http://127.0.0.1:{port}/health", proc).replace(b" ", b"")
    finally:
        stop(proc)


def test_gunicorn_without_secret_key_stops_with_a_clear_error(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            gunicorn_bin(),
            "--no-control-socket",
            "--bind",
            f"127.0.0.1:{free_port()}",
            "--workers",
            "1",
            "flask_service.wsgi:app",
        ],
        cwd=tmp_path,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode != 0
    assert "SECRET_KEY" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_migrate_reports_database_problems_in_one_line(tmp_path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", f"postgresql://app:{FAKE_PASSWORD}@127.0.0.1:{free_port()}/app")
    assert cli_main(["migrate"]) == 1
    err = capsys.readouterr().err
    assert len(error_lines(err)) == 1 and "migrate failed" in err
    assert FAKE_PASSWORD not in err and "Traceback" not in err
    monkeypatch.setenv("DATABASE_URL", f"mysql://app:{FAKE_PASSWORD}@db/app")
    assert cli_main(["migrate"]) == 2
    err = capsys.readouterr().err
    assert "DATABASE_URL" in err and FAKE_PASSWORD not in err
