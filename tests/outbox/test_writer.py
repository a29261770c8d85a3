"""The outbox writer stores the same rows whichever way a flush goes in: a few rows in
one INSERT … ON CONFLICT DO NOTHING (the rows as one JSON array), many by COPY
(PostgreSQL; SQLite has one way)."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

from carebell.messaging.models import OutboxMessage
from carebell.outbox import OutboxWriter, _copy
from carebell.planning.decisions import Decision
from tests import factories

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 11, 25, 15, 0, tzinfo=dt.UTC)


def decision(site, key: str | None, to: str = "+12025550123", ids=()) -> Decision:
    return Decision(
        "planned", kind="general", channel="sms", site_id=site.id, patient_id=None,
        contact_id=None, contact_point_id=None, to=to, entity_type="", entity_id=None,
        event_at=None, planned_at=NOW + dt.timedelta(hours=1), dedupe_key=key,
        entity_ids=list(ids),
    )  # fmt: skip


def stored(site) -> list[tuple]:
    rows = OutboxMessage.objects.filter(site=site)
    fields = ("dedupe_key", "to_address", "status", "entity_ids", "planned_at")
    # Sorted here: the two databases order NULL keys differently.
    return sorted(rows.values_list(*fields), key=lambda row: (row[0] or "", row[1]))


@pytest.mark.parametrize("few", [_copy.FEW, 0], ids=["one INSERT", "COPY"])
def test_a_flush_stores_new_keys_once_whichever_way_it_goes_in(monkeypatch, few):
    monkeypatch.setattr(_copy, "FEW", few)
    site = factories.make_site(factories.make_org())
    first = OutboxWriter(NOW)
    first.add(decision(site, "stored-before"))
    first.flush()
    writer = OutboxWriter(NOW)
    for d in (
        decision(site, "stored-before", to="+12025550999"),  # a replan: nothing new
        decision(site, "new", ids=[7, 8]),
        decision(site, "new", to="+12025550999"),  # the same key twice in one flush
        decision(site, None, to="+12025550111"),  # no key (NULL): never a conflict
        decision(site, None, to="+12025550112"),
    ):
        writer.add(d)
    writer.flush()
    assert (writer.offered, writer.stored) == (5, 3)
    later = NOW + dt.timedelta(hours=1)
    assert stored(site) == [
        (None, "+12025550111", "scheduled", [], later),
        (None, "+12025550112", "scheduled", [], later),
        ("new", "+12025550123", "scheduled", [7, 8], later),
        ("stored-before", "+12025550123", "scheduled", [], later),
    ]


def test_a_few_rows_are_stored_exactly_as_copy_stores_them(monkeypatch):
    from carebell.core.reasons import Code, reason

    site = factories.make_site(factories.make_org())
    at = NOW + dt.timedelta(hours=2, microseconds=123_456)
    kept, few_rows = {}, _copy.FEW
    for few in (few_rows, 0):
        monkeypatch.setattr(_copy, "FEW", few)
        d = replace(
            decision(site, f"exact-{few}", ids=[3]),
            entity_name='Dr. "Zoë" O\'Brien — 10:00 \\ ✓', event_at=at, planned_at=at,
            reasons=(reason(Code.CAP_NO_ROOM, until=at),),
        )  # fmt: skip
        writer = OutboxWriter(NOW)
        writer.add(d)
        writer.flush()
        row = OutboxMessage.objects.filter(dedupe_key=f"exact-{few}").values(*_copy.COLUMNS).get()
        kept[few] = {k: v for k, v in row.items() if k != "dedupe_key"}
    assert kept[few_rows] == kept[0]
    assert kept[0]["event_at"] == at and kept[0]["entity_ids"] == [3]


def test_a_combined_message_is_indexed_by_each_of_its_entities_once():
    from carebell.messaging.models import OutboxSubject

    site = factories.make_site(factories.make_org())
    for ids in ([7, 8], [7, 8, 9]):  # the replan finds the message indexed already
        writer = OutboxWriter(NOW)
        writer.add(replace(decision(site, "combined", ids=ids), entity_type="appointment"))
        writer.flush()
    message = OutboxMessage.objects.get(dedupe_key="combined")
    subjects = OutboxSubject.objects.filter(message=message)
    assert sorted(subjects.values_list("entity_type", "entity_id")) == [
        ("appointment", 7), ("appointment", 8)
    ]  # fmt: skip
