"""`replan.site_facts`: a site's settings, policy and rules for one change. The
compiled policy is reused while the settings it was built from stay the same, and
built again at once when they change, however they were changed."""

from __future__ import annotations

import datetime as dt

import pytest

from carebell.core.vocab import Kind
from carebell.messaging.models import AutomatedMessage
from carebell.planning import replan
from carebell.sites.models import DeliverySettings
from tests.messaging.engine_setup import enable

pytestmark = pytest.mark.django_db


def test_unchanged_settings_keep_the_compiled_policy(site):
    _, first, _ = replan.site_facts(site.pk)
    _, again, _ = replan.site_facts(site.pk)
    assert again is first


def test_changed_settings_are_compiled_again_even_when_no_stamp_moved(site):
    _, before, _ = replan.site_facts(site.pk)
    # An update that bypasses save() leaves updated_at as it was: the values decide.
    DeliverySettings.objects.filter(site=site).update(email_sms_window_start=dt.time(11, 0))
    _, after, _ = replan.site_facts(site.pk)
    assert after is not before
    assert after.settings.email_sms_window.start == dt.time(11, 0)


def test_the_enabled_rules_are_read_for_each_change(site):
    assert replan.site_facts(site.pk)[2] == []
    rule = enable(site, Kind.APPT_REMINDER, [{"days": 1}])
    AutomatedMessage.objects.create(site=site, kind=Kind.APPT_CONFIRMATION, name="Off")
    assert [r.pk for r in replan.site_facts(site.pk)[2]] == [rule.pk]
