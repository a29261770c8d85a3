"""Messages into carebell through `receive`: what changes, what is kept, what is
answered."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from carebell.appointments.models import Appointment
from carebell.audit.models import AuditEvent
from carebell.core.vocab import AppointmentStatus, ContactPointKind, Kind
from carebell.interop.hl7.client import ack_code, ack_field
from carebell.interop.hl7.ingest import Feed, find_patient
from carebell.interop.hl7.models import Hl7Applied, Hl7Message, Hl7Sender, Outcome
from carebell.interop.hl7.receive import receive
from carebell.messaging.models import OutboxMessage
from carebell.people.models import ContactPoint, Patient
from carebell.pharmacy.models import Fill, Prescription
from tests import factories
from tests.interop.hl7.samples import siu, vector
from tests.messaging.engine_setup import enable

pytestmark = pytest.mark.django_db


def take(raw: bytes):
    got = receive(raw, via="file", peer="test")
    return got, got.acks[0] if got.acks else b""


def test_an_s12_creates_the_patient_their_phone_and_the_appointment(clinic):
    _, ack = take(siu())
    assert ack_code(ack) == "AA" and ack_field(ack, "MSA", 2) == "C1"
    appointment = Appointment.objects.get(site=clinic, external_id="A1")
    assert appointment.starts_at == dt.datetime(2026, 11, 28, 15, 0, tzinfo=dt.UTC)
    assert appointment.duration_minutes == 30
    assert (appointment.location_code, appointment.location_name) == ("R1", "Room 1, Main Clinic")
    assert (appointment.provider_code, appointment.provider_name) == ("D1", "Dr Rose Shaw")
    assert appointment.status == AppointmentStatus.BOOKED
    patient = appointment.patient
    assert (patient.first_name, patient.last_name, patient.source) == ("Ada", "Lovelace",
                                                                       "hl7:CLINIC")  # fmt: skip
    point = ContactPoint.objects.get(contact__patient=patient)
    assert (point.kind, point.value, point.raw_value) == ("mobile", "+12025550123", "2025550123")
    assert Hl7Message.objects.get().outcome == Outcome.APPLIED


def test_changes_are_audited_with_the_sender_as_actor(clinic):
    take(siu())
    systems = set(AuditEvent.objects.values_list("detail__system", flat=True))
    assert systems == {"hl7:PMS/CLINIC"}


def test_an_appointment_arriving_plans_its_reminders(clinic):
    enable(clinic, Kind.APPT_REMINDER, offsets=[{"days": 1}])
    patient = factories.make_patient(clinic, source="hl7:CLINIC", external_id="P1",
                                     first_name="Ada", last_name="Lovelace")  # fmt: skip
    parent = factories.make_contact(patient)
    factories.add_point(parent, ContactPointKind.MOBILE, "+12025550177", consent_sms=True)
    factories.set_preference(parent, "reminders", "sms")
    take(siu())
    appointment = Appointment.objects.get(external_id="A1")
    planned = OutboxMessage.objects.filter(patient=patient, kind=Kind.APPT_REMINDER)
    assert planned.count() == 1
    assert planned.get().entity_id == appointment.id
    take(siu("S15", control="C2", sent=dt.datetime(2026, 11, 25, 14, 30, tzinfo=dt.UTC)))
    appointment.refresh_from_db()
    assert appointment.status == AppointmentStatus.CANCELLED
    assert planned.get().status == "cancelled"


def test_a_resend_changes_nothing_and_gets_the_original_ack(clinic):
    _, first = take(siu())
    audit = AuditEvent.objects.count()
    got, again = take(siu().replace(b"\r", b"\r\n"))  # the same segments, CRLF this time
    assert got.duplicate and again == first
    assert AuditEvent.objects.count() == audit
    assert Hl7Message.objects.get().resent == 1


def test_the_same_control_id_with_other_content_is_another_message(clinic):
    take(siu("S15", control="Q1"))
    got, ack = take(siu("S26", control="Q1"))  # Barts sends its S26 with the S15's MSH-10
    assert not got.duplicate and ack_code(ack) == "AA"
    assert Appointment.objects.get().status == AppointmentStatus.NO_SHOW


def test_an_older_message_arriving_later_does_not_undo_a_newer_one(clinic):
    take(siu("S15", control="C2", sent=dt.datetime(2026, 11, 25, 14, 30, tzinfo=dt.UTC)))
    got, ack = take(siu("S12", control="C1", sent=dt.datetime(2026, 11, 25, 14, 0, tzinfo=dt.UTC)))
    assert ack_code(ack) == "AA" and got.outcome == Outcome.STALE
    assert Appointment.objects.get().status == AppointmentStatus.CANCELLED


def test_a_patient_confirmation_stands_when_a_modify_keeps_the_time(clinic):
    take(siu())
    Appointment.objects.update(status=AppointmentStatus.CONFIRMED)
    take(siu("S14", control="C2", sent=dt.datetime(2026, 11, 25, 14, 5, tzinfo=dt.UTC)))
    assert Appointment.objects.get().status == AppointmentStatus.CONFIRMED
    moved = dt.datetime(2026, 11, 29, 15, 0, tzinfo=dt.UTC)
    take(
        siu("S13", control="C3", start=moved, sent=dt.datetime(2026, 11, 25, 14, 6, tzinfo=dt.UTC))
    )
    appointment = Appointment.objects.get()
    assert (appointment.starts_at, appointment.status) == (moved, AppointmentStatus.BOOKED)


def test_an_error_changes_nothing_keeps_the_bytes_and_answers_ae(clinic):
    bad = siu().replace(b"TQ1|||||||20261128150000+0000", b"TQ1|||||||").replace(
        b"|20261128150000+0000|||30", b"||||30")  # fmt: skip
    _, ack = take(bad)
    assert ack_code(ack) == "AE"
    assert "No start time" in ack_field(ack, "MSA", 3)
    assert ack_field(ack, "ERR", 3).startswith("101^Required field missing")
    assert not Patient.objects.exists() and not Appointment.objects.exists()
    stored = Hl7Message.objects.get()
    assert (stored.outcome, bytes(stored.raw)) == (Outcome.ERROR, bad)


@pytest.mark.parametrize(
    "raw, reason",
    [
        (b"PID|1||P1^^^X^MR||Doe^Jo\r", "does not start with an MSH"),
        (b"MSH|^^\\&|PMS|CLINIC|||20261125||SIU^S12|X1|P|2.5\r", "encoding characters"),
        (b"MSH|^~\\&|PMS|CLINIC|||20261125||SIU^S12|X1|P|9.9\r", "version"),
        (b"MSH|^~\\&|PMS|CLINIC|||20261125||SIU^S12|X1|P|2.5\rSCH|A1\rPI", "segment id"),
        (b"MSH|^~\\&|PMS|CLINIC|||20261125||ORM^O01|X1|P|2.5\rPID|1\r", "not taken"),
        (b"\x00\xff\xfe\x89PNG\r\n\x1a\n\x00binary", "MSH"),
        (b"MSH|^~\\&|PMS|CLINIC|||20261125||SIU^S12|X1|P|2.5||||||UTF-8\rPID|\xe9\r", "UTF-8"),
    ],
)
def test_malformed_input_is_rejected_and_kept(clinic, raw, reason):
    got, ack = take(raw)
    assert ack_code(ack) == "AR"
    assert reason in got.reason
    assert not Patient.objects.exists()
    assert bytes(Hl7Message.objects.get(outcome=Outcome.REJECTED).raw) == raw


def test_the_ar_for_a_truncated_message_still_names_its_control_id(clinic):
    raw = b"MSH|^~\\&|PMS|CLINIC|||20261125||SIU^S12|X42|P|2.5\rSCH|A1\rPI"
    _, ack = take(raw)
    assert ack_field(ack, "MSA", 2) == "X42"


def test_an_unknown_sender_is_rejected(site):
    got, ack = take(siu())
    assert ack_code(ack) == "AR" and "No site takes messages from PMS/CLINIC" in got.reason


def test_a_failed_message_sent_again_after_the_fix_is_taken(site):
    take(siu())
    Hl7Sender.objects.create(sending_application="PMS", site=site)
    got, ack = take(siu())
    assert ack_code(ack) == "AA" and not got.duplicate
    assert Appointment.objects.filter(site=site).count() == 1
    stored = Hl7Message.objects.get()  # one row: the message, now applied, sent twice
    assert (stored.outcome, stored.resent) == (Outcome.APPLIED, 1)
    assert "before: No site takes messages" in stored.reason


def test_a_malformed_message_sent_again_is_kept_once_and_counted(clinic):
    raw = b"MSH|^~\\&|PMS|CLINIC|||20261125||SIU^S12|X1|P|9.9\r"
    assert ack_code(take(raw)[1]) == "AR" and ack_code(take(raw)[1]) == "AR"
    assert Hl7Message.objects.get().resent == 1


@pytest.mark.parametrize("charset, encoding", [("UNICODE UTF-8", "utf-8"), ("8859/1", "latin-1")])
def test_non_ascii_names_in_utf8_and_latin1(clinic, charset, encoding):
    raw = siu(charset=charset, given="Zoë", family="Muñoz")
    assert "ë".encode(encoding) in raw
    _, ack = take(raw)
    assert ack_code(ack) == "AA"
    assert Patient.objects.values_list("first_name", "last_name").get() == ("Zoë", "Muñoz")


def test_enhanced_mode_sends_a_commit_and_an_application_ack(clinic):
    got = receive(siu(extra_msh="|||AL|AL"), via="file")
    assert [ack_code(a) for a in got.acks] == ["CA", "AA"]
    errors_only = receive(siu(control="C9", extra_msh="|||AL|ER"), via="file")
    assert [ack_code(a) for a in errors_only.acks] == ["CA"]


def test_the_barts_feed_reads_phones_and_email_from_pid_13(barts):
    _, ack = take(vector("siu_s15_renalware_barts.hl7"))
    assert ack_code(ack) == "AA"
    points = {p.kind: (p.value, p.is_valid) for p in ContactPoint.objects.all()}
    # 0209999998 is a digit short of a London number: kept as sent, never dialled.
    assert points == {"mobile": ("+447898989898", True), "home": ("0209999998", False),
                      "email": ("testemail@test.co", True)}  # fmt: skip
    take(vector("siu_s26_renalware_barts.hl7"))
    appointment = Appointment.objects.get(site=barts, external_id="149549027")
    assert appointment.status == AppointmentStatus.NO_SHOW  # SCH-25 says Cancelled
    assert appointment.starts_at == dt.datetime(2024, 11, 13, 10, 0, tzinfo=dt.UTC)


def test_adt_makes_the_patient_and_their_next_of_kin(clinic):
    _, ack = take(vector("adt_a04_fhirconverter_01.hl7"))
    assert ack_code(ack) == "AA"
    patient = Patient.objects.get(external_id="PATID1234")
    assert (patient.first_name, patient.last_name) == ("ADAM", "EVERYMAN")
    assert patient.birth_date == dt.date(1988, 8, 18)
    contacts = list(patient.contacts.order_by("position").values_list(
        "position", "relationship", "first_name", "last_name"))  # fmt: skip
    assert contacts == [(1, "self", "ADAM", "EVERYMAN"), (2, "other", "ADAM", "Evan")]
    mobile = ContactPoint.objects.get(contact__position=1)
    assert (mobile.kind, mobile.raw_value, mobile.is_valid) == ("mobile", "78788788", False)
    take(vector("adt_a08_fhirconverter_01.hl7"))  # the same facts: nothing new
    assert patient.contacts.count() == 2


def test_rde_then_rds_make_the_prescription_and_its_fill(pharmacy_feed):
    take(vector("rde_o11_fhirconverter_01.hl7"))
    rx = Prescription.objects.get(rx_number="PN15")
    assert (rx.drug_name[:20], rx.ndc, rx.refills_authorized, rx.refills_remaining) == (
        "200 ML BAG : NICARDI", "0143963401", 12, 12)  # fmt: skip
    assert rx.written_on == dt.date(2019, 11, 4) and rx.site == pharmacy_feed
    take(vector("rds_o13_fhirconverter_01.hl7"))
    fill = Fill.objects.get(prescription__rx_number="PN12345")
    assert (fill.fill_number, fill.filled_on, fill.step) == (1, dt.date(2020, 12, 12), "ready")
    assert fill.ready_at == dt.datetime(2021, 8, 18, 9, 11, tzinfo=dt.UTC)


def test_every_vector_imports(clinic, barts, pharmacy_feed):
    from tests.interop.hl7.samples import FILES

    codes = [take(vector(name))[0].code for name in FILES]
    assert codes == ["AA"] * len(FILES)
    ghh = Appointment.objects.get(site=clinic, external_id="36996")
    assert ghh.status == AppointmentStatus.NO_SHOW  # S26 is the newest (MSH-7)
    assert Hl7Sender.objects.count() == 3


def test_a_later_message_changes_the_stored_number_in_place_and_a_repeat_writes_nothing(clinic):
    take(siu(control="N1"))
    patient = Patient.objects.get(external_id="P1")
    mobile = ContactPoint.objects.get(contact__patient=patient)
    assert mobile.value == "+12025550123"
    later = dt.datetime(2026, 11, 26, 9, 0, tzinfo=dt.UTC)
    _, ack = take(siu(control="N2", appt="A2", phone="2025550199", sent=later))
    assert ack_code(ack) == "AA"
    mobile.refresh_from_db()  # the same row, its number changed: no second mobile
    assert ContactPoint.objects.filter(contact__patient=patient).count() == 1
    assert (mobile.value, mobile.raw_value) == ("+12025550199", "2025550199")
    assert patient.contacts.count() == 1
    entries = AuditEvent.objects.count()
    again = dt.datetime(2026, 11, 26, 10, 0, tzinfo=dt.UTC)
    take(siu(control="N3", appt="A2", phone="2025550199", sent=again))  # the same facts
    assert AuditEvent.objects.count() == entries


def test_a_known_patient_is_read_with_their_contacts_and_numbers_in_one_query(clinic):
    patient = factories.make_patient(clinic, source="hl7:CLINIC", external_id="P1")
    me = factories.make_contact(patient, relationship="self", position=1)
    factories.add_point(me, ContactPointKind.MOBILE, "+12025550177")
    factories.add_point(me, ContactPointKind.EMAIL, "ada@example.org")
    factories.make_contact(patient, relationship="mother", position=2)  # no numbers
    feed = Feed(clinic, "hl7:CLINIC", "hl7:PMS/CLINIC")
    with CaptureQueriesContext(connection) as captured:
        found, contacts, points = find_patient(feed, "P1")
        # What saving them asks of their relations is loaded with them.
        owners = {p.contact.patient.site.pk for by_kind in points.values()
                  for p in by_kind.values()}  # fmt: skip
        assert {c.patient.pk for c in contacts} == {patient.pk}
    assert len(captured) == 1
    assert found.pk == patient.pk and owners == {clinic.pk}
    assert [c.position for c in contacts] == [1, 2]
    assert {kind: p.value for kind, p in points[me.pk].items()} == {
        "mobile": "+12025550177", "email": "ada@example.org",
    }  # fmt: skip
    assert find_patient(feed, "P2") == (None, [], {})


def test_the_sender_the_resend_check_and_the_stored_message_take_three_statements(clinic):
    take(siu(control="N1"))
    with CaptureQueriesContext(connection) as captured:
        got, ack = take(siu(control="N2", appt="A2"))
    assert ack_code(ack) == "AA" and not got.duplicate
    feed_statements = [q["sql"] for q in captured.captured_queries if "interop_hl7" in q["sql"]]
    # The senders with the id of this message's earlier row; the watermarks, locked;
    # the message's row, with the new watermark and the change's audit entries in the
    # same statement on PostgreSQL.
    if connection.vendor == "postgresql":
        assert len(feed_statements) == 3
        assert 'INSERT INTO "audit_auditevent"' in feed_statements[-1]
        audits = [q for q in captured.captured_queries if "audit_auditevent" in q["sql"]]
        assert len(audits) == 1
    else:
        assert len(feed_statements) == 4
    mark = Hl7Applied.objects.get(entity="appointment", external_id="A2")
    assert mark.sent_at == dt.datetime(2026, 11, 25, 14, 0, tzinfo=dt.UTC)
    stored = Hl7Message.objects.get(control_id="N2")
    assert bytes(stored.raw) == siu(control="N2", appt="A2") and bytes(stored.ack) == ack
