"""A message queued to go at once (a reply, a code, a staff email): stored from the
values given, every other column its default, and handed back as it was stored."""

from __future__ import annotations

import pytest
from django.utils import timezone

from carebell import outbox
from carebell.core.vocab import Channel, ContactPointKind, Kind, OutboxStatus
from carebell.messaging.models import MessageEvent, OutboxMessage
from tests import factories

pytestmark = pytest.mark.django_db

PHONE = "+12025550123"


def stored_fields(message: OutboxMessage) -> dict:
    return {f.attname: getattr(message, f.attname) for f in OutboxMessage._meta.concrete_fields}


def test_a_queued_reply_is_handed_back_as_it_was_stored(site):
    now = timezone.now()
    patient = factories.make_patient(site)
    reply = outbox.queue_reply(
        site, PHONE, Kind.KEYWORD_REPLY, now=now, language="es", body="Hola",
        patient_id=patient.id, entity=("appointment", 42),
    )  # fmt: skip
    stored = OutboxMessage.objects.get(id=reply.id)
    assert stored_fields(reply) == stored_fields(stored)
    assert (stored.status, stored.channel, stored.priority, stored.body) == (
        OutboxStatus.QUEUED, Channel.SMS, 0, "Hola"
    )  # fmt: skip
    assert (stored.planned_at, stored.due_at, stored.created_at) == (now, now, now)
    assert (stored.reasons, stored.entity_ids, stored.dedupe_key, stored.attempts) == (
        [],
        [],
        None,
        0,
    )
    assert reply.site is site  # no query to read it again
    assert not reply._state.adding
    events = MessageEvent.objects.filter(message_id=reply.id)
    assert list(events.values_list("status", flat=True)) == [OutboxStatus.QUEUED]


def test_a_change_to_one_queued_message_leaves_the_next_ones_defaults_alone(site):
    now = timezone.now()
    first = outbox.queue_reply(site, PHONE, Kind.KEYWORD_REPLY, now=now, body="one")
    first.reasons.append({"code": "changed"})
    first.entity_ids.append(7)
    second = outbox.queue_reply(site, PHONE, Kind.KEYWORD_REPLY, now=now, body="two")
    assert (second.reasons, second.entity_ids) == ([], [])
    stored = OutboxMessage.objects.get(id=second.id)
    assert (stored.reasons, stored.entity_ids, stored.body) == ([], [], "two")


def test_a_staff_email_and_a_code_are_queued_with_their_own_fields(site):
    now = timezone.now()
    email = outbox.queue_staff_email(
        site, "desk@example.org", "S" * 400, "Body", entity=("staff_notification", 3), now=now
    )
    stored = OutboxMessage.objects.get(id=email.id)
    assert stored_fields(email) == stored_fields(stored)
    assert (stored.channel, stored.kind, stored.priority, len(stored.subject)) == (
        Channel.EMAIL, Kind.STAFF_NOTICE, 3, 300
    )  # fmt: skip
    patient = factories.make_patient(site)
    contact = factories.make_contact(patient, language="fr")
    point = factories.add_point(contact, ContactPointKind.MOBILE, PHONE, consent_sms=True)
    code = outbox.queue_verification_code(site, point, Channel.SMS, "", "123456", now=now)
    stored = OutboxMessage.objects.get(id=code.id)
    assert stored_fields(code) == stored_fields(stored)
    assert (stored.patient_id, stored.contact_id, stored.contact_point_id, stored.language) == (
        patient.id, contact.id, point.id, "fr"
    )  # fmt: skip
    assert code.contact_point is point


def _bound(value):
    # psycopg's JSON wrapper compares by identity: compare what it wraps.
    return ("json", value.obj) if hasattr(value, "obj") else value


def test_a_queued_row_binds_each_value_as_the_orm_binds_it(site):
    from django.db import connection

    from carebell.outbox import _sql

    now = timezone.now()
    values = {
        "site_id": site.pk, "patient_id": None, "to_address": PHONE, "channel": Channel.SMS,
        "kind": Kind.KEYWORD_REPLY, "priority": 0, "language": "en", "entity_id": 9,
        "body": "Hi", "planned_at": now, "due_at": now, "status": OutboxStatus.QUEUED,
        "created_at": now, "updated_at": now, "reasons": [{"code": "x"}],
    }  # fmt: skip
    columns, params = _sql.queued_row(values)
    fields = [f for f in OutboxMessage._meta.concrete_fields if not f.primary_key]
    message = OutboxMessage(**{f.attname: values.get(f.attname, f.get_default()) for f in fields})
    orm = [f.get_db_prep_save(getattr(message, f.attname), connection) for f in fields]
    assert columns == ", ".join(f.column for f in fields)
    assert [_bound(p) for p in params] == [_bound(p) for p in orm]


@pytest.mark.postgres_only
def test_a_queued_message_is_inserted_by_a_statement_postgresql_plans_once(site):
    from django.db import connection

    outbox.queue_reply(site, PHONE, Kind.KEYWORD_REPLY, now=timezone.now(), body="one")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s",
            ["%INSERT INTO messaging_outboxmessage%"],
        )
        assert cursor.fetchone()[0] == 1
