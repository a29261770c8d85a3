"""carebell started as in production (CAREBELL_DEBUG off, a real secret), in a child
process: no simulator, no published secret, and a deploy check that refuses one."""

from __future__ import annotations

import json
import textwrap

import pytest

from carebell import config
from tests.foundation.test_config import run_carebell

HOST = "carebell.example.org"


def production_env(tmp_path, **overrides: str) -> dict[str, str]:
    return {
        "CAREBELL_DATA_DIR": str(tmp_path),
        "CAREBELL_SECRET_KEY": "k" * 20 + "-production-secret-key-for-the-check-0123456789",
        "CAREBELL_ALLOWED_HOSTS": HOST,
        "CAREBELL_BASE_URL": f"https://{HOST}",
        **overrides,
    }


def deploy_check(env: dict[str, str]):
    return run_carebell(env, "check", "--deploy", "--fail-level", "WARNING")


def settings_of(env: dict[str, str], *names: str) -> dict:
    found = f"{{n: getattr(settings, n, None) for n in {list(names)!r}}}"
    code = f"from django.conf import settings; import json; print(json.dumps({found}, default=str))"
    result = run_carebell(env, "shell", "-c", code)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_in_production_the_simulator_is_off_and_has_no_secret(tmp_path):
    found = settings_of(production_env(tmp_path), "SIM_ENABLED", "SIM_AUTH_TOKEN")
    assert found == {"SIM_ENABLED": False, "SIM_AUTH_TOKEN": ""}
    assert not (tmp_path / "sim_token").exists()


@pytest.mark.slow
def test_in_production_a_reply_signed_with_the_old_public_token_gets_404_and_writes_nothing(
    tmp_path,
):
    env = production_env(tmp_path)
    assert run_carebell(env, "migrate", "--verbosity", "0").returncode == 0
    script = textwrap.dedent(
        f"""
        from django.test import Client
        from twilio.request_validator import RequestValidator
        from carebell.messaging.models import InboundMessage
        form = {{"MessageSid": "SM" + "1" * 32, "From": "+12025550142", "Body": "C"}}
        url = "https://{HOST}/hooks/sim/inbound"
        signature = RequestValidator("carebell-sim").compute_signature(url, form)
        response = Client(HTTP_HOST="{HOST}").post(
            "/hooks/sim/inbound", form, secure=True, HTTP_X_TWILIO_SIGNATURE=signature
        )
        print(response.status_code, InboundMessage.objects.count())
        """
    )
    result = run_carebell(env, "shell", "-c", script)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1].split() == ["404", "0"]


@pytest.mark.parametrize("setting", ["SMS_PROVIDER", "VOICE_PROVIDER", "EMAIL_PROVIDER"])
def test_the_deploy_check_fails_when_a_channel_goes_to_the_simulator(tmp_path, setting):
    result = deploy_check(production_env(tmp_path, **{f"CAREBELL_{setting}": "sim"}))
    assert result.returncode != 0
    assert "carebell.E002" in result.stderr and f"CAREBELL_{setting} is sim" in result.stderr


def test_the_deploy_check_fails_when_the_simulator_is_switched_on(tmp_path):
    env = production_env(tmp_path, CAREBELL_SIM_ENABLED="1", CAREBELL_SIM_AUTH_TOKEN="s" * 32)
    result = deploy_check(env)
    assert result.returncode != 0 and "carebell.E001" in result.stderr


def test_switching_the_simulator_on_in_production_needs_its_own_secret(tmp_path):
    result = run_carebell(production_env(tmp_path, CAREBELL_SIM_ENABLED="1"), "check")
    assert result.returncode == 2
    assert "CAREBELL_SIM_AUTH_TOKEN is required" in result.stderr


def test_a_short_simulator_secret_is_refused_in_production(tmp_path):
    env = production_env(tmp_path, CAREBELL_SIM_ENABLED="1", CAREBELL_SIM_AUTH_TOKEN="carebell-sim")
    result = run_carebell(env, "check")
    assert result.returncode == 2
    assert "CAREBELL_SIM_AUTH_TOKEN must be at least 20 characters" in result.stderr


def test_the_forwarded_scheme_is_trusted_only_behind_a_proxy(tmp_path):
    names = ("SECURE_PROXY_SSL_HEADER",)
    assert settings_of(production_env(tmp_path), *names) == {"SECURE_PROXY_SSL_HEADER": None}
    behind = settings_of(production_env(tmp_path, CAREBELL_BEHIND_PROXY="1"), *names)
    assert behind == {"SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"]}


def test_the_sign_in_throttle_is_configured_from_the_environment(tmp_path):
    env = production_env(
        tmp_path, CAREBELL_LOGIN_FAILURE_LIMIT="3", CAREBELL_LOGIN_COOLOFF_MINUTES="30"
    )
    found = settings_of(env, "AXES_FAILURE_LIMIT", "AXES_COOLOFF_TIME")
    assert found == {"AXES_FAILURE_LIMIT": 3, "AXES_COOLOFF_TIME": "0:30:00"}


def test_a_malformed_cool_off_stops_start_up(tmp_path):
    result = run_carebell(production_env(tmp_path, CAREBELL_LOGIN_COOLOFF_MINUTES="soon"), "check")
    assert result.returncode == 2
    assert "CAREBELL_LOGIN_COOLOFF_MINUTES must be a whole number" in result.stderr


def test_the_development_simulator_secret_is_generated_once_and_private(tmp_path, monkeypatch):
    monkeypatch.delenv("CAREBELL_SIM_AUTH_TOKEN", raising=False)
    first = config.sim_token(enabled=True, debug=True, directory=tmp_path)
    assert len(first) >= 40 and first != "carebell-sim"
    assert config.sim_token(enabled=True, debug=True, directory=tmp_path) == first
    assert (tmp_path / "sim_token").stat().st_mode & 0o077 == 0
    assert config.sim_token(enabled=False, debug=True, directory=tmp_path) == ""
