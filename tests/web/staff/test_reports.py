"""Reports: a small known dataset counted per day in the site's zone, the SVG charts,
and the CSV downloads."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest

from carebell.core.vocab import AppointmentStatus
from carebell.messaging.models import OutboxMessage
from carebell.people.models import OptOutEvent
from tests import factories
from tests.web.staff.conftest import ROLES

pytestmark = pytest.mark.django_db

UTC = dt.UTC
PERIOD = {"first": "2026-11-24", "last": "2026-11-25"}


def at(day: int, hour: int) -> dt.datetime:
    return dt.datetime(2026, 11, day, hour, 0, tzinfo=UTC)


def message(site, when, status, channel="sms", segments=1, **fields):
    return OutboxMessage.objects.create(
        site=site, to_address="+12025550180", channel=channel, kind=fields.pop("kind", "general"),
        planned_at=when, due_at=when, created_at=when, updated_at=when, status=status,
        segments=segments, **fields,
    )  # fmt: skip


@pytest.fixture
def dataset(site, other_org_site, settings):
    settings.SMS_PRICE_PER_SEGMENT = Decimal("0.01")
    # 24 November in New York (UTC-5): 03:00 UTC on the 25th is still the 24th there.
    message(site, at(24, 15), "delivered", kind="appt_reminder")
    message(site, at(25, 3), "delivered", segments=2, kind="appt_reminder")
    message(site, at(24, 16), "failed", error_code="30003")
    message(site, at(24, 17), "sent", channel="email", segments=0)
    # 25 November.
    message(site, at(25, 14), "undelivered", error_code="30003")
    message(site, at(25, 14), "blocked", block_reason="opted_out")
    message(site, at(25, 15), "blocked", block_reason="opted_out")
    message(site, at(25, 15), "cancelled")
    # Outside the period, and another organization's: never counted.
    message(site, at(23, 12), "delivered")
    message(other_org_site, at(24, 15), "delivered")
    patient = factories.make_patient(site)
    factories.make_appointment(patient, starts_at=at(28, 15), confirmed_at=at(24, 18),
                               status=AppointmentStatus.CONFIRMED)  # fmt: skip
    factories.make_appointment(patient, starts_at=at(29, 15), cancelled_at=at(25, 14),
                               status=AppointmentStatus.CANCELLED)  # fmt: skip
    factories.make_appointment(patient, starts_at=at(24, 14), status=AppointmentStatus.NO_SHOW)
    OptOutEvent.objects.create(
        site=site, address="+12025550180", channel="sms", opted_out=True, source="keyword",
        recorded_at=at(25, 12),
    )  # fmt: skip


def download(client, name) -> list[list[str]]:
    response = client.get(f"/staff/reports/{name}.csv", PERIOD)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(response.content.decode())))


@pytest.mark.parametrize("role", ROLES)
def test_every_role_that_views_the_queue_reads_the_reports(staff_of, role):
    assert staff_of(role).get("/staff/reports/").status_code == 200
    assert staff_of(role).get("/staff/reports/messages.csv").status_code == 200


def test_the_summaries_count_the_known_dataset(admin_client_, dataset):
    page = admin_client_.get("/staff/reports/", PERIOD).content.decode()
    assert "8 messages planned in 2 days." in page
    assert "40.0% delivered: 2 of 5 messages handed to a provider." in page
    assert "1 confirmed, 1 cancelled, 1 no-shows." in page
    assert "1 opt-outs." in page
    assert "5 segments sent, about 0.05 at 0.01 a segment." in page


def test_messages_count_on_the_site_s_local_day(admin_client_, dataset):
    rows = download(admin_client_, "messages")
    assert rows[0] == ["day", "channel", "kind", "status", "messages", "segments"]
    assert ["2026-11-24", "sms", "appt_reminder", "delivered", "2", "3"] in rows
    assert sum(int(r[4]) for r in rows[1:]) == 8


def test_the_delivery_rate_is_delivered_over_attempted_per_day(admin_client_, dataset):
    assert download(admin_client_, "delivery")[1:] == [
        ["2026-11-24", "4", "2", "50.0"],
        ["2026-11-25", "1", "0", "0.0"],
    ]


def test_sms_segments_and_their_cost_per_day(admin_client_, dataset):
    assert download(admin_client_, "sms")[1:] == [
        ["2026-11-24", "4", "0.04"],
        ["2026-11-25", "1", "0.01"],
    ]


def test_a_site_with_its_own_price_is_costed_at_it(admin_client_, dataset, site):
    site.delivery.sms_price_per_segment = Decimal("0.05")
    site.delivery.save()
    assert download(admin_client_, "sms")[1:] == [
        ["2026-11-24", "4", "0.20"],
        ["2026-11-25", "1", "0.05"],
    ]


def test_the_price_is_set_in_the_delivery_settings(admin_client_, site):
    page = admin_client_.get("/staff/settings/delivery/").content.decode()
    assert 'name="sms_price_per_segment"' in page


def test_appointments_and_opt_outs_per_day(admin_client_, dataset):
    assert download(admin_client_, "appointments")[1:] == [
        ["2026-11-24", "1", "0", "1"],
        ["2026-11-25", "0", "1", "0"],
    ]
    assert download(admin_client_, "opt_outs")[1:] == [["2026-11-25", "sms", "1"]]


def test_the_top_reasons(admin_client_, dataset):
    assert download(admin_client_, "reasons")[1:] == [
        ["failure", "30003", "2"],
        ["blocked", "opted_out", "2"],
    ]


def test_the_charts_are_accessible_svg_with_a_bar_per_day(admin_client_, dataset):
    page = admin_client_.get("/staff/reports/", PERIOD).content.decode()
    assert page.count('<svg class="chart" role="img"') == 5
    assert '<title id="messages-title">Messages per day</title>' in page
    assert "<title>24 Nov: 4</title>" in page


def test_another_organization_sees_none_of_it(outsider, dataset):
    page = outsider.get("/staff/reports/", PERIOD).content.decode()
    assert "1 messages planned in 2 days." in page
    rows = download(outsider, "reasons")
    assert rows[1:] == []


@pytest.mark.parametrize(
    "query",
    [
        {"first": "2026-11-30", "last": "2026-11-01"},
        {"first": "2020-01-01", "last": "2026-11-01"},
        {"first": "yesterday", "last": ""},
    ],
)
def test_a_bad_period_gets_a_form_error_not_a_500(admin_client_, query):
    response = admin_client_.get("/staff/reports/", query)
    assert response.status_code == 200
    assert 'class="errors"' in response.content.decode()
    assert admin_client_.get("/staff/reports/messages.csv", query).status_code == 200


def test_an_unknown_report_is_404(admin_client_):
    assert admin_client_.get("/staff/reports/secrets.csv").status_code == 404
