import datetime as dt
import io
import os
import re
import subprocess
import sys
from zoneinfo import ZoneInfo

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Count

from carebell.appointments.models import Appointment
from carebell.core.vocab import (
    AppointmentStatus,
    Authority,
    ConsentSource,
    DeaSchedule,
    FillStep,
    Kind,
    Preference,
    Relationship,
    SiteKind,
)
from carebell.demo import data
from carebell.demo.seeding import DAYTIME, choose_time_zone, describe_clock
from carebell.messaging.models import AutomatedMessage
from carebell.people.models import ConsentRecord, Contact, ContactPoint, ContactPreference, Patient
from carebell.pharmacy.models import Fill, Prescription
from carebell.planning.rules_defaults import default_rules
from carebell.sites.models import Site

NOW = dt.datetime(2026, 3, 10, 15, 30, tzinfo=dt.UTC)
FICTIONAL_PHONE = re.compile(r"^\+1\d{3}55501\d{2}$")


def seed(patients=120, seed=7, now=NOW, **options):
    out = io.StringIO()
    call_command(
        "seed_demo",
        patients=patients,
        seed=seed,
        now=now,
        no_progress=True,
        stdout=out,
        **options,
    )
    return out.getvalue()


@pytest.fixture
def seeded(db):
    seed()


def values(queryset, field):
    return set(queryset.values_list(field, flat=True))


def test_it_creates_a_clinic_and_a_pharmacy_with_the_requested_patients(seeded):
    sites = Site.objects.filter(organization__slug=data.ORGANIZATION_SLUG)
    assert values(sites, "kind") == {SiteKind.CLINIC, SiteKind.PHARMACY}
    assert all(site.delivery.delivery_days for site in sites)
    assert all(site.departments.filter(name="Front Desk").exists() for site in sites)
    assert all(site.review_links.filter(is_default=True).count() == 1 for site in sites)
    assert Patient.objects.count() == 120


def test_guardians_hold_every_authority_value(seeded):
    assert values(Contact.objects.all(), "authority") == {a.value for a in Authority}


def test_some_contacts_are_end_dated_and_languages_are_mixed(seeded):
    assert Contact.objects.filter(end_date__lt=NOW.date()).exists()
    assert values(Patient.objects.all(), "language") == {"en", "es"}


def test_preferences_cover_every_kind_of_value(seeded):
    assert values(ContactPreference.objects.all(), "value") == {p.value for p in Preference}


def test_appointments_come_in_every_status(seeded):
    assert values(Appointment.objects.all(), "status") == {s.value for s in AppointmentStatus}


def test_open_appointments_lie_in_the_coming_weeks(seeded):
    future = Appointment.objects.filter(status__in=["booked", "confirmed", "cancel_requested"])
    assert all(NOW < a.starts_at < NOW + dt.timedelta(weeks=7) for a in future)


def test_siblings_share_a_parent_phone(seeded):
    shared = (
        ContactPoint.objects.filter(kind="mobile", contact__patient__site__kind="clinic")
        .values("value")
        .annotate(children=Count("contact__patient", distinct=True))
        .filter(children__gt=1)
    )
    assert shared.exists()


def test_every_phone_number_is_fictional_and_every_email_reserved(seeded):
    phones = values(ContactPoint.objects.exclude(kind="email"), "value")
    phones |= values(Site.objects.all(), "phone")
    emails = values(ContactPoint.objects.filter(kind="email"), "value")
    assert phones and all(FICTIONAL_PHONE.match(p) for p in phones)
    assert emails and all(e.endswith(("@example.org", "@example.com")) for e in emails)


def test_pharmacy_patients_are_their_own_first_contact(seeded):
    firsts = Contact.objects.filter(patient__site__kind="pharmacy", position=1)
    assert values(firsts, "relationship") == {Relationship.SELF.value}


def test_prescriptions_cover_every_dea_class_and_non_maintenance_drugs(seeded):
    assert values(Prescription.objects.all(), "dea_schedule") == {d.value for d in DeaSchedule}
    assert Prescription.objects.filter(is_maintenance=False).exists()


def test_fills_stand_at_every_step_with_the_times_they_reached_it(seeded):
    assert values(Fill.objects.all(), "step") == {s.value for s in FillStep}
    for fill in Fill.objects.all():
        step = FillStep(fill.step)
        assert fill.reached_at(step) is not None
        assert fill.received_at <= fill.reached_at(step) <= NOW
        if step is FillStep.RETURNED_TO_STOCK:
            assert fill.picked_up_at is None


def test_birthdays_include_today_and_29_february(seeded):
    births = Patient.objects.filter(site__kind="pharmacy")
    assert births.filter(birth_date__month=NOW.month, birth_date__day=NOW.day).exists()
    assert births.filter(birth_date__month=2, birth_date__day=29).exists()


def test_signature_pad_consent_keeps_the_exact_wording(seeded):
    record = ConsentRecord.objects.first()
    assert record.source == ConsentSource.SIGNATURE_PAD
    assert record.wording == data.CONSENT_WORDING.format(site=data.PHARMACY_NAME)
    assert record.contact_point.consent_sms


def test_the_default_automated_messages_are_enabled(seeded):
    rules = AutomatedMessage.objects.all()
    assert rules.exists() and all(rule.enabled for rule in rules)
    confirmation = rules.get(kind=Kind.APPT_CONFIRMATION)
    assert confirmation.offsets == [{"days": 3}]
    assert rules.get(kind=Kind.APPT_REMINDER).offsets == [{"days": 1}]
    pharmacy_kinds = values(rules.filter(site__kind="pharmacy"), "kind")
    assert {Kind.RX_READY, Kind.RX_PICKUP_REMINDER, Kind.REFILL_DUE} <= pharmacy_kinds


def test_default_rules_are_unsaved_and_disabled(site):
    rules = default_rules(site)
    assert rules and all(rule.pk is None and not rule.enabled for rule in rules)
    assert len({rule.kind for rule in rules}) == len(rules)


def test_it_refuses_to_seed_a_database_that_has_patients(seeded):
    with pytest.raises(CommandError, match="--force"):
        seed(patients=5)


def snapshot(organization_slug):
    sites = {"site__organization__slug": organization_slug}
    patients = Patient.objects.filter(**sites).order_by("external_id")
    return {
        "patients": list(
            patients.values_list("external_id", "first_name", "last_name", "birth_date", "language")
        ),
        "contacts": list(
            Contact.objects.filter(patient__in=patients)
            .order_by("patient__external_id", "position")
            .values_list("position", "relationship", "first_name", "authority", "end_date")
        ),
        "points": list(
            ContactPoint.objects.filter(contact__patient__in=patients)
            .order_by("contact__patient__external_id", "contact__position", "kind")
            .values_list("kind", "value", "consent_sms")
        ),
        "appointments": list(
            Appointment.objects.filter(**sites)
            .order_by("external_id")
            .values_list("external_id", "starts_at", "status")
        ),
        "fills": list(
            Fill.objects.filter(prescription__patient__in=patients)
            .order_by("prescription__rx_number", "fill_number")
            .values_list("prescription__drug_name", "step", "received_at", "picked_up_at")
        ),
    }


def test_the_same_seed_gives_the_same_data(seeded):
    seed(force=True)
    first, second = snapshot(data.ORGANIZATION_SLUG), snapshot(data.ORGANIZATION_SLUG + "-1")
    assert first["patients"] and first == second


def test_another_seed_gives_other_data(seeded):
    seed(seed=8, force=True)
    assert snapshot(data.ORGANIZATION_SLUG) != snapshot(data.ORGANIZATION_SLUG + "-1")


def test_it_reports_what_it_wrote_without_naming_anyone(db):
    output = seed(patients=10)
    assert "10 patients" in output
    names = values(Patient.objects.all(), "last_name")
    assert not any(name in output for name in names)


# -- a demo tried at any hour --------------------------------------------------------

NIGHT_IN_NEW_YORK = dt.datetime(2026, 11, 25, 5, 0, tzinfo=dt.UTC)  # midnight there


def test_sites_seeded_at_night_in_new_york_run_where_it_is_daytime(db):
    output = seed(patients=10, now=NIGHT_IN_NEW_YORK)
    zones = values(Site.objects.filter(organization__slug=data.ORGANIZATION_SLUG), "time_zone")
    (zone,) = zones
    local = NIGHT_IN_NEW_YORK.astimezone(ZoneInfo(zone))
    assert zone != data.TIME_ZONE and DAYTIME[0] <= local.time() < DAYTIME[1]
    assert f"run on {zone} time, where it is {local:%H:%M} now, so texts go out at once" in output


def test_sites_seeded_in_new_york_daytime_stay_in_new_york(db):
    output = seed(patients=10)  # 15:30 UTC: 11:30 in New York
    sites = Site.objects.filter(organization__slug=data.ORGANIZATION_SLUG)
    assert values(sites, "time_zone") == {"America/New_York"}
    assert "America/New_York time, where it is 11:30 now" in output


def test_appointments_of_sites_seeded_elsewhere_fall_in_their_local_working_hours(db):
    seed(patients=40, now=NIGHT_IN_NEW_YORK)
    clinic = Site.objects.get(organization__slug=data.ORGANIZATION_SLUG, kind=SiteKind.CLINIC)
    hours = {a.starts_at.astimezone(clinic.zone).hour for a in Appointment.objects.all()}
    assert hours and min(hours) >= 8 and max(hours) <= 17


@pytest.mark.parametrize("day", [dt.date(2026, 1, 14), dt.date(2026, 7, 15), dt.date(2026, 3, 8)])
@pytest.mark.parametrize("minute", range(0, 24 * 60, 20))
def test_whatever_the_hour_the_demo_zone_is_in_its_daytime(day, minute):
    now = dt.datetime.combine(day, dt.time(0), tzinfo=dt.UTC) + dt.timedelta(minutes=minute)
    zone = choose_time_zone(now)
    assert DAYTIME[0] <= now.astimezone(ZoneInfo(zone)).time() < DAYTIME[1]


def test_the_demo_says_when_its_sites_are_in_quiet_hours(db):
    seed(patients=2)
    clinic = Site.objects.filter(organization__slug=data.ORGANIZATION_SLUG).first()
    late = dt.datetime(2026, 3, 11, 3, 0, tzinfo=dt.UTC)  # 23:00 in New York
    line = describe_clock(clinic, late)
    assert "where it is 23:00 now: texts and calls wait for 08:00 there" in line


@pytest.mark.slow
@pytest.mark.real_clock
def test_seed_demo_sets_up_a_fresh_data_dir_first(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAREBELL_")}
    env.update(CAREBELL_DEBUG="1", CAREBELL_DATA_DIR=str(tmp_path))
    result = subprocess.run(
        [sys.executable, "-m", "carebell", "seed-demo", "--patients", "4", "--no-progress"],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Setting up the database first" in result.stderr
    assert "Seeded Maple Health: 4 patients" in result.stdout
