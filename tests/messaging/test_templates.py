"""Message formats as stored: validated on save, defaults installed and restored."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from carebell.formats.service import all_defaults
from carebell.messaging.models import MessageTemplate
from carebell.messaging.templates_install import install_default_templates

pytestmark = pytest.mark.django_db


def test_a_template_with_an_unknown_placeholder_is_refused_and_nothing_is_saved(site):
    template = MessageTemplate(
        site=site,
        channel="sms",
        kind="appt_reminder",
        language="en",
        name="Reminder",
        body="Hi #PATIENTFIRSTNAME#, see you #APPTDATTE#",
    )
    with pytest.raises(ValidationError) as raised:
        template.save()
    assert "APPTDATTE" in str(raised.value)
    assert MessageTemplate.objects.count() == 0


def test_an_empty_body_is_refused(site):
    with pytest.raises(ValidationError):
        MessageTemplate(site=site, channel="sms", kind="general", name="x", body="  ").save()


def test_a_valid_template_saves(site):
    MessageTemplate(
        site=site,
        channel="sms",
        kind="appt_reminder",
        name="Reminder",
        body="#SITENAME#: see you #APPTDATE# at #APPTTIME#. Reply STOP to opt out.",
    ).save()
    assert MessageTemplate.objects.count() == 1


def test_a_new_site_gets_every_default_once(site):
    added = install_default_templates(site)
    assert added == len(all_defaults()) == MessageTemplate.objects.filter(site=site).count()
    assert install_default_templates(site) == 0


def test_restore_default_brings_back_carebells_text(site):
    install_default_templates(site)
    template = MessageTemplate.objects.get(
        site=site, kind="appt_reminder", channel="sms", language="es"
    )
    original = template.body
    template.body = "#SITENAME#: recordatorio."
    template.is_default = False
    template.save()
    template.restore_default()
    template.save()
    template.refresh_from_db()
    assert (template.body, template.is_default) == (original, True)
