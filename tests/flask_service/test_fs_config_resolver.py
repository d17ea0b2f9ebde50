"""Environment parsing and the tenant → WhatsApp server resolver (no database)."""

from __future__ import annotations

import json
import secrets

import pytest
from flask_service_testlib import STRONG_SECRET_KEY

from flask_service.config import ConfigError, load_config, normalize_database_url, redact_url
from flask_service.resolver import UnknownTenant, resolve_base_url


def resolver_for(env: dict[str, str]):  # type: ignore[no-untyped-def]
    cfg = load_config({"SECRET_KEY": STRONG_SECRET_KEY, **env})
    return lambda tenant: resolve_base_url(tenant, cfg["WHATSAPP_TENANT_URLS"], cfg["WHATSAPP_SERVER_URL"])


def test_shared_topology_sends_every_tenant_to_the_server_url() -> None:
    resolve = resolver_for({"WHATSAPP_SERVER_URL": "http://whatsapp.railway.internal:5001/"})
    assert resolve("1") == "http://whatsapp.railway.internal:5001"
    assert resolve("3") == "http://whatsapp.railway.internal:5001"
    assert resolve("tenant_x-9") == "http://whatsapp.railway.internal:5001"


def test_per_port_topology_uses_the_map_and_unlisted_tenants_are_unknown() -> None:
    urls = {"1": "http://127.0.0.1:5001", "2": "http://127.0.0.1:5003", "3": "http://127.0.0.1:5004"}
    resolve = resolver_for({"WHATSAPP_TENANT_URLS": json.dumps(urls)})
    assert resolve("1") == "http://127.0.0.1:5001"
    assert resolve("2") == "http://127.0.0.1:5003"  # never Flask's own 5002 (seed 000)
    assert resolve("3") == "http://127.0.0.1:5004"
    with pytest.raises(UnknownTenant):
        resolve("4")


def test_sharded_topology_map_wins_over_the_shared_url() -> None:
    urls = {"1": "http://wa-shard-0:8080", "2": "http://wa-shard-1:8080", "3": "http://wa-shard-0:8080"}
    resolve = resolver_for({"WHATSAPP_TENANT_URLS": json.dumps(urls), "WHATSAPP_SERVER_URL": "http://wa-default:8080"})
    assert resolve("1") == "http://wa-shard-0:8080"
    assert resolve("2") == "http://wa-shard-1:8080"
    assert resolve("3") == "http://wa-shard-0:8080"
    assert resolve("99") == "http://wa-default:8080"


def test_no_whatsapp_env_means_every_tenant_is_unknown() -> None:
    with pytest.raises(UnknownTenant):
        resolver_for({})("1")


@pytest.mark.parametrize(
    "raw, fragment",
    [
        ("{not json", "not valid JSON"),
        ('["http://a:1"]', "JSON object"),
        ('{"1": 5001}', "http(s) URL"),
        ('{"1": "ftp://x"}', "http(s) URL"),
        ('{"../etc": "http://a:1"}', "does not match"),
    ],
)
def test_malformed_tenant_urls_are_a_clear_config_error(raw: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config({"SECRET_KEY": STRONG_SECRET_KEY, "WHATSAPP_TENANT_URLS": raw})
    assert "WHATSAPP_TENANT_URLS" in str(info.value)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_secret_key_is_required_outside_development() -> None:
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        load_config({})
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        load_config({"APP_ENV": "production"})
    assert load_config({"APP_ENV": "development"})["SECRET_KEY"]
    assert load_config({"SECRET_KEY": STRONG_SECRET_KEY})["SECRET_KEY"] == STRONG_SECRET_KEY


@pytest.mark.parametrize(
    "weak",
    [" ", "abc", "change-me", "x" * 64, "ab" * 40, "0123456" * 10, " " * 40, STRONG_SECRET_KEY[:31]],
)
def test_weak_secret_key_is_refused_in_production_without_echoing_it(weak: str) -> None:
    for env in ({}, {"APP_ENV": "production"}):
        with pytest.raises(ConfigError, match="SECRET_KEY is too weak") as info:
            load_config({**env, "SECRET_KEY": weak})
        if weak.strip():
            assert weak not in str(info.value)
        assert "\n" not in str(info.value)


def test_weak_secret_key_is_fine_in_development_and_for_maintenance_commands() -> None:
    assert load_config({"APP_ENV": "development", "SECRET_KEY": " "})["SECRET_KEY"] == " "
    assert load_config({"SECRET_KEY": "x"}, require_secret=False)["SECRET_KEY"] == "x"


def test_generated_secret_keys_pass_the_production_check() -> None:
    # deploytool writes secrets.token_urlsafe(32); token_hex(32) is the other common recipe
    for _ in range(500):
        for key in (secrets.token_urlsafe(32), secrets.token_hex(32)):
            assert load_config({"SECRET_KEY": key})["SECRET_KEY"] == key
    assert load_config({"SECRET_KEY": "k" * 25 + "0123456"})["SECRET_KEY"]  # 32 chars, 8 distinct


def test_database_url_defaults_and_normalisation(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    cfg = load_config({"SECRET_KEY": STRONG_SECRET_KEY})
    assert cfg["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path.resolve()}/instance/flask_service.sqlite3"
    assert normalize_database_url("postgres://u:p@h:5432/d") == "postgresql+psycopg://u:p@h:5432/d"
    assert normalize_database_url("postgresql://u:p@h/d") == "postgresql+psycopg://u:p@h/d"
    assert normalize_database_url("sqlite:///x.db") == "sqlite:///x.db"


def test_redact_url_hides_passwords() -> None:
    password = "s3cr3t!"  # kept out of the URL literal so no credential-looking URL is committed
    url = f"postgresql://postgres.tenant:{password}@db.example.invalid:5432/postgres"
    redacted = redact_url(url)
    assert password not in redacted
    assert redacted == "postgresql://postgres.tenant:***@db.example.invalid:5432/postgres"
    assert redact_url("sqlite:////tmp/x.sqlite3") == "sqlite:////tmp/x.sqlite3"


def test_timeout_default_and_validation() -> None:
    assert load_config({"SECRET_KEY": STRONG_SECRET_KEY})["WHATSAPP_TIMEOUT_S"] == 5
    assert load_config({"SECRET_KEY": STRONG_SECRET_KEY, "WHATSAPP_TIMEOUT_S": "0.5"})["WHATSAPP_TIMEOUT_S"] == 0.5
    with pytest.raises(ConfigError, match="WHATSAPP_TIMEOUT_S"):
        load_config({"SECRET_KEY": STRONG_SECRET_KEY, "WHATSAPP_TIMEOUT_S": "soon"})
