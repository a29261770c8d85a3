"""Rows of fictional clinic families and pharmacy patients, as plain tuples.

Everything comes from one seeded `random.Random`, and the values every test and demo
wants to see (each authority, appointment status, fill step, DEA class, preference)
come round in fixed cycles, so even a few dozen patients show them all and the same
seed always gives the same data.
"""

from __future__ import annotations

import datetime as dt
import random
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from carebell.appointments.models import Appointment, Recall
from carebell.core.vocab import (
    AppointmentStatus,
    Authority,
    Category,
    Channel,
    ConsentSource,
    ContactPointKind,
    FillStep,
    Preference,
    PrescriptionStatus,
    Relationship,
)
from carebell.demo import data
from carebell.demo.bulk import IdAllocator
from carebell.people.models import ConsentRecord, Contact, ContactPoint, ContactPreference, Patient
from carebell.pharmacy.models import Fill, Prescription

UTC = dt.UTC
SOURCE = "demo"
STEP_TIMES = tuple(f"{step.value}_at" for step in FillStep)

COLUMNS = {
    Patient: (
        "site_id", "source", "external_id", "first_name", "last_name", "birth_date",
        "language", "last_visit_on", "consented_at", "is_active",
    ),
    Contact: (
        "patient_id", "position", "relationship", "first_name", "last_name", "authority",
        "end_date", "resides_with_patient", "language",
    ),
    ContactPoint: ("contact_id", "kind", "value", "raw_value", "is_valid", "consent_sms"),
    ContactPreference: ("contact_id", "category", "value"),
    ConsentRecord: (
        "site_id", "contact_point_id", "address", "channel", "action", "source", "wording",
        "recorded_at", "captured_by_system",
    ),
    Appointment: (
        "site_id", "patient_id", "source", "external_id", "starts_at", "duration_minutes",
        "appointment_type", "provider_code", "provider_name", "location_code",
        "location_name", "status", "confirmed_at", "cancelled_at",
    ),
    Recall: ("site_id", "patient_id", "reason", "due_on"),
    Prescription: (
        "site_id", "patient_id", "source", "rx_number", "drug_name", "ndc", "is_maintenance",
        "dea_schedule", "prescriber_name", "refills_authorized", "refills_remaining",
        "days_supply", "status", "written_on",
    ),
    Fill: ("prescription_id", "fill_number", "filled_on", "days_supply", "step", *STEP_TIMES),
}  # fmt: skip

#: Parents before children, the order in which chunks are written.
WRITE_ORDER = tuple(COLUMNS)


class Cycle:
    """Hands out `values` in turn: the weights are the repetitions."""

    def __init__(self, values: Sequence):
        self._values = tuple(values)
        self._i = -1

    def next(self):
        self._i += 1
        return self._values[self._i % len(self._values)]


A = Authority
S = AppointmentStatus
P = Preference
AUTHORITIES = (A.BLANK, A.JOINT, A.BLANK, A.EXCLUSIVE, A.JOINT, A.NONE, A.BLANK, A.JOINT)
STATUSES = (
    S.BOOKED, S.CONFIRMED, S.COMPLETED, S.BOOKED, S.CANCEL_REQUESTED, S.CONFIRMED,
    S.CANCELLED, S.BOOKED, S.NO_SHOW, S.ARRIVED, S.CONFIRMED, S.DELETED,
)  # fmt: skip
PAST_STATUSES = frozenset({S.COMPLETED, S.NO_SHOW})
PREFERENCES = (
    P.SMS, P.EMAIL_OR_SMS, P.EMAIL, P.EMAIL_AND_SMS, P.SMS, P.BLANK, P.SMS_OR_CALL,
    P.CALL, P.EMAIL_OR_SMS_OR_CALL, P.NONE, P.ALL, P.SMS,
)  # fmt: skip
CLINIC_CATEGORIES = (Category.REMINDERS, Category.RECALLS, Category.GENERAL)
PHARMACY_CATEGORIES = (
    Category.RX_READY,
    Category.REFILL_REMINDER,
    Category.BIRTHDAY,
    Category.REVIEW,
)
F = FillStep
FILL_STEPS = (
    F.PICKED_UP, F.READY, F.RECEIVED, F.LABEL_PRINTED, F.PICKED_UP, F.INSURANCE_APPROVED,
    F.READY, F.VERIFIED_FOR_FILL, F.PICKED_UP, F.RETURNED_TO_STOCK,
)  # fmt: skip
RX_STATUSES = (*[PrescriptionStatus.ACTIVE] * 6, *list(PrescriptionStatus)[1:])
_ENDINGS = (F.PICKED_UP, F.RETURNED_TO_STOCK)
_WORKFLOW = [F.RECEIVED, F.INSURANCE_APPROVED, F.VERIFIED_FOR_FILL, F.LABEL_PRINTED, F.READY]


@dataclass(frozen=True)
class SiteContext:
    id: int
    name: str
    zone: ZoneInfo
    today: dt.date


@dataclass
class Guardian:
    relationship: str
    first_name: str
    authority: str
    end_date: dt.date | None
    points: list[tuple[str, str]]
    preferences: list[tuple[str, str]]


class DemoGenerator:
    """Builds rows into `self.rows` (table → list of tuples); the caller writes and
    clears them every chunk."""

    def __init__(self, rng: random.Random, ids: IdAllocator, tables: dict, now: dt.datetime):
        self.rng = rng
        self.ids = ids
        self.tables = tables
        self.now = now
        self.rows: dict[type, list[tuple]] = {model: [] for model in COLUMNS}
        self.counters: dict[str, int] = {}
        self._authority = Cycle(AUTHORITIES)
        self._status = Cycle(STATUSES)
        self._preference = Cycle(PREFERENCES)
        self._fill_step = Cycle(FILL_STEPS)
        self._drug = Cycle(data.DRUGS)
        self._rx_status = Cycle(RX_STATUSES)
        self._kids = Cycle((1, 2, 1, 3, 2, 1))
        self._ascii: dict[str, str] = {}

    # Shared pieces ----------------------------------------------------------------

    def _add(self, model: type, row: tuple) -> int:
        pk = self.ids.next(self.tables[model])
        self.rows[model].append((pk, *row))
        return pk

    def _number(self, prefix: str) -> str:
        n = self.counters[prefix] = self.counters.get(prefix, 0) + 1
        return f"{prefix}{n:07d}"

    def phone(self) -> str:
        return f"+1{self.rng.choice(data.AREA_CODES)}55501{self.rng.randrange(100):02d}"

    def email(self, first: str, last: str) -> str:
        local = f"{self._plain(first)}.{self._plain(last)}{self.rng.randrange(1000)}"
        return f"{local}@{self.rng.choice(data.EMAIL_DOMAINS)}"

    def _plain(self, name: str) -> str:
        if name not in self._ascii:
            decomposed = unicodedata.normalize("NFKD", name)
            self._ascii[name] = decomposed.encode("ascii", "ignore").decode().lower()
        return self._ascii[name]

    def _preferences(self, categories: Sequence[Category]) -> list[tuple[str, str]]:
        return [(c.value, self._preference.next().value) for c in categories]

    def _at(self, site: SiteContext, day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
        return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=site.zone).astimezone(UTC)

    def _patient(self, site: SiteContext, prefix: str, first: str, last: str, **extra) -> int:
        return self._add(
            Patient,
            (
                site.id,
                SOURCE,
                self._number(prefix),
                first,
                last,
                extra.get("birth_date"),
                extra.get("language", "en"),
                extra.get("last_visit_on"),
                extra.get("consented_at"),
                True,
            ),
        )

    def _contact(self, patient_id: int, position: int, g: Guardian, last: str, lang: str):
        resides = g.end_date is None and g.authority != Authority.NONE
        contact_id = self._add(
            Contact,
            (patient_id, position, g.relationship, g.first_name, last, g.authority.value,
             g.end_date, resides, lang),
        )  # fmt: skip
        for category, value in g.preferences:
            self._add(ContactPreference, (contact_id, category, value))
        return contact_id

    # Clinic ----------------------------------------------------------------------

    def clinic_family(self, site: SiteContext, max_patients: int) -> int:
        """One household: 1–3 children sharing their guardians' phones and emails."""
        rng = self.rng
        last = rng.choice(data.LAST_NAMES)
        language = "es" if rng.random() < 0.25 else "en"
        guardians = self._guardians(site, last)
        kids = min(self._kids.next(), max_patients)
        same_day = kids > 1 and rng.random() < 0.6
        day_offset, slot = rng.randint(1, 42), rng.randrange(30)
        for k in range(kids):
            birth = site.today - dt.timedelta(days=rng.randrange(18 * 365))
            patient_id = self._patient(
                site,
                "C",
                rng.choice(data.FIRST_NAMES),
                last,
                birth_date=birth,
                language=language,
                last_visit_on=site.today - dt.timedelta(days=rng.randrange(30, 400)),
            )
            for position, guardian in enumerate(guardians, start=1):
                contact_id = self._contact(patient_id, position, guardian, last, language)
                for kind, value in guardian.points:
                    self._add(ContactPoint, (contact_id, kind, value, value, True, False))
            for _ in range(rng.choice((0, 1, 1, 1, 2))):
                sibling_slot = (day_offset, slot + k) if same_day else None
                self._appointment(site, patient_id, sibling_slot)
            if rng.random() < 0.15:
                due = site.today + dt.timedelta(days=rng.randrange(-30, 90))
                self._add(Recall, (site.id, patient_id, rng.choice(data.RECALL_REASONS), due))
        return kids

    def _guardians(self, site: SiteContext, last: str) -> list[Guardian]:
        rng = self.rng
        first_relationship = Relationship.GUARDIAN if rng.random() < 0.1 else Relationship.MOTHER
        relationships = [first_relationship]
        if rng.random() < 0.6:
            relationships.append(Relationship.FATHER)
        home = self.phone() if rng.random() < 0.25 else None
        guardians = []
        for i, relationship in enumerate(relationships):
            first = rng.choice(data.FIRST_NAMES)
            points = []
            if i == 0 or rng.random() < 0.8:
                points.append((ContactPointKind.MOBILE.value, self.phone()))
            if rng.random() < 0.6:
                points.append((ContactPointKind.EMAIL.value, self.email(first, last)))
            if home:
                points.append((ContactPointKind.HOME.value, home))
            ended = rng.random() < 0.05
            end_date = site.today - dt.timedelta(days=rng.randrange(1, 400)) if ended else None
            guardians.append(
                Guardian(
                    relationship.value,
                    first,
                    self._authority.next(),
                    end_date,
                    points,
                    self._preferences(CLINIC_CATEGORIES),
                )
            )
        return guardians

    def _appointment(self, site: SiteContext, patient_id: int, slot: tuple | None) -> None:
        rng = self.rng
        status = self._status.next()
        if status in PAST_STATUSES:
            day, index = site.today - dt.timedelta(days=rng.randint(1, 14)), rng.randrange(32)
        elif status == S.ARRIVED:
            day, index = site.today, rng.randrange(8)
        elif slot is not None:
            day, index = site.today + dt.timedelta(days=slot[0]), slot[1] % 36
        else:
            day, index = site.today + dt.timedelta(days=rng.randint(1, 42)), rng.randrange(36)
        starts_at = self._at(site, day, 8 + index // 4, 15 * (index % 4))
        booked_at = min(starts_at, self.now) - dt.timedelta(days=rng.randint(3, 30))
        confirmed_at = booked_at + dt.timedelta(days=1) if status == S.CONFIRMED else None
        cancelled_at = booked_at + dt.timedelta(days=2) if status == S.CANCELLED else None
        provider = rng.choice(data.PROVIDERS)
        location = rng.choice(data.LOCATIONS)
        self._add(
            Appointment,
            (site.id, patient_id, SOURCE, self._number("A"), starts_at, rng.choice((15, 15, 30)),
             rng.choice(data.APPOINTMENT_TYPES), *provider, *location, status.value,
             confirmed_at, cancelled_at),
        )  # fmt: skip

    # Pharmacy --------------------------------------------------------------------

    def pharmacy_patient(self, site: SiteContext, wording: str) -> None:
        """An adult who is their own contact #1, with prescriptions and fills."""
        rng = self.rng
        first, last = rng.choice(data.FIRST_NAMES), rng.choice(data.LAST_NAMES)
        language = "es" if rng.random() < 0.2 else "en"
        consents = rng.random() < 0.6
        consented_at = self.now - dt.timedelta(days=rng.randrange(1, 900)) if consents else None
        patient_id = self._patient(
            site,
            "R",
            first,
            last,
            birth_date=self._adult_birthday(site),
            language=language,
            consented_at=consented_at,
        )
        self_points = [(ContactPointKind.MOBILE.value, self.phone())] if rng.random() < 0.9 else []
        if rng.random() < 0.65:
            self_points.append((ContactPointKind.EMAIL.value, self.email(first, last)))
        if rng.random() < 0.2:
            self_points.append((ContactPointKind.HOME.value, self.phone()))
        people = [Guardian(Relationship.SELF.value, first, Authority.BLANK, None, self_points, [])]
        if rng.random() < 0.15:
            caregiver = rng.choice(data.FIRST_NAMES)
            points = [(ContactPointKind.MOBILE.value, self.phone())]
            people.append(Guardian(Relationship.CAREGIVER.value, caregiver, Authority.JOINT,
                                   None, points, []))  # fmt: skip
        for position, person in enumerate(people, start=1):
            person.preferences = self._preferences(PHARMACY_CATEGORIES)
            contact_id = self._contact(patient_id, position, person, last, language)
            for kind, value in person.points:
                granted = consented_at if position == 1 and kind == "mobile" else None
                self._point_with_consent(site, contact_id, kind, value, granted, wording)
        for _ in range(rng.choice((1, 1, 2, 2, 3))):
            self._prescription(site, patient_id)

    def _adult_birthday(self, site: SiteContext) -> dt.date:
        rng = self.rng
        roll = rng.randrange(40)
        if roll == 0:  # today's birthday (in a leap year, should today be 29 February)
            year = rng.choice(range(1944, 2004, 4))
            return site.today.replace(year=year)
        if roll == 1:
            return dt.date(rng.choice(range(1940, 2004, 4)), 2, 29)
        return dt.date(1935, 1, 1) + dt.timedelta(days=rng.randrange(70 * 365))

    def _point_with_consent(self, site, contact_id, kind, value, granted_at, wording) -> None:
        point_id = self._add(ContactPoint, (contact_id, kind, value, value, True, bool(granted_at)))
        if granted_at:
            self._add(
                ConsentRecord,
                (site.id, point_id, value, Channel.SMS.value, ConsentRecord.Action.GRANT.value,
                 ConsentSource.SIGNATURE_PAD.value, wording, granted_at, "demo"),
            )  # fmt: skip

    def _prescription(self, site: SiteContext, patient_id: int) -> None:
        rng = self.rng
        drug, ndc, maintenance, dea = self._drug.next()
        days_supply = rng.choice((30, 30, 90)) if maintenance else rng.choice((5, 7, 10))
        authorized = rng.randrange(12) if dea != "C2" else 0
        remaining = rng.randint(0, authorized)
        fills = rng.randint(1, 3)
        written = site.today - dt.timedelta(days=days_supply * fills + rng.randrange(30))
        rx_id = self._add(
            Prescription,
            (site.id, patient_id, SOURCE, self._number("RX"), drug, ndc, maintenance, dea,
             rng.choice(data.PRESCRIBERS), authorized, remaining, days_supply,
             self._rx_status.next().value, written),
        )  # fmt: skip
        for number in range(fills):
            last = number == fills - 1
            step = self._fill_step.next() if last else F.PICKED_UP
            days_ago = days_supply * (fills - 1 - number)
            self._fill(site, rx_id, number, days_supply, step, days_ago)

    def _fill(self, site, rx_id: int, number: int, days_supply: int, step, days_ago: int) -> None:
        rng = self.rng
        done = step in _ENDINGS
        path = [*_WORKFLOW, step] if done else _WORKFLOW[: _WORKFLOW.index(step) + 1]
        # Work back from the last step reached: pick-ups happen days after the fill,
        # work in progress happened over the last hours.
        lead = dt.timedelta(days=days_ago + (rng.randint(1, 5) if done else 0))
        latest = self.now - lead - dt.timedelta(minutes=rng.randint(10, 240))
        times = dict.fromkeys(STEP_TIMES)
        at = latest
        for reached in reversed(path):
            times[f"{reached.value}_at"] = at
            if reached in _ENDINGS:
                at -= dt.timedelta(days=rng.randint(1, 4))
            else:
                at -= dt.timedelta(minutes=rng.randint(15, 90))
        filled_on = times["received_at"].astimezone(site.zone).date()
        self._add(Fill, (rx_id, number, filled_on, days_supply, step.value, *times.values()))
