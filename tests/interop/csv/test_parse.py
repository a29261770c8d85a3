"""Reading a whole file: what makes it unreadable gets one sentence saying what to
do; a row's own problems come back with the row. Pure: no database."""

from __future__ import annotations

import codecs
import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carebell.interop.csv.columns import COLUMNS, FileKind
from carebell.interop.csv.parse import FileProblem, read_file
from carebell.interop.csv.rows import Problem
from tests.interop.csv.test_rows import CONTEXT

HEADER = b"appointment_id,patient_id,starts_at\r\n"


def read(data: bytes, kind=FileKind.APPOINTMENTS):
    return list(read_file(io.BytesIO(data), kind, CONTEXT))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "The file is empty"),
        (b"\r\n\r\n", "The file is empty"),
        (b"PK\x03\x04\x14\x00\x06\x00", "This is not a CSV text file"),
        (b"%PDF-1.7\n", "This is not a CSV text file"),
        (b"appointment_id\x00,patient_id", "This is not a CSV text file"),
        (codecs.BOM_UTF16_LE + "appointment_id".encode("utf-16-le"), "The file is UTF-16 text"),
        (b"appointment_id;patient_id;starts_at\n", "separated by semicolons"),
        (b"appointment_id\tpatient_id\tstarts_at\n", "separated by tabs"),
        (b"appointment_id,patient_id\n", "lacks the required column starts_at"),
        (b"appointment_id,patient_id,starts_at,colour\n", "Column 'colour' is not a column"),
        (b"appointment_id,patient_id,starts_at,starts_at\n", "'starts_at' appears twice"),
        (HEADER + "A1,P1,2026-12-03 09:30,Jos\u00e9\n".encode("latin-1"), "not UTF-8 text"),
        (HEADER + b'A1,"P1,2026-12-03 09:30\n', "is not valid CSV"),
    ],
)
def test_an_unreadable_file_is_refused_with_what_to_do(data, message):
    with pytest.raises(FileProblem, match=message):
        read(data)


def test_a_file_not_utf8_after_its_first_kilobytes_names_the_row():
    rows = b"".join(b"A%d,P1,2026-12-03 09:30\r\n" % n for n in range(2, 400))
    with pytest.raises(FileProblem, match=r"not UTF-8 text \(near row \d+\)"):
        read(HEADER + rows + "A0,Ren\u00e9e,2026-12-03 09:30\n".encode("latin-1"))


def test_the_header_is_read_loosely_and_a_utf8_bom_is_skipped():
    data = (
        codecs.BOM_UTF8 + b" Appointment_ID , PATIENT_ID,starts_at\nA1,P\xc3\xa9,2026-12-03 09:30\n"
    )
    [parsed] = read(data)
    assert parsed.data.patient_id == "P\u00e9" and parsed.row == 2


def test_rows_are_counted_as_a_spreadsheet_counts_them_blank_lines_skipped():
    data = HEADER + b'A1,P1,2026-12-03 09:30\r\n\r\n,,\r\nA2,"P\nQ",2026-12-03 09:30\r\nA3,P3\r\n'
    parsed = read(data)
    assert [p.row for p in parsed] == [2, 5, 6]
    assert parsed[1].data.patient_id == "P\nQ"
    assert parsed[2].problems == [
        Problem(6, "", "", "the row has 2 values but the header names 3 columns")
    ]


def test_a_cell_too_long_is_a_problem_of_its_row():
    [parsed] = read(HEADER + b"A1,P1," + b"x" * 10_001 + b"\n")
    assert parsed.problems[0].column == "starts_at"
    assert parsed.problems[0].reason == "starts_at is longer than 10000 characters"


def test_the_reader_says_how_far_it_has_read():
    data = HEADER + b"".join(b"A%d,P1,2026-12-03 09:30\r\n" % n for n in range(5000))
    reader = read_file(io.BytesIO(data), FileKind.APPOINTMENTS, CONTEXT)
    first = next(iter(reader))
    assert first.row == 2 and 0 < reader.consumed < len(data)
    assert sum(1 for _ in reader) == 4999 and reader.consumed == len(data)


@settings(max_examples=1_000, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(st.sampled_from(list(FileKind)), st.binary(max_size=400))
def test_the_file_reader_never_crashes_on_any_bytes(kind, tail):
    header = ",".join(c.name for c in COLUMNS[kind] if c.required)
    try:
        for parsed in read_file(io.BytesIO(header.encode() + b"\n" + tail), kind, CONTEXT):
            assert (parsed.data is None) == bool(parsed.problems)
    except FileProblem as problem:
        assert str(problem)
