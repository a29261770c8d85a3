"""Signing in is throttled per account and per address, said plainly on the sign-in
page, and every failure is audited without its password."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.contrib.auth.models import User

from carebell.audit.models import AuditEvent
from carebell.audit.trail import SIGN_IN_FAILED

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-test-password"
HERE, ELSEWHERE = "192.0.2.10", "198.51.100.7"
LOCKED = "Too many failed sign-in attempts. Try again in 15 minutes."


@pytest.fixture
def staff(db, settings):
    # A fast hasher: these tests check dozens of passwords.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    User.objects.create_user("alice", password=PASSWORD, is_staff=True)
    User.objects.create_user("bruno", password=PASSWORD, is_staff=True)


def sign_in(client, username: str, password: str, address: str = HERE):
    return client.post(
        "/admin/login/?next=/admin/",
        {"username": username, "password": password, "next": "/admin/"},
        REMOTE_ADDR=address,
    )


def signed_in(response) -> bool:
    return response.status_code == 302 and response["Location"] == "/admin/"


def fail_five_times(client, username: str = "alice", address: str = HERE):
    return [sign_in(client, username, "wrong", address) for _ in range(5)]


def test_a_right_password_signs_in(client, staff):
    assert signed_in(sign_in(client, "alice", PASSWORD))


def test_after_five_wrong_passwords_the_right_one_is_refused_with_a_plain_message(client, staff):
    *_, fifth = fail_five_times(client)
    assert fifth.status_code == 429 and LOCKED in fifth.content.decode()
    refused = sign_in(client, "alice", PASSWORD)
    page = refused.content.decode()
    assert refused.status_code == 429
    assert LOCKED in page
    assert 'id="login-form"' in page and 'name="username"' in page  # the sign-in page itself
    assert "_auth_user_id" not in client.session


def test_four_wrong_passwords_do_not_lock(client, staff):
    for _ in range(4):
        assert sign_in(client, "alice", "wrong").status_code == 200
    assert signed_in(sign_in(client, "alice", PASSWORD))


def test_another_account_from_another_address_is_unaffected(client, staff):
    fail_five_times(client, "alice", HERE)
    assert signed_in(sign_in(client, "bruno", PASSWORD, ELSEWHERE))


def test_the_locked_account_is_refused_from_any_address(client, staff):
    fail_five_times(client, "alice", HERE)
    assert sign_in(client, "alice", PASSWORD, ELSEWHERE).status_code == 429


def test_an_address_trying_many_accounts_is_refused_for_all_of_them(client, staff):
    for name in ("carol", "dave", "erin", "frank", "alice"):
        sign_in(client, name, "wrong", HERE)
    assert sign_in(client, "bruno", PASSWORD, HERE).status_code == 429
    assert signed_in(sign_in(client, "bruno", PASSWORD, ELSEWHERE))


def test_the_lock_ends_after_the_cool_off(client, staff):
    fail_five_times(client)
    with time_machine.travel(dt.timedelta(minutes=16)):
        assert signed_in(sign_in(client, "alice", PASSWORD))


def test_every_failure_is_audited_without_the_password(client, staff):
    alice = User.objects.get(username="alice")
    fail_five_times(client)
    events = list(AuditEvent.objects.filter(action=SIGN_IN_FAILED).order_by("id"))
    assert len(events) == 5
    assert {(e.object_type, e.object_id, e.actor_id) for e in events} == {
        ("auth.user", str(alice.pk), None)
    }
    assert [e.detail["locked_out"] for e in events] == [False] * 4 + [True]
    assert {e.detail["username"] for e in events} == {"alice"}
    assert {e.detail["address"] for e in events} == {HERE}
    assert all("wrong" not in str(e.detail) for e in events)


def test_a_refused_sign_in_while_locked_is_audited_too(client, staff):
    fail_five_times(client)
    sign_in(client, "alice", PASSWORD)
    last = AuditEvent.objects.filter(action=SIGN_IN_FAILED).order_by("id").last()
    assert last.detail["locked_out"] is True
    assert PASSWORD not in str(last.detail)


def test_an_unknown_account_is_audited_by_the_name_tried(client, staff):
    sign_in(client, "nobody", "wrong")
    event = AuditEvent.objects.get(action=SIGN_IN_FAILED)
    assert (event.object_id, event.detail["username"]) == ("", "nobody")


def test_a_forwarded_address_is_ignored_unless_carebell_is_behind_a_proxy(client, staff):
    for i in range(5):
        client.post(
            "/admin/login/",
            {"username": f"user{i}", "password": "wrong"},
            REMOTE_ADDR=HERE,
            HTTP_X_FORWARDED_FOR=f"203.0.113.{i}",
        )
    assert sign_in(client, "bruno", PASSWORD, HERE).status_code == 429


def test_behind_a_proxy_the_address_is_the_one_the_proxy_appended(client, staff, settings):
    settings.BEHIND_PROXY = True
    for _ in range(5):
        client.post(
            "/admin/login/",
            {"username": "alice", "password": "wrong"},
            REMOTE_ADDR="10.0.0.1",
            HTTP_X_FORWARDED_FOR=f"203.0.113.9, {ELSEWHERE}",
        )
    event = AuditEvent.objects.filter(action=SIGN_IN_FAILED).last()
    assert event.detail["address"] == ELSEWHERE
