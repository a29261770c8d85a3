"""Sites' stored copies of the former appointment defaults, brought up to date."""

import importlib

import pytest
from django.apps import apps

from carebell.core.vocab import Channel, Kind
from carebell.formats.defaults import default_template
from carebell.messaging.models import MessageTemplate

pytestmark = pytest.mark.django_db

migration = importlib.import_module("carebell.formats.migrations.0001_combined_appointment_texts")


def copy(site, body, language="en", is_default=True, in_use=True):
    return MessageTemplate.objects.bulk_create(
        [
            MessageTemplate(
                site=site, kind=Kind.APPT_REMINDER, channel=Channel.SMS, language=language,
                name="Reminder", body=body, is_default=is_default, in_use=in_use,
            )
        ]
    )[0]  # fmt: skip


def test_an_untouched_copy_of_the_former_wording_gets_the_list_of_children(site):
    former = migration.FORMER[("appt_reminder", "sms", "es")]
    stored = copy(site, former, language="es")
    migration.refresh_untouched_copies(apps, None)
    stored.refresh_from_db()
    assert stored.body == default_template(Kind.APPT_REMINDER, Channel.SMS, "es").body
    assert "#APPTLIST#" in stored.body


def test_a_copy_staff_edited_keeps_its_words(site):
    edited = copy(site, "#SITENAME#: see you #APPTDATE# at #APPTTIME#. STOP to opt out")
    former = migration.FORMER[("appt_reminder", "sms", "en")]
    former = copy(site, former, is_default=False, in_use=False)
    migration.refresh_untouched_copies(apps, None)
    edited.refresh_from_db()
    former.refresh_from_db()
    assert "#APPTTIME#" in edited.body and "#APPTTIME#" in former.body
