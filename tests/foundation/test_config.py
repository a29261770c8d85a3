"""Bad configuration stops start-up with one clear line and a non-zero exit."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from carebell import config


def run_carebell(env_overrides: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAREBELL_")}
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "-m", "carebell", *args], env=env, capture_output=True, text=True
    )


def test_a_malformed_database_url_stops_start_up_with_one_line(tmp_path):
    result = run_carebell(
        {
            "CAREBELL_DEBUG": "1",
            "CAREBELL_DATA_DIR": str(tmp_path),
            "CAREBELL_DATABASE_URL": "nonsense",
        },
        "check",
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "carebell: configuration error: CAREBELL_DATABASE_URL is not a URL (expected e.g. postgres://…)"
    ]


def test_an_unsupported_database_scheme_is_refused(tmp_path):
    result = run_carebell(
        {
            "CAREBELL_DEBUG": "1",
            "CAREBELL_DATA_DIR": str(tmp_path),
            "CAREBELL_DATABASE_URL": "mysql://x@y/z",
        },
        "check",
    )
    assert result.returncode == 2
    assert "CAREBELL_DATABASE_URL" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("scheme", ["postgres", "postgresql", "pgsql"])
def test_postgresql_takes_carebells_engine_with_health_checks(monkeypatch, tmp_path, scheme):
    monkeypatch.setenv("CAREBELL_DATABASE_URL", f"{scheme}://carebell@db.internal:5433/carebell")
    settings = config.database_config(tmp_path / "unused.sqlite3")
    assert settings["ENGINE"] == "carebell.postgresql"
    where = (settings["HOST"], settings["PORT"], settings["NAME"])
    assert where == ("db.internal", 5433, "carebell")
    assert settings["CONN_HEALTH_CHECKS"] is True


def test_production_without_a_secret_key_refuses_to_start(tmp_path):
    result = run_carebell({"CAREBELL_DATA_DIR": str(tmp_path)}, "check")
    assert result.returncode == 2
    assert "CAREBELL_SECRET_KEY is required" in result.stderr


def test_production_settings_pass_the_deploy_check(tmp_path):
    result = run_carebell(
        {
            "CAREBELL_DATA_DIR": str(tmp_path),
            "CAREBELL_SECRET_KEY": "k" * 20 + "-production-secret-key-for-the-check-0123456789",
            "CAREBELL_ALLOWED_HOSTS": "carebell.example.org",
            "CAREBELL_BASE_URL": "https://carebell.example.org",
        },
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
    )
    assert result.returncode == 0, result.stderr


def test_the_demo_secret_is_generated_once_and_kept(tmp_path):
    first = config.secret_key(debug=True, directory=tmp_path)
    assert len(first) >= 50
    assert config.secret_key(debug=True, directory=tmp_path) == first


@pytest.mark.parametrize("raw", ["maybe", "2"])
def test_a_boolean_setting_rejects_words_it_does_not_know(monkeypatch, raw):
    monkeypatch.setenv("CAREBELL_DEBUG", raw)
    with pytest.raises(config.ConfigError, match="CAREBELL_DEBUG must be true or false"):
        config.env_bool("DEBUG")
