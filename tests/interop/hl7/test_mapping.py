"""Phones and emails in the spellings real feeds use, and the other ADT events."""

from __future__ import annotations

import datetime as dt

import pytest

from carebell.core.vocab import ContactPointKind as K
from carebell.interop.hl7.mapping import Mapping, Point, read, read_xtn, supported
from carebell.interop.hl7.parse import Hl7Error, parse_message, parse_timestamp, unescape
from tests.interop.hl7.samples import vector


def xtn(text: str) -> list:
    return [c.split("&") for c in text.split("^")]


@pytest.mark.parametrize(
    "text, point",
    [
        ("(608)271-9000^^PH", Point(K.HOME, "(608)271-9000")),  # v2.3: number in XTN-1
        ("^PRN^PH^^1^608^2719000", Point(K.HOME, "+1 6082719000")),  # v2.5: country/area/local
        ("^PRN^CP^^^202^5550123", Point(K.MOBILE, "2025550123")),
        ("^NET^Internet^ada@example.org", Point(K.EMAIL, "ada@example.org")),
        ("^^Internet^fred@nnnn.com^111^813^8853999^1234", Point(K.EMAIL, "fred@nnnn.com")),
        ("0766655652^MOBILE", Point(K.MOBILE, "0766655652")),  # Barts: use code in XTN-2
        ("testrenal@test.co^EMAIL", Point(K.EMAIL, "testrenal@test.co")),
        ("02011110111^HOME", Point(K.HOME, "02011110111")),
        ("78788788^^CP^5555^^^1111", Point(K.MOBILE, "78788788")),
        ("121111^PRN^CP", Point(K.MOBILE, "121111")),  # residence, cellular: a mobile
        ("2025550123", Point(K.HOME, "2025550123")),  # no codes at all: a home phone
        ('""^BUSINESS', None),  # an explicit null
        ("1111^^TDD", None),
        ("898989898^^FX", None),
        ("6666666^^BP", None),
        ("89898989^WPN^Internet", None),  # an email code with no address
        ("(555)555-5555^BPN^PH", None),  # a work number
    ],
)
def test_real_world_spellings_of_phones_and_emails(text, point):
    assert read_xtn(xtn(text), Mapping()) == point


@pytest.mark.parametrize("event", ["A04", "A08", "A28", "A31"])
def test_every_demographics_event_is_taken(event):
    adt = vector("adt_a04_fhirconverter_01.hl7")
    raw = adt.replace(b"ADT^A04^ADT_A04", f"ADT^{event}".encode())
    got = read(parse_message(raw), Mapping(), dt.UTC)
    assert got.demographics and got.patient.external_id == "PATID1234"


@pytest.mark.parametrize("kind", [b"ADT^A01", b"SIU^S16", b"ORM^O01", b"ORU^R01"])
def test_other_message_types_are_refused_with_ar(kind):
    raw = vector("adt_a04_fhirconverter_01.hl7").replace(b"ADT^A04^ADT_A04", kind)
    with pytest.raises(Hl7Error) as caught:
        supported(parse_message(raw))
    assert caught.value.ack == "AR" and caught.value.code in ("200", "201")


def test_escapes_are_undone():
    assert unescape(r"A\T\E \F\ \S\ \R\ \E\ \X41\ x\.br\y \H\bold\N\ ", "|", "^~\\&") == (
        "A&E | ^ ~ \\ A x\ny bold "
    )


@pytest.mark.parametrize(
    "text, utc",
    [
        ("20210924093000+0215", dt.datetime(2021, 9, 24, 7, 15, tzinfo=dt.UTC)),
        ("202109240930-0500", dt.datetime(2021, 9, 24, 14, 30, tzinfo=dt.UTC)),
        ("20210924093000.1234+0000", dt.datetime(2021, 9, 24, 9, 30, tzinfo=dt.UTC)),
    ],
)
def test_timestamps_with_offsets(text, utc):
    assert parse_timestamp(text).aware(dt.UTC) == utc


@pytest.mark.parametrize("text", ["", "2021", "20211324", "20210924093000+9900", "abc", "2021092"])
def test_timestamps_that_are_not(text):
    stamp = parse_timestamp(text)
    assert stamp is None or not stamp.has_time
