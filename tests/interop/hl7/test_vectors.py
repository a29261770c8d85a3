"""Every sample in ../shared/vectors/hl7, parsed and mapped with the default
mapping, asserted field by field (pure: no database)."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest

from carebell.core.vocab import AppointmentStatus, ContactPointKind, FillStep, Relationship
from carebell.interop.hl7.mapping import Mapping, Point, read
from carebell.interop.hl7.parse import parse_message
from tests.interop.hl7.samples import FILES, vector

LONDON = zoneinfo.ZoneInfo("Europe/London")
UTC = dt.UTC


def content(name: str, zone=LONDON):
    return read(parse_message(vector(name)), Mapping(), zone)


def test_all_fifteen_samples_are_there():
    assert len(FILES) == 15


@pytest.mark.parametrize("name", FILES)
def test_every_sample_parses_and_maps(name):
    got = content(name)
    assert got.patient.external_id and got.patient.last_name and got.patient.first_name


GHH = ("siu_s12_fhirconverter_01.hl7", "siu_s13_fhirconverter_01.hl7",
       "siu_s14_fhirconverter_01.hl7", "siu_s15_fhirconverter_01.hl7",
       "siu_s17_fhirconverter_01.hl7", "siu_s26_fhirconverter_01.hl7")  # fmt: skip


@pytest.mark.parametrize("name", GHH)
def test_the_v28_feed_reads_start_from_tq1_and_duration_from_the_ai_segments(name):
    appointment = content(name).appointment
    # TQ1-7 20210924093000+0215, not SCH-11's unrelated 2020 range.
    assert appointment.starts_at == dt.datetime(2021, 9, 24, 7, 15, tzinfo=UTC)
    assert appointment.duration_minutes == 50  # AIS-7/8 "50 min", not SCH-9/10 "60 s"
    assert appointment.external_id == "36996"  # SCH-2 filler id
    assert appointment.provider_code == "1210"
    assert appointment.provider_name == "Robert GE"
    assert appointment.appointment_type == "Biopsy of colon (procedure)"
    assert appointment.location_code == "055"


@pytest.mark.parametrize(
    "name, status, filler",
    [
        ("siu_s12_fhirconverter_01.hl7", AppointmentStatus.BOOKED, "Booked"),
        ("siu_s13_fhirconverter_01.hl7", AppointmentStatus.BOOKED, "Booked"),
        ("siu_s14_fhirconverter_01.hl7", AppointmentStatus.BOOKED, "Booked"),
        ("siu_s15_fhirconverter_01.hl7", AppointmentStatus.CANCELLED, "Cancelled"),
        ("siu_s17_fhirconverter_01.hl7", AppointmentStatus.DELETED, "Deleted"),
        ("siu_s26_fhirconverter_01.hl7", AppointmentStatus.NO_SHOW, "Noshow"),
        ("siu_s12_renalware_barts.hl7", AppointmentStatus.BOOKED, "Confirmed"),
        ("siu_s13_renalware_barts.hl7", AppointmentStatus.BOOKED, "Confirmed"),
        ("siu_s15_renalware_barts.hl7", AppointmentStatus.CANCELLED, "Cancelled"),
        # The Barts no-show is the S15 with MSH-9 changed: SCH-25 still says Cancelled.
        ("siu_s26_renalware_barts.hl7", AppointmentStatus.NO_SHOW, "Cancelled"),
    ],
)
def test_the_trigger_event_decides_the_status_not_sch_25(name, status, filler):
    appointment = content(name).appointment
    assert appointment.status == status
    assert appointment.filler_status == filler


def test_the_s14_moves_the_appointment_to_room02():
    assert content("siu_s12_fhirconverter_01.hl7").appointment.location_name == "Room01, GH Clinic"
    assert content("siu_s14_fhirconverter_01.hl7").appointment.location_name == "Room02, GH Clinic"


def test_the_multi_resource_booking_reads_tq1_and_the_first_resource_group():
    appointment = content("siu_s12_fhirconverter_02_multi_rgs.hl7").appointment
    assert appointment.starts_at == dt.datetime(2021, 8, 18, 9, 15, tzinfo=UTC)  # 11:30+0215
    assert appointment.duration_minutes == 60  # TQ1-8 − TQ1-7; SCH-9/10 says 70
    assert (appointment.location_code, appointment.location_name) == (
        "LabUnit101", "Lab Room 01, GHH Hospital"
    )  # fmt: skip
    assert (appointment.provider_code, appointment.provider_name) == ("400", "Tim PB")
    assert appointment.appointment_type == "CBC Panel-Blood by Automated Count"


def test_the_ghh_patient_is_read_from_pid():
    patient = content("siu_s12_fhirconverter_01.hl7").patient
    assert patient.external_id == "PATID1234"  # the MR of PID-3, not PID-2 or the SSN
    assert (patient.first_name, patient.last_name) == ("ADAM", "EVERYMAN")
    assert patient.birth_date == dt.date(1988, 8, 18)
    # PID-13 78788788^^CP: the first mobile; 12121212^^CP and PID-14's 7777^^CP and
    # 1111^^TDD are a second mobile and a text telephone, not kept.
    assert patient.points == (Point(ContactPointKind.MOBILE, "78788788"),)


def test_barts_times_without_an_offset_are_uk_local_time():
    summer = content("siu_s12_renalware_barts.hl7", zoneinfo.ZoneInfo("Europe/London"))
    assert summer.appointment.starts_at == dt.datetime(2024, 11, 6, 12, 0, tzinfo=UTC)
    new_york = content("siu_s12_renalware_barts.hl7", zoneinfo.ZoneInfo("America/New_York"))
    assert new_york.appointment.starts_at == dt.datetime(2024, 11, 6, 17, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "name, appt, start, minutes, mrn, given, mobile, home, email, location, clinic",
    [
        ("siu_s12_renalware_barts.hl7", "149549015", dt.datetime(2024, 11, 6, 12, 0), 30,
         "10769857", "RENALOP2", "0766655652", "02011110111", "testrenal@test.co",
         "RNJ Renal OPD", "Nephrology New"),
        ("siu_s13_renalware_barts.hl7", "149549023", dt.datetime(2024, 11, 6, 11, 30), 30,
         "10769861", "RENALEIGHT", "0789898989", "0209999999", "testrenal@co.in",
         "RNJ Renal OPD", "Nephrology New"),
        ("siu_s15_renalware_barts.hl7", "149549027", dt.datetime(2024, 11, 13, 10, 0), 60,
         "10769859", "RENALTESTFIVE", "07898989898", "0209999998", "testemail@test.co",
         "RNJ Renal SBH", "Nephrology Haemodialysis F/Up"),
        ("siu_s26_renalware_barts.hl7", "149549027", dt.datetime(2024, 11, 13, 10, 0), 60,
         "10769859", "RENALTESTFIVE", "07898989898", "0209999998", "testemail@test.co",
         "RNJ Renal SBH", "Nephrology Haemodialysis F/Up"),
    ],
)  # fmt: skip
def test_the_barts_feed(name, appt, start, minutes, mrn, given, mobile, home, email, location,
                        clinic):  # fmt: skip
    got = content(name)
    a, p = got.appointment, got.patient
    assert a.external_id == appt  # SCH-1: SCH-2 is empty
    assert a.starts_at == start.replace(tzinfo=UTC)  # SCH-11.4, UK time (GMT in November)
    assert a.duration_minutes == minutes  # SCH-11.5 − SCH-11.4, = SCH-9/10
    assert a.location_code == location
    assert a.appointment_type == clinic
    assert (p.external_id, p.first_name, p.last_name) == (mrn, given, "MOLLY")
    assert p.birth_date == dt.date(1987, 1, 1)
    # All in PID-13 with MOBILE / HOME / EMAIL as the use code; PID-14 is ""^BUSINESS.
    assert p.points == (
        Point(ContactPointKind.MOBILE, mobile),
        Point(ContactPointKind.HOME, home),
        Point(ContactPointKind.EMAIL, email),
    )


def test_the_barts_consultant_comes_from_pv1_7():
    a = content("siu_s12_renalware_barts.hl7").appointment
    assert (a.provider_code, a.provider_name) == ("Z3590850", "Dr John Smith")


@pytest.mark.parametrize("name", ["adt_a04_fhirconverter_01.hl7", "adt_a08_fhirconverter_01.hl7"])
def test_the_adt_patient_and_next_of_kin(name):
    got = content(name)
    assert got.demographics
    assert got.sent_at == dt.datetime(1989, 8, 18, 9, 11, tzinfo=UTC)  # 11:26+0215
    assert got.patient.points == (Point(ContactPointKind.MOBILE, "78788788"),)
    (kin,) = got.patient.next_of_kin
    assert (kin.first_name, kin.last_name) == ("ADAM", "Evan")
    assert kin.relationship == Relationship.OTHER  # NK1-3 EMC: emergency contact
    # NK1-5 78788788^WPN^Internet has no address in it; 121111^PRN^CP is the mobile;
    # NK1-6 6666666^^BP is a pager.
    assert kin.points == (Point(ContactPointKind.MOBILE, "121111"),)


def test_the_rde_prescription():
    got = content("rde_o11_fhirconverter_01.hl7")
    rx = got.prescription
    assert rx.rx_number == "PN15"  # RXE-15
    assert rx.drug_name == "200 ML BAG : NICARDIPINE IN NACL (ISO-OS) 40 MG/200 ML IV PGBK"
    assert rx.ndc == "0143963401"
    assert (rx.refills_authorized, rx.refills_remaining) == (12, None)  # RXE-12; RXE-16 empty
    assert rx.written_on == dt.date(2019, 11, 4)  # ORC-9
    assert rx.active
    assert got.fill is None


def test_the_rds_dispense_is_a_refill_ready_for_pickup():
    got = content("rds_o13_fhirconverter_01.hl7")
    assert (got.prescription.rx_number, got.prescription.drug_name) == ("PN12345", "Doxycycline")
    assert (got.prescription.refills_authorized, got.prescription.refills_remaining) == (1, 1)
    fill = got.fill
    assert fill.filled_on == dt.date(2020, 12, 12)  # RXD-3
    assert fill.quantity == "10"  # RXD-4
    assert fill.dispense_type == "R"  # RXD-33 R^Refill - Full Fill
    assert fill.fill_number == 1
    assert fill.step == FillStep.READY


def test_a_sender_mapping_can_move_the_start_time():
    mapping = Mapping.from_dict({"start": ["SCH-11.4"], "end": ["SCH-11.5"]})
    got = read(parse_message(vector("siu_s12_fhirconverter_01.hl7")), mapping, LONDON)
    # This sender's SCH-11 is the unrelated 2020 range: a wrong mapping reads it.
    assert got.appointment.starts_at == dt.datetime(2020, 10, 1, 9, 11, tzinfo=UTC)


def test_a_mapping_with_an_unknown_key_or_path_is_refused():
    with pytest.raises(ValueError, match="unknown mapping key"):
        Mapping.from_dict({"begin": ["TQ1-7"]})
    with pytest.raises(ValueError, match="not a field path"):
        Mapping.from_dict({"start": ["TQ1.7"]})
