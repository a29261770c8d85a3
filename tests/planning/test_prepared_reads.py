"""A change's replan reads its patients' appointments and text history through
statements PostgreSQL prepares once per connection: the same rows as the
site-wide reads, one prepared statement whatever the number of patients."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection

from carebell.core.vocab import Category, Kind
from carebell.planning import appointments
from carebell.planning.sms_caps import SmsCaps
from tests.messaging.engine_setup import NOW, enable, family
from tests.planning.test_appointment_planning import plan

pytestmark = [pytest.mark.django_db, pytest.mark.postgres_only]

WEEK = dt.timedelta(days=7)


def prepared(like: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s", [like]
        )
        return cursor.fetchone()[0]


def read(site, ids):
    return list(appointments._rows(site.id, NOW, NOW + WEEK, ids, Category.REMINDERS))


def test_a_few_patients_rows_are_those_of_the_cursor_that_reads_many(site, monkeypatch):
    enable(site, Kind.APPT_REMINDER, [{"days": 1}])
    kids = family(site, children=3) + family(site, mobile="+12025550188", email="a@b.example")
    ids = [child.id for child, _, _ in kids[:2]] + [kids[3][0].id]
    few = read(site, ids)
    monkeypatch.setattr(appointments, "FEW_PATIENTS", 0)  # the server-side cursor's path
    many = read(site, ids)
    assert few == many
    assert {row[appointments._ID] for row in few} == {kids[i][2].id for i in (0, 1, 3)}
    assert read(site, []) == []


def test_one_prepared_statement_reads_any_number_of_patients(site):
    kids = family(site, children=3)
    ids = [child.id for child, _, _ in kids]
    counts = [len(read(site, ids[:n])) for n in (1, 2, 3)]
    assert counts == sorted(counts) and counts[0] > 0
    assert prepared("%FROM appointments_appointment%") == 1


def test_the_text_history_of_a_few_patients_is_read_by_one_prepared_statement(site):
    enable(site, Kind.APPT_REMINDER, [{"days": 1}])
    numbers = [f"+1202555017{n}" for n in range(3)]
    ids = [family(site, mobile=number)[0][0].id for number in numbers]
    plan(site)  # a text to each family
    for n in (1, 2, 3):
        caps = SmsCaps(site.id, NOW)
        caps.load(ids[:n])
        assert sorted(caps.history) == list(zip(ids[:n], numbers[:n], strict=True))
    assert prepared("%FROM messaging_outboxmessage%") == 1


def test_a_few_patients_appointments_and_texts_are_read_in_one_round_trip(site, monkeypatch):
    from carebell import prepared
    from carebell.messaging.models import AutomatedMessage
    from carebell.planning.appointments import plan_site_appointments
    from carebell.planning.policies import PolicyCache

    enable(site, Kind.APPT_REMINDER, [{"days": 1}, {"days": 3}])
    kids = family(site, children=2, mobile="+12025550170")
    plan(site)  # texts already queued count against the caps
    ids = [child.id for child, _, _ in kids]
    rules = list(AutomatedMessage.objects.filter(site=site, enabled=True))
    policy = PolicyCache().for_site(site)

    def decisions():
        found = plan_site_appointments(site, rules, policy, NOW, patient_ids=ids)
        return sorted((d.dedupe_key, d.status, d.planned_at, d.reasons) for d in found)

    sent_together = []

    def read_together(reads):
        sent_together.append(len(reads))
        return prepared.read_together(reads)

    monkeypatch.setattr(appointments, "read_together", read_together)
    joined = decisions()
    assert sent_together == [2]
    monkeypatch.setattr(SmsCaps, "read_for", lambda self, ids: None)  # each read on its own
    assert decisions() == joined and joined
    assert any(status == "planned" for _, status, _, _ in joined)
