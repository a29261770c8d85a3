"""API tokens: issued once in clear, stored hashed, refused when revoked or expired."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import RequestFactory
from django.utils import timezone

from carebell.api import tokens
from carebell.api.models import ApiToken
from carebell.audit.models import AuditEvent
from carebell.sites.roles import FRONT_DESK
from tests import factories


@pytest.fixture
def user(site):
    return factories.make_staff(site, FRONT_DESK)


def bearer(secret: str, address: str = "192.0.2.7"):
    return RequestFactory().get(
        "/api/v1/sites", HTTP_AUTHORIZATION=f"Bearer {secret}", REMOTE_ADDR=address
    )


def test_it_keeps_only_the_digest_of_the_secret(user):
    token, secret = tokens.issue(user, "practice system")
    stored = ApiToken.objects.get(pk=token.pk)
    assert secret.startswith("cb_") and len(secret) > 40
    assert stored.secret_hash == tokens.digest(secret) and secret not in stored.secret_hash
    assert stored.prefix == secret[:11]
    assert AuditEvent.objects.filter(
        action="create", object_type="api.apitoken", object_id=str(token.pk)
    ).exists()


def test_it_authenticates_a_bearer_secret_and_notes_its_use(user):
    token, secret = tokens.issue(user, "feed")
    found = tokens.authenticate(bearer(secret))
    assert found == token and found.user == user
    token.refresh_from_db()
    assert token.last_used_at is not None and token.last_used_ip == "192.0.2.7"


def test_it_writes_last_use_at_most_once_a_minute(user):
    token, secret = tokens.issue(user, "feed")
    first = timezone.now()
    tokens.authenticate(bearer(secret), now=first)
    tokens.authenticate(bearer(secret, "192.0.2.99"), now=first + dt.timedelta(seconds=30))
    token.refresh_from_db()
    assert token.last_used_at == first and token.last_used_ip == "192.0.2.7"
    tokens.authenticate(bearer(secret, "192.0.2.99"), now=first + dt.timedelta(seconds=61))
    token.refresh_from_db()
    assert token.last_used_ip == "192.0.2.99"


@pytest.mark.parametrize(
    "header",
    [
        "",
        "Bearer",
        "Bearer cb_unknown",
        "Basic Y2I6eA==",
        "Token cb_x",
        "Bearer " + "cb_" + "a" * 300,
    ],
)
def test_it_refuses_missing_or_unknown_secrets(user, header):
    tokens.issue(user, "feed")
    request = RequestFactory().get("/api/v1/sites", HTTP_AUTHORIZATION=header)
    assert tokens.authenticate(request) is None


def test_it_refuses_a_revoked_token(user):
    token, secret = tokens.issue(user, "feed")
    assert tokens.revoke(token, by=user) is True
    assert tokens.revoke(token, by=user) is False
    assert tokens.authenticate(bearer(secret)) is None
    assert AuditEvent.objects.filter(action="revoke", object_id=str(token.pk)).count() == 1


def test_it_refuses_an_expired_token(user):
    now = timezone.now()
    token, secret = tokens.issue(user, "feed", expires_at=now + dt.timedelta(hours=1), now=now)
    assert tokens.authenticate(bearer(secret), now=now + dt.timedelta(minutes=59)) == token
    assert tokens.authenticate(bearer(secret), now=now + dt.timedelta(hours=1)) is None


def test_it_refuses_the_token_of_a_deactivated_user(user):
    _, secret = tokens.issue(user, "feed")
    user.is_active = False
    user.save()
    assert tokens.authenticate(bearer(secret)) is None


def test_it_needs_a_name_and_a_future_expiry(user):
    with pytest.raises(ValueError):
        tokens.issue(user, "  ")
    with pytest.raises(ValueError):
        tokens.issue(user, "x", expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert not ApiToken.objects.exists()


def test_the_command_issues_and_revokes_a_token(user, capsys):
    from django.core.management import call_command

    call_command("api_token", user.username, "script", "--days", "7")
    secret = capsys.readouterr().out.strip()
    token = ApiToken.objects.get(user=user)
    assert token.secret_hash == tokens.digest(secret) and token.expires_at is not None
    call_command("api_token", user.username, "--revoke", secret[:11])
    token.refresh_from_db()
    assert token.revoked_at is not None


def test_the_command_refuses_an_unknown_user(db):
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError):
        call_command("api_token", "nobody")
