"""The consent ledger: one way in (record_consent), every record kept forever, and the
site's opt-in requirement honoured at once — a grant lets held-back texts go, a
revocation blocks what is pending."""

from __future__ import annotations

import hashlib

import pytest
from django.core.exceptions import ValidationError
from django.db import DatabaseError, connection, transaction

from carebell.appointments import actions as appointments
from carebell.audit.models import AuditEvent
from carebell.core.vocab import ContactPointKind, Kind
from carebell.dispatch.dispatcher import Dispatcher
from carebell.messaging.models import OutboundEvent, OutboxMessage
from carebell.people import actions as people
from carebell.people import consent
from carebell.people.models import ConsentRecord, ConsentWording, ContactPoint, Patient
from carebell.sites.models import DeliverySettings
from carebell.twoway import consent as keywords
from tests import factories
from tests.messaging.engine_setup import NOW, enable, family

pytestmark = pytest.mark.django_db

NUMBER = "+12025550123"
PNG = b"\x89PNG\r\n\x1a\n" + b"signature strokes" * 20


def grant(point, **extra):
    fields = dict(source="paper", wording="I agree to texts.", wording_version="v1",
                  system="test", now=NOW)  # fmt: skip
    fields.update(extra)
    return consent.record_consent(point, "sms", "grant", **fields)


def revoke(point, **extra):
    fields = dict(source="verbal", wording="No more texts, please.", wording_version="v1",
                  system="test", now=NOW)  # fmt: skip
    fields.update(extra)
    return consent.record_consent(point, "sms", "revoke", **fields)


def opt_in_clinic(site):
    """A clinic requiring opt-in, with a parent's reminder scheduled (consent given)."""
    DeliverySettings.objects.filter(site=site).update(require_opt_in=True)
    site.delivery.refresh_from_db()
    enable(site, Kind.APPT_REMINDER, [{"days": 1}])
    [(_child, parent, appointment)] = family(site)
    appointments.appointment_saved(appointment, None, now=NOW)
    return parent.points.get(), OutboxMessage.objects.get()


def test_a_grant_is_kept_with_its_wording_version_actor_and_source(site):
    contact = factories.make_contact(factories.make_patient(site))
    point = factories.add_point(contact, ContactPointKind.MOBILE, NUMBER)
    record = grant(point, source="signature_pad", signature=PNG, system="pos-lane-2")
    stored = ConsentRecord.objects.get()
    assert (stored.address, stored.channel, stored.action, stored.source) == (
        NUMBER, "sms", "grant", "signature_pad",
    )  # fmt: skip
    assert (stored.wording, stored.wording_version) == ("I agree to texts.", "v1")
    assert stored.captured_by_system == "pos-lane-2" and stored.recorded_at == NOW
    assert stored.signature_sha256 == hashlib.sha256(PNG).hexdigest() == record.signature_sha256
    assert bytes(stored.signature_image) == PNG
    assert ContactPoint.objects.get().consent_sms is True
    audit = AuditEvent.objects.get(action="consent")
    assert audit.detail == {"channel": "sms", "action": "grant", "source": "signature_pad",
                            "system": "pos-lane-2"}  # fmt: skip
    assert OutboundEvent.objects.filter(event_type="contact.consent_granted").count() == 1


def test_a_first_grant_marks_the_patient_as_consenting(site):
    contact = factories.make_contact(factories.make_patient(site))
    point = factories.add_point(contact, ContactPointKind.MOBILE, NUMBER)
    grant(point)
    assert Patient.objects.get().consented_at == NOW


def test_a_revocation_blocks_the_pending_texts_at_once(site):
    point, message = opt_in_clinic(site)
    revoke(point)
    message.refresh_from_db()
    assert (message.status, message.block_reason) == ("blocked", "no_consent")
    assert ContactPoint.objects.get().consent_sms is False


def test_a_grant_plans_again_what_was_blocked_for_no_consent_and_it_is_sent(site):
    point, message = opt_in_clinic(site)
    revoke(point)
    grant(point)
    blocked, fresh = OutboxMessage.objects.order_by("id")
    assert (blocked.id, blocked.status, blocked.block_reason) == (message.id, "blocked",
                                                                   "no_consent")  # fmt: skip
    assert (fresh.status, fresh.kind, fresh.to_address) == ("scheduled", "appt_reminder", NUMBER)
    dispatcher = Dispatcher()
    try:
        dispatcher.process_batch(now=fresh.planned_at)
    finally:
        dispatcher.close()
    fresh.refresh_from_db()
    assert fresh.status in ("sent", "delivered")


def test_the_ledger_keeps_every_record_newest_first(site):
    point, _message = opt_in_clinic(site)
    revoke(point)
    grant(point, now=NOW.replace(minute=5))
    actions = list(consent.ledger(site).values_list("action", flat=True))
    assert actions == ["grant", "revoke"]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"source": "telepathy"}, "source"),
        ({"wording": "  "}, "wording"),
        ({"wording": "x" * 4001}, "wording"),
        ({"wording_version": "v" * 33}, "wording_version"),
        ({"system": "", "by": None}, "by"),
        ({"source": "signature_pad"}, "signature"),
        ({"signature": b"x" * (256 * 1024 + 1)}, "signature"),
        ({"signature_sha256": "not-a-hash"}, "signature_sha256"),
        ({"signature": PNG, "signature_sha256": "0" * 64}, "signature_sha256"),
        ({"evidence": "e" * 301}, "evidence"),
    ],
)
def test_bad_input_is_refused_and_nothing_is_written(site, changes, field):
    contact = factories.make_contact(factories.make_patient(site))
    point = factories.add_point(contact, ContactPointKind.MOBILE, NUMBER)
    with pytest.raises(ValidationError) as refused:
        grant(point, **changes)
    assert field in refused.value.message_dict
    assert ConsentRecord.objects.count() == 0 and ContactPoint.objects.get().consent_sms is False


def test_a_channel_the_point_cannot_carry_is_refused(site):
    contact = factories.make_contact(factories.make_patient(site))
    email = factories.add_point(contact, ContactPointKind.EMAIL, "pat@example.org")
    with pytest.raises(ValidationError) as refused:
        consent.record_consent(email, "sms", "grant", source="paper", wording="w",
                               wording_version="v1", system="test")  # fmt: skip
    assert "channel" in refused.value.message_dict
    with pytest.raises(ValidationError):
        consent.record_consent(email, "email", "maybe", source="paper", wording="w",
                               wording_version="v1", system="test")  # fmt: skip
    assert ConsentRecord.objects.count() == 0


def test_a_hash_alone_is_kept_when_the_pad_keeps_the_image(site):
    contact = factories.make_contact(factories.make_patient(site))
    point = factories.add_point(contact, ContactPointKind.MOBILE, NUMBER)
    digest = hashlib.sha256(PNG).hexdigest()
    record = grant(point, source="signature_pad", signature_sha256=digest.upper())
    assert record.signature_sha256 == digest and record.signature_image is None


def test_stop_and_start_write_the_ledger_too(site):
    contact = factories.make_contact(factories.make_patient(site))
    factories.add_point(contact, ContactPointKind.MOBILE, NUMBER, consent_sms=True)
    keywords.opt_out_address(site.id, NUMBER, "sms", source="keyword", now=NOW, detail="Stop")
    assert ContactPoint.objects.get().consent_sms is False
    keywords.opt_in_address_at([site.id], NUMBER, "sms", source="keyword", now=NOW, detail="START")
    rows = list(consent.ledger(site).values_list("action", "source", "wording", "evidence"))
    assert rows == [
        ("grant", "sms_keyword", "Text message: START", "START"),
        ("revoke", "sms_keyword", "Text message: Stop", "Stop"),
    ]
    assert ContactPoint.objects.get().consent_sms is True


def test_staff_clearing_an_opt_out_grants_no_consent(site):
    contact = factories.make_contact(factories.make_patient(site))
    factories.add_point(contact, ContactPointKind.MOBILE, NUMBER)
    keywords.opt_in_address(site.id, NUMBER, "sms", source="staff", now=NOW)
    assert ConsentRecord.objects.count() == 0 and ContactPoint.objects.get().consent_sms is False


def test_a_changed_number_loses_its_consent(site):
    contact = factories.make_contact(factories.make_patient(site))
    point = factories.add_point(contact, ContactPointKind.MOBILE, NUMBER)
    grant(point)
    point.refresh_from_db()
    point.value = "+12025550177"
    people.save_contact_point(point, now=NOW)
    assert ContactPoint.objects.get().consent_sms is False
    assert ConsentRecord.objects.get().address == NUMBER  # the history keeps the old value


def test_the_site_wording_has_versions_and_a_default(site, django_user_model):
    version, words = consent.current_wording(site)
    assert version == consent.DEFAULT_VERSION and site.name in words
    user = django_user_model.objects.create_user("admin")
    consent.publish_wording(site, "2026-12", "I agree to texts from Maple.", by=user)
    assert consent.current_wording(site) == ("2026-12", "I agree to texts from Maple.")
    with pytest.raises(ValidationError):
        consent.publish_wording(site, "2026-12", "Other words.", by=user)
    assert ConsentWording.objects.count() == 1


@pytest.mark.parametrize("statement", ["UPDATE {t} SET wording = 'rewritten'", "DELETE FROM {t}"])
def test_the_database_refuses_to_rewrite_or_remove_the_ledger(site, statement):
    contact = factories.make_contact(factories.make_patient(site))
    point = factories.add_point(contact, ContactPointKind.MOBILE, NUMBER)
    grant(point)
    if connection.vendor == "sqlite" and statement.startswith("DELETE"):
        # SQLite lets a test database be emptied row by row (audit migration 0003):
        # the model refuses instead, and PostgreSQL refuses in the database.
        with pytest.raises(PermissionError):
            ConsentRecord.objects.get().delete()
        return
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement.format(t="people_consentrecord"))
    assert ConsentRecord.objects.get().wording == "I agree to texts."


def test_the_database_refuses_to_rewrite_a_consent_wording(site):
    row = consent.publish_wording(site, "v2", "Words.", by=None)
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE people_consentwording SET wording = 'x'")
    with pytest.raises(PermissionError):
        row.save()
