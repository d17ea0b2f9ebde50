"""`python -m flask_service migrate` builds the schema from an empty database."""

from __future__ import annotations

import subprocess
import sys

from flask_service_testlib import subprocess_env
from sqlalchemy import create_engine, inspect

from flask_service.config import normalize_database_url

TABLES = {"users", "messages", "webhook_events", "session_states"}


def run_migrate(url: str, cwd) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    return subprocess.run(
        [sys.executable, "-m", "flask_service", "migrate"],
        cwd=cwd,
        env=subprocess_env(DATABASE_URL=url),  # no SECRET_KEY: migrate does not need it
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_migrate_creates_the_tables_from_empty(empty_db_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = create_engine(normalize_database_url(empty_db_url))
    try:
        assert not TABLES & set(inspect(engine).get_table_names())
        result = run_migrate(empty_db_url, tmp_path)
        assert result.returncode == 0, result.stderr
        insp = inspect(engine)
        assert set(insp.get_table_names()) >= TABLES
        columns = {c["name"] for c in insp.get_columns("messages")}
        assert {"id", "tenant_id", "message_id", "sender", "text", "direction", "created_at"} <= columns
        assert {c["name"] for c in insp.get_columns("session_states")} >= {
            "tenant_id",
            "state",
            "previous_state",
            "code",
            "updated_at",
        }
        assert insp.get_pk_constraint("webhook_events")["constrained_columns"] == ["id"]
        uniques = [sorted(u["column_names"]) for u in insp.get_unique_constraints("messages")]
        assert ["message_id", "tenant_id"] in uniques
        # running it again is a no-op
        assert migrate_in_process(empty_db_url, tmp_path) == 0
        assert set(inspect(engine).get_table_names()) >= TABLES
    finally:
        engine.dispose()


def test_models_match_the_migrations(db_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from flask_service.models import db

    engine = create_engine(normalize_database_url(db_url))
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), db.metadata)
        assert diff == []
    finally:
        engine.dispose()


def migrate_in_process(url: str | None, cwd) -> int:  # type: ignore[no-untyped-def]
    import os

    from flask_service.__main__ import main

    old_cwd, old_url = os.getcwd(), os.environ.pop("DATABASE_URL", None)
    try:
        os.chdir(cwd)
        if url:
            os.environ["DATABASE_URL"] = url
        return main(["migrate"])
    finally:
        os.chdir(old_cwd)
        os.environ.pop("DATABASE_URL", None)
        if old_url is not None:
            os.environ["DATABASE_URL"] = old_url


def test_migrate_defaults_to_sqlite_in_instance_folder(tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert migrate_in_process(None, tmp_path) == 0
    db_file = tmp_path / "instance" / "flask_service.sqlite3"
    assert db_file.exists()
    engine = create_engine(f"sqlite:///{db_file}")
    try:
        assert set(inspect(engine).get_table_names()) >= TABLES
    finally:
        engine.dispose()
