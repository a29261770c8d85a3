"""The outbox writer stores the same rows whichever way a flush goes in: a few rows in
one INSERT … ON CONFLICT DO NOTHING (their values, or an array per column), many by
COPY (PostgreSQL; SQLite has one way)."""

from __future__ import annotations

import datetime as dt

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


@pytest.mark.parametrize(
    ("few", "values_rows"),
    [(_copy.FEW, 5), (_copy.FEW, 0), (0, 0)],
    ids=["one INSERT of values", "one INSERT of arrays", "COPY"],
)
def test_a_flush_stores_new_keys_once_whichever_way_it_goes_in(monkeypatch, few, values_rows):
    monkeypatch.setattr(_copy, "FEW", few)
    monkeypatch.setattr(_copy, "VALUES_ROWS", values_rows)
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
