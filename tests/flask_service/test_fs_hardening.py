"""Findings of an attacker-minded review of flask_service: each test failed before its fix."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from flask_service_testlib import STRONG_SECRET_KEY, free_port, subprocess_env

from flask_service import create_app
from flask_service.config import ConfigError, load_config

# deploytool's .env.example writes `<NAME>=change-me` for every secret (deploytool/render/env_example.py)
KEY_NAMES = ("SECRET_KEY", "OPS_API_KEY", "WHATSAPP_API_KEY", "WEBHOOK_SECRET")
ENV_EXAMPLE_PLACEHOLDER = "change-me"
STRONG = {name: f"{n}-Zq8wX3vN7pL2mK9rT4yB6cD1fG5hJ0sA" for n, name in enumerate(KEY_NAMES)}

# --- 17: every key and secret meets the production rule -------------------------------------------------

WEAK_VALUES = [
    ENV_EXAMPLE_PLACEHOLDER,
    "x",
    "change-me-change-me-change-me-change-me",  # long and varied enough, still the placeholder
    "CHANGE_ME_" + STRONG_SECRET_KEY,
    "replace-me-Zq8wX3vN7pL2mK9rT4yB6cD1fG5hJ0sA",
    STRONG_SECRET_KEY[:31],
    "ab" * 40,
]


@pytest.mark.parametrize("name", KEY_NAMES)
@pytest.mark.parametrize("weak", WEAK_VALUES)
def test_every_weak_or_placeholder_key_is_refused_in_production_by_name(name: str, weak: str) -> None:
    for app_env in ({}, {"APP_ENV": "production"}):
        with pytest.raises(ConfigError) as info:
            load_config({**STRONG, **app_env, name: weak})
        message = str(info.value)
        assert message.startswith(f"{name} is too weak") and "\n" not in message
        assert weak not in message


def test_development_keeps_accepting_easy_keys() -> None:
    cfg = load_config({"APP_ENV": "development", **{name: ENV_EXAMPLE_PLACEHOLDER for name in KEY_NAMES}})
    assert cfg["OPS_API_KEY"] == ENV_EXAMPLE_PLACEHOLDER
    # unset optional keys stay allowed in production: that way in is simply closed
    cfg = load_config({"SECRET_KEY": STRONG["SECRET_KEY"]})
    assert cfg["OPS_API_KEY"] == "" and cfg["WEBHOOK_SECRET"] == ""
    assert load_config(STRONG)["OPS_API_KEY"] == STRONG["OPS_API_KEY"]


def test_the_app_refuses_the_env_example_ops_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # the finding: APP_ENV=production, OPS_API_KEY=change-me, and `X-Api-Key: change-me` was let in
    for name, value in STRONG.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("OPS_API_KEY", ENV_EXAMPLE_PLACEHOLDER)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'db.sqlite3'}")
    with pytest.raises(ConfigError, match=r"^OPS_API_KEY is too weak"):
        create_app()


def test_serve_with_a_placeholder_webhook_secret_exits_with_one_line(tmp_path: Path) -> None:
    env = {**STRONG, "WEBHOOK_SECRET": ENV_EXAMPLE_PLACEHOLDER, "PORT": str(free_port())}
    result = subprocess.run(
        [sys.executable, "-m", "flask_service", "serve"],
        cwd=tmp_path,
        env=subprocess_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if "flask_service: error:" in line]
    assert len(lines) == 1 and "WEBHOOK_SECRET is too weak" in lines[0], result.stderr
    assert ENV_EXAMPLE_PLACEHOLDER not in result.stderr and "Traceback" not in result.stderr
