"""Patients: the list with its search and filters, and a patient's messaging panel —
contacts, contact points, preferences, consent history, every message with its
reasons and what planning would do next — for each role, never another
organization's patient."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from carebell.audit.models import AuditEvent
from carebell.core.reasons import CATALOGUE, Code
from carebell.core.vocab import ContactPointKind, Kind
from carebell.messaging.models import AutomatedMessage, OutboxMessage
from carebell.people.models import ConsentRecord
from carebell.sites.roles import FRONT_DESK, PHARMACY_STAFF, READ_ONLY, SYSTEM_ADMINISTRATOR
from carebell.web.staff.views import patients as patients_view
from tests import factories
from tests.browser import sign_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def ana(site):
    """A child whose mother takes texts and whose father has no authority."""
    patient = factories.make_patient(site, first_name="Ana", last_name="Quintero",
                                     birth_date=dt.date(2019, 3, 14), language="es")  # fmt: skip
    mother = factories.make_contact(patient, first_name="Lucia")
    point = factories.add_point(mother, ContactPointKind.MOBILE, "+12025550190",
                                consent_sms=True, verified_at=timezone.now())  # fmt: skip
    factories.add_point(mother, ContactPointKind.EMAIL, "lucia@example.org")
    factories.set_preference(mother, "reminders", "sms")
    father = factories.make_contact(patient, first_name="Marco", relationship="father",
                                    authority="none")  # fmt: skip
    factories.add_point(father, ContactPointKind.MOBILE, "+12025550191", opted_out_sms=True)
    ConsentRecord.objects.create(site=site, contact_point=point, address=point.value,
                                 channel="sms", action="grant", source="paper",
                                 wording="Yes, text me about visits.",
                                 recorded_at=timezone.now())  # fmt: skip
    return patient


def outbox_row(patient, status="scheduled", **fields):
    now = timezone.now()
    values = {
        "site": patient.site, "patient": patient, "to_address": "+12025550190",
        "channel": "sms", "kind": "appt_reminder", "planned_at": now, "due_at": now,
        "status": status, "created_at": now, "updated_at": now, **fields,
    }  # fmt: skip
    return OutboxMessage.objects.create(**values)


@pytest.mark.parametrize("role", [SYSTEM_ADMINISTRATOR, FRONT_DESK, PHARMACY_STAFF, READ_ONLY])
def test_every_role_finds_patients_of_its_own_site_only(staff_of, site, other_org_site, role,
                                                          ana):  # fmt: skip
    factories.make_patient(other_org_site, first_name="Theirs", last_name="Quintana")
    page = staff_of(role).get("/staff/patients/", {"name": "Quin"}).content.decode()
    assert "Quintero, Ana" in page and "Theirs" not in page


@pytest.mark.parametrize(
    "query, found",
    [
        ({"name": "quintero ana"}, True),
        ({"name": "Quintero Bea"}, False),
        ({"birth_date": "2019-03-14"}, True),
        ({"birth_date": "2019-03-15"}, False),
        ({"phone": "(202) 555-0190"}, True),
        ({"phone": "+12025550199"}, False),
        ({"email": "lucia@EXAMPLE.org"}, True),
        ({"language": "es"}, True),
        ({"language": "en"}, False),
        ({"has_mobile": "yes"}, True),
        ({"has_email": "no"}, False),
        ({"category": "reminders", "preference": "sms"}, True),
        ({"category": "reminders", "preference": "email"}, False),
        ({"category": "recalls", "preference": "unset"}, True),
    ],
)
def test_the_search_filters_patients(staff_of, ana, query, found):
    page = staff_of(READ_ONLY).get("/staff/patients/", query).content.decode()
    assert ("Quintero, Ana" in page) is found


@pytest.mark.parametrize(
    "query",
    [{"birth_date": "14/03/2019x"}, {"phone": "not a phone"}, {"email": "nobody"},
     {"language": "klingon"}, {"preference": "sms"}, {"has_mobile": "maybe"}],
)  # fmt: skip
def test_bad_search_input_gets_a_clear_message(staff_of, ana, query):
    response = staff_of(READ_ONLY).get("/staff/patients/", query)
    assert response.status_code == 200
    page = response.content.decode()
    assert 'class="error"' in page and "Quintero, Ana" not in page


def test_the_list_pages_by_cursor(staff_of, site, monkeypatch):
    monkeypatch.setattr(patients_view, "PAGE_SIZE", 2)
    made = [
        factories.make_patient(site, last_name=name) for name in ("Abe", "Bo", "Cy", "Di", "Ed")
    ]
    client = staff_of(READ_ONLY)
    seen, url = [], "/staff/patients/"
    for _ in range(5):
        response = client.get(url)
        seen += [p.pk for p in response.context["patients"]]
        if not response.context["next_url"]:
            break
        url = "/staff/patients/" + response.context["next_url"]
    assert seen == [p.pk for p in made]


def test_the_panel_shows_contacts_points_preferences_and_consent(staff_of, ana):
    client = staff_of(READ_ONLY)
    page = client.get(f"/staff/patients/{ana.pk}/").content.decode()
    assert page.index("#1 Lucia") < page.index("#2 Marco")
    assert "receives no automated messages" in page  # the father: authority none
    assert "+12025550190" in page and "lucia@example.org" in page
    assert "Yes, text me about visits." in page and "Granted" in page
    assert "Reminders: Text message" in page and "Authority: <strong>None</strong>" in page
    assert AuditEvent.objects.filter(actor=client.user, action="view",
                                     object_type="people.patient",
                                     object_id=str(ana.pk)).exists()  # fmt: skip


def test_the_panel_says_why_a_message_was_not_sent(staff_of, ana):
    outbox_row(ana, "blocked", block_reason="opted_out", reasons=[{"code": "opted_out_sms"}])
    outbox_row(ana, "cancelled", reasons=[{"code": "cancelled_by_staff", "user": "dana"}])
    page = staff_of(FRONT_DESK).get(f"/staff/patients/{ana.pk}/").content.decode()
    assert CATALOGUE[Code.OPTED_OUT_SMS].sentence in page
    assert "Deleted from the queue by dana." in page


def test_the_panel_shows_what_planning_would_send_in_the_next_30_days(staff_of, site, ana, rules):
    AutomatedMessage.objects.filter(site=site, kind=Kind.APPT_REMINDER).update(enabled=True)
    start = timezone.now().replace(hour=15, minute=0) + dt.timedelta(days=3)
    factories.make_appointment(ana, starts_at=start)
    response = staff_of(FRONT_DESK).get(f"/staff/patients/{ana.pk}/")
    planned = response.context["planned"]
    assert planned and all(line["decision"].kind == "appt_reminder" for line in planned)
    assert any(line["who"] == "Lucia Quintero" for line in planned)
    not_planned = response.context["not_planned"]
    assert any("Marco" in line["who"] for line in not_planned)
    assert "Appointment reminder" in response.content.decode()


@pytest.fixture
def rosa(pharmacy):
    """A pharmacy patient with a refill due on 14 December and a birthday on 9 December,
    reachable by email for refill reminders but with no preference for birthdays."""
    for kind in (Kind.REFILL_DUE, Kind.RX_PICKUP_REMINDER, Kind.REVIEW_REQUEST, Kind.BIRTHDAY):
        AutomatedMessage.objects.create(site=pharmacy, kind=kind, name=kind, enabled=True)
    patient = factories.make_patient(pharmacy, first_name="Rosa", last_name="Delgado",
                                     birth_date=dt.date(1980, 12, 9))  # fmt: skip
    contact = factories.make_contact(patient, relationship="self", first_name="Rosa",
                                     last_name="Delgado")  # fmt: skip
    factories.add_point(contact, ContactPointKind.EMAIL, "rosa@example.org")
    factories.set_preference(contact, "refill_reminder", "email")
    add_prescription(patient, due=dt.date(2026, 12, 14))
    return patient


def add_prescription(patient, due: dt.date, days_supply: int = 30):
    filled_on = due - dt.timedelta(days=days_supply)
    prescription = factories.make_prescription(patient, days_supply=days_supply)
    picked = dt.datetime.combine(filled_on, dt.time(12), dt.UTC)
    factories.make_fill(prescription, filled_on=filled_on, step="picked_up", picked_up_at=picked)


def test_a_pharmacy_panel_forecasts_a_refill_and_says_why_a_birthday_would_not_go(
    staff_of, pharmacy, rosa
):
    neighbour = factories.make_patient(pharmacy, first_name="Nina", last_name="Other",
                                       birth_date=rosa.birth_date)  # fmt: skip
    add_prescription(neighbour, due=dt.date(2026, 12, 14))
    response = staff_of(PHARMACY_STAFF, at=pharmacy).get(f"/staff/patients/{rosa.pk}/")
    [refill] = response.context["planned"]
    assert (refill["decision"].kind, refill["decision"].channel) == ("refill_due", "email")
    assert refill["who"] == "Rosa Delgado" and refill["held"] is None
    [birthday] = response.context["not_planned"]
    assert birthday["decision"].kind == "birthday"
    assert birthday["why"] == ["The contact has no preference set for birthday messages."]
    page = response.content.decode()
    forecast = page[page.index('id="forecast"') : page.index("Messages about this patient")]
    # 08:00 in New York (13:00 UTC), three days before the due date.
    assert "Fri 11 Dec 2026 08:00" in forecast and "Refill due" in forecast
    assert "Birthday greeting" in forecast and "no preference set for birthday" in forecast
    assert "Not yet: its day's batch stores it" in forecast
    assert "Nina" not in page and {line["decision"].patient_id for line in
                                    response.context["planned"]} == {rosa.pk}  # fmt: skip


def test_a_forecast_message_already_in_the_queue_links_to_it(staff_of, pharmacy, rosa):
    from carebell.planning.runner import plan_once

    plan_once(now=dt.datetime(2026, 12, 11, 13, 0, tzinfo=dt.UTC))
    message = OutboxMessage.objects.get(kind="refill_due")
    with time_machine.travel(dt.datetime(2026, 12, 11, 12, 0, tzinfo=dt.UTC)):  # 07:00 there
        client = staff_of(SYSTEM_ADMINISTRATOR, at=pharmacy)
        response = client.get(f"/staff/patients/{rosa.pk}/")
    [refill] = response.context["planned"]
    assert refill["held"].message_id == message.pk
    assert f"/staff/queue/{message.pk}/" in response.content.decode()


def test_a_forecast_message_deleted_from_the_queue_says_it_will_not_be_sent(
    staff_of, pharmacy, rosa
):
    from carebell.planning.runner import plan_once

    plan_once(now=dt.datetime(2026, 12, 11, 13, 0, tzinfo=dt.UTC))
    OutboxMessage.objects.filter(kind="refill_due").update(status="cancelled")
    with time_machine.travel(dt.datetime(2026, 12, 11, 12, 0, tzinfo=dt.UTC)):
        client = staff_of(PHARMACY_STAFF, at=pharmacy)
        response = client.get(f"/staff/patients/{rosa.pk}/")
    assert response.context["planned"] == []
    refill = next(x for x in response.context["not_planned"] if x["decision"].kind == "refill_due")
    assert refill["why"][-1] == "Its message is in the queue as “Cancelled”: it will not be sent."


def test_the_forecast_queries_do_not_grow_with_prescriptions(staff_of, pharmacy, rosa):
    client = staff_of(PHARMACY_STAFF, at=pharmacy)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(f"/staff/patients/{rosa.pk}/").status_code == 200
        return len(captured)

    few = queries()
    for n in range(4):
        add_prescription(rosa, due=dt.date(2026, 12, 5 + n))
    assert queries() == few <= 45


def test_the_panel_runs_a_bounded_number_of_queries(staff_of, ana,
                                                     django_assert_max_num_queries):  # fmt: skip
    for _ in range(30):
        outbox_row(ana, "sent", reasons=[{"code": "quiet_hours"}])
    client = staff_of(READ_ONLY)
    with django_assert_max_num_queries(30):
        client.get(f"/staff/patients/{ana.pk}/")


def test_another_organizations_patient_is_not_found(outsider, ana):
    assert outsider.get(f"/staff/patients/{ana.pk}/").status_code == 404


def test_an_unknown_patient_is_not_found(staff_of, site):
    assert staff_of(READ_ONLY).get("/staff/patients/999999/").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_a_pharmacist_reads_the_forecast_and_why_in_a_browser(page, live_server, pharmacy, rosa):
    from pathlib import Path

    contact = rosa.contacts.get()
    factories.add_point(contact, ContactPointKind.MOBILE, "+12025550188", consent_sms=True)
    factories.set_preference(contact, "rx_ready", "sms")
    prescription = factories.make_prescription(rosa, drug_name="Metformin 500 mg")
    ready = timezone.now() - dt.timedelta(days=1)
    factories.make_fill(prescription, filled_on=ready.date(), step="label_printed",
                        label_printed_at=ready)  # fmt: skip
    carer = factories.make_contact(rosa, first_name="Marco", relationship="caregiver")
    factories.add_point(carer, ContactPointKind.MOBILE, "+12025550189", opted_out_sms=True)
    factories.set_preference(carer, "birthday", "sms")
    AutomatedMessage.objects.create(site=pharmacy, kind=Kind.RX_READY, name="Ready", enabled=True)
    factories.make_staff(pharmacy, PHARMACY_STAFF, username="pat")
    page.set_viewport_size({"width": 1200, "height": 900})
    sign_in(page, f"{live_server.url}/", "pat")
    page.wait_for_selector("text=Today at Maple Pharmacy")
    page.goto(f"{live_server.url}/staff/patients/{rosa.pk}/")
    forecast = page.locator("#forecast")
    planned = forecast.locator(".forecast-table").inner_text()
    assert "Refill due" in planned and "Fri 11 Dec 2026 08:00" in planned
    assert "Pickup reminder" in planned
    ready = "Ready for pickup\tText message (SMS)\tRosa Delgado\tNot yet: the planner's next pass"
    assert ready in planned
    blocked = forecast.locator(".forecast-blocked").inner_text()
    assert "Wed 9 Dec 2026\tBirthday greeting" in blocked
    assert "no preference set for birthday" in blocked
    assert "Marco Delgado\tThe number opted out of text messages." in blocked
    shots = Path("var/screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    forecast.screenshot(path=str(shots / "staff-patient-forecast.png"))
    page.screenshot(path=str(shots / "staff-patient-panel.png"), full_page=True)
