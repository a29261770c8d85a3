"""The message queue: filters, keyset pages, a message's page, deleting pending
messages through the outbox, the streamed CSV — each for each role, and never another
organization's messages."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.utils import timezone

from carebell.audit.models import AuditEvent
from carebell.messaging.models import DeliveryAttempt, MessageEvent, OutboxMessage
from carebell.sites.roles import FRONT_DESK, PHARMACY_STAFF, READ_ONLY, SYSTEM_ADMINISTRATOR
from carebell.web.staff.views import queue as queue_view
from tests.web.staff.conftest import ROLES

pytestmark = pytest.mark.django_db


def message(site, status="scheduled", **fields):
    now = timezone.now()
    values = {
        "site": site, "to_address": "+12025550190", "channel": "sms", "kind": "appt_reminder",
        "planned_at": now + dt.timedelta(hours=1), "due_at": now, "status": status,
        "created_at": now, "updated_at": now, "entity_type": "appointment",
        "entity_name": "Avery Example", **fields,
    }  # fmt: skip
    return OutboxMessage.objects.create(**values)


@pytest.mark.parametrize("role", ROLES)
def test_every_role_sees_the_queue_of_its_own_site_only(staff_of, site, other_org_site, role):
    message(site, entity_name="Ours Patient")
    message(other_org_site, entity_name="Theirs Patient")
    response = staff_of(role).get("/staff/queue/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "Ours Patient" in page and "Theirs Patient" not in page
    assert "America/New_York" in page


def test_the_queue_shows_the_columns_of_the_spec(staff_of, site):
    message(site, priority=3, attempts=2, channel="email", kind="recall", entity_name="Sam Lee")
    page = staff_of(READ_ONLY).get("/staff/queue/").content.decode()
    for heading in ("Date/time", "Method", "Kind", "Priority", "Entity", "Entity name",
                    "Status", "Attempts"):  # fmt: skip
        assert heading in page
    assert "EMAIL" in page and "Recall" in page and "Sam Lee" in page


def test_filters_narrow_the_rows(staff_of, site):
    message(site, channel="email", entity_name="By Email")
    message(site, channel="sms", status="sent", entity_name="Sent Text")
    client = staff_of(FRONT_DESK)
    page = client.get("/staff/queue/", {"channel": "email"}).content.decode()
    assert "By Email" in page and "Sent Text" not in page
    page = client.get("/staff/queue/", {"status": "sent"}).content.decode()
    assert "Sent Text" in page and "By Email" not in page


def test_the_date_range_is_read_in_the_sites_zone(staff_of, site):
    # 2026-11-26 03:00 UTC is still the 25th in New York.
    late = dt.datetime(2026, 11, 26, 3, 0, tzinfo=dt.UTC)
    message(site, planned_at=late, entity_name="Late Evening")
    client = staff_of(READ_ONLY)
    on_25th = client.get("/staff/queue/", {"date_from": "2026-11-25", "date_to": "2026-11-25"})
    assert "Late Evening" in on_25th.content.decode()
    on_26th = client.get("/staff/queue/", {"date_from": "2026-11-26", "date_to": "2026-11-26"})
    assert "Late Evening" not in on_26th.content.decode()


@pytest.mark.parametrize(
    "query",
    [
        {"date_from": "2026-13-45"},
        {"date_from": "2026-11-30", "date_to": "2026-11-01"},
        {"status": "vanished"},
        {"channel": "pigeon"},
        {"priority": "high"},
        {"attempts": "-1"},
    ],
)
def test_bad_filters_get_a_clear_message_not_an_error(staff_of, site, query):
    message(site, entity_name="Any Patient")
    response = staff_of(READ_ONLY).get("/staff/queue/", query)
    assert response.status_code == 200
    page = response.content.decode()
    assert 'class="error"' in page and "Correct the filters" in page
    assert "Any Patient" not in page


def test_a_bad_page_link_starts_over_with_a_notice(staff_of, site):
    message(site, entity_name="First Row")
    page = staff_of(READ_ONLY).get("/staff/queue/", {"after": "yesterday~x"}).content.decode()
    assert "not valid any more" in page and "First Row" in page


def test_pages_follow_by_cursor_without_repeating_or_skipping(staff_of, site, monkeypatch):
    monkeypatch.setattr(queue_view, "PAGE_SIZE", 3)
    at = timezone.now() + dt.timedelta(hours=2)
    made = [message(site, planned_at=at, entity_name=f"Row {i:02d}") for i in range(7)]
    client = staff_of(READ_ONLY)
    seen, url = [], "/staff/queue/"
    for _ in range(5):
        response = client.get(url)
        rows = [m for m in response.context["messages_page"]]
        seen += [m.pk for m in rows]
        if not response.context["next_url"]:
            break
        url = "/staff/queue/" + response.context["next_url"]
    assert seen == [m.pk for m in made]


def test_the_queue_page_runs_a_bounded_number_of_queries(
    staff_of, site, django_assert_max_num_queries
):
    for i in range(60):
        message(site, entity_name=f"Patient {i}")
    # The frame (sign-in, site, one permission check per menu entry) plus one read of
    # the page's rows and its audit entry: never one query per row.
    client = staff_of(SYSTEM_ADMINISTRATOR)
    with django_assert_max_num_queries(30):
        response = client.get("/staff/queue/")
    assert len(response.context["messages_page"]) == queue_view.PAGE_SIZE


def test_a_message_page_shows_history_attempts_and_reasons_in_words(staff_of, site):
    blocked = message(site, status="blocked", block_reason="opted_out",
                      reasons=[{"code": "opted_out_sms"}])  # fmt: skip
    MessageEvent.objects.create(message=blocked, at=timezone.now(), status="blocked",
                                reasons=[{"code": "opted_out_sms"}])  # fmt: skip
    DeliveryAttempt.objects.create(message=blocked, number=1, provider="sim",
                                   idempotency_key="k1", started_at=timezone.now(),
                                   status="failed", error_code="21610")  # fmt: skip
    client = staff_of(READ_ONLY)
    page = client.get(f"/staff/queue/{blocked.pk}/").content.decode()
    from carebell.core.reasons import CATALOGUE, Code

    assert CATALOGUE[Code.OPTED_OUT_SMS].sentence in page
    assert "21610" in page and "History" in page
    assert AuditEvent.objects.filter(actor=client.user, action="view",
                                     object_id=str(blocked.pk)).exists()  # fmt: skip


def test_another_organizations_message_is_not_found(outsider, site):
    ours = message(site)
    assert outsider.get(f"/staff/queue/{ours.pk}/").status_code == 404


def test_deleting_needs_the_delete_queued_permission(staff_of, site):
    pending = message(site)
    response = staff_of(READ_ONLY).post("/staff/queue/delete/", {"message": [pending.pk]})
    assert response.status_code == 403
    pending.refresh_from_db()
    assert pending.status == "scheduled"


@pytest.mark.parametrize("role", [SYSTEM_ADMINISTRATOR, FRONT_DESK, PHARMACY_STAFF])
def test_selected_pending_messages_are_cancelled_through_the_outbox(staff_of, site, role):
    first, second, sent = message(site), message(site), message(site, "sent")
    client = staff_of(role)
    response = client.post(
        "/staff/queue/delete/", {"message": [first.pk, second.pk, sent.pk], "next": "/staff/queue/"}
    )
    assert response.status_code == 302
    statuses = dict(OutboxMessage.objects.values_list("pk", "status"))
    assert statuses == {first.pk: "cancelled", second.pk: "cancelled", sent.pk: "sent"}
    event = MessageEvent.objects.get(message=first)
    assert event.status == "cancelled" and event.reasons[0]["code"] == "cancelled_by_staff"
    assert AuditEvent.objects.filter(action="cancel", object_id=str(first.pk)).exists()
    assert not AuditEvent.objects.filter(action="cancel", object_id=str(sent.pk)).exists()


def test_a_sent_message_cannot_be_cancelled(staff_of, site):
    sent = message(site, "sent")
    client = staff_of(FRONT_DESK)
    response = client.post("/staff/queue/delete/", {"message": [sent.pk]}, follow=True)
    assert "already sent or ended" in response.content.decode()
    sent.refresh_from_db()
    assert sent.status == "sent"


def test_another_organizations_message_is_never_cancelled(outsider, site):
    ours = message(site)
    outsider.post("/staff/queue/delete/", {"message": [ours.pk]})
    ours.refresh_from_db()
    assert ours.status == "scheduled"


@pytest.mark.parametrize("ids", [[], ["x"], ["1; drop"]])
def test_a_bad_selection_changes_nothing(staff_of, site, ids):
    pending = message(site)
    response = staff_of(FRONT_DESK).post("/staff/queue/delete/", {"message": ids}, follow=True)
    assert response.status_code == 200
    assert "Choose at least one message" in response.content.decode()
    pending.refresh_from_db()
    assert pending.status == "scheduled"


def _csv(response) -> list[list[str]]:
    assert response.streaming
    text = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(text)))


def test_the_csv_streams_exactly_the_filtered_rows(staff_of, site, other_org_site):
    wanted = [message(site, channel="email", entity_name=f"Mail {i}") for i in range(3)]
    message(site, channel="sms", entity_name="Text")
    message(other_org_site, channel="email", entity_name="Theirs")
    client = staff_of(READ_ONLY)
    response = client.get("/staff/queue/export.csv", {"channel": "email"})
    assert response["Content-Type"] == "text/csv"
    rows = _csv(response)
    assert rows[0][:3] == ["id", "planned_at", "zone"]
    assert [int(r[0]) for r in rows[1:]] == [m.pk for m in wanted]
    assert {r[2] for r in rows[1:]} == {"America/New_York"}
    assert AuditEvent.objects.filter(actor=client.user, action="export").exists()


def test_the_csv_refuses_bad_filters_in_words(staff_of, site):
    response = staff_of(READ_ONLY).get("/staff/queue/export.csv", {"status": "vanished"})
    assert response.status_code == 400
    assert "not valid" in response.content.decode()


def test_the_csv_export_reads_rows_in_chunks(staff_of, site, monkeypatch):
    monkeypatch.setattr(queue_view, "EXPORT_CHUNK", 2)
    for i in range(5):
        message(site, entity_name=f"Row {i}")
    rows = _csv(staff_of(READ_ONLY).get("/staff/queue/export.csv"))
    assert len(rows) == 6


def test_the_queue_is_refused_to_someone_signed_out(client, site):
    response = client.get("/staff/queue/")
    assert response.status_code == 302 and "/staff/sign-in/" in response["Location"]


def test_the_next_page_starts_from_the_index_not_from_the_first_row(site):
    at = timezone.now()
    rows = queue_view.after(OutboxMessage.objects.filter(site=site), (at, 7))
    sql = str(rows.query)
    # planned_at >= the cursor's time is a range the (site, planned_at) index starts
    # from; the OR that breaks ties by id alone would be read row by row.
    assert '"planned_at" >=' in sql


def test_the_entity_filter_offers_every_entity_type_of_the_vocabulary(staff_of, site):
    from carebell.core.vocab import EntityType

    message(site, entity_type="recall", entity_name="Due Recall")
    form = staff_of(READ_ONLY).get("/staff/queue/", {"entity": "recall"}).context["form"]
    offered = {value for value, _label in form.fields["entity"].choices if value}
    assert offered == {e.value for e in EntityType}
    assert form.is_valid()
