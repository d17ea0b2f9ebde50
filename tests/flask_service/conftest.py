"""Fixtures for flask_service tests.

Database tests run on SQLite (a file under tmp_path) and on PostgreSQL when
TEST_DATABASE_URL is set (each test session creates its own randomly named
databases and drops them afterwards, so parallel runs do not collide).
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from flask_service_testlib import (
    APP_ENV_VARS,
    NODE_KEY,
    OPS_KEY,
    PG_SKIP_REASON,
    WEBHOOK_SECRET,
    FakeNode,
    PgAdmin,
    create_app,
    db,
    migrate,
    truncate,
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in APP_ENV_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[PgAdmin]:
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        pytest.skip(PG_SKIP_REASON)
    admin = PgAdmin(url)
    try:
        yield admin
    finally:
        admin.drop_all()


@pytest.fixture(scope="session")
def pg_migrated_url(pg_admin: PgAdmin) -> str:
    url = pg_admin.create()
    migrate(url)
    return url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (faster than migrating every time)."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.sqlite3"
    migrate(f"sqlite:///{path}")
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def empty_db_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """URL of a database with no tables at all."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'empty.sqlite3'}"
    admin: PgAdmin = request.getfixturevalue("pg_admin")
    return admin.create()


@pytest.fixture
def db_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """URL of a migrated database with empty tables."""
    if backend == "sqlite":
        target = tmp_path / "app.sqlite3"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), target)
        return f"sqlite:///{target}"
    url = request.getfixturevalue("pg_migrated_url")
    truncate(url)
    return url


@pytest.fixture
def make_app(db_url: str) -> Iterator[Callable[..., Any]]:
    apps = []

    def factory(**overrides: Any):  # type: ignore[no-untyped-def]
        config: dict[str, Any] = {
            "DATABASE_URL": db_url,
            "SECRET_KEY": "test-secret",
            "TESTING": True,
            "WHATSAPP_API_KEY": NODE_KEY,
            "OPS_API_KEY": OPS_KEY,
            "WEBHOOK_SECRET": WEBHOOK_SECRET,
            "WHATSAPP_TIMEOUT_S": 2.0,
        }
        config.update(overrides)
        app = create_app(config)
        apps.append(app)
        return app

    yield factory
    for app in apps:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def node() -> Iterator[FakeNode]:
    server = FakeNode()
    yield server
    server.close()
