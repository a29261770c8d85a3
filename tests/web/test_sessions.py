"""carebell's session engine: Django's database sessions, read by hand."""

from __future__ import annotations

import datetime as dt

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from django.utils import timezone

from carebell.web.sessions import SessionStore

pytestmark = pytest.mark.django_db


def test_the_settings_use_it():
    assert settings.SESSION_ENGINE == "carebell.web.sessions"


def test_a_saved_session_reads_back_and_an_expired_one_does_not():
    store = SessionStore()
    store["staff_site_id"] = 7
    store.save()
    key = store.session_key
    assert SessionStore(key)["staff_site_id"] == 7
    Session.objects.filter(session_key=key).update(
        expire_date=timezone.now() - dt.timedelta(seconds=1)
    )
    expired = SessionStore(key)
    assert expired.get("staff_site_id") is None
    assert expired.session_key is None  # a new key on save, as Django does
    assert SessionStore("no-such-session-key").get("staff_site_id") is None
