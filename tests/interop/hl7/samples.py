"""The shared HL7 vectors, read as they are, and messages built for the tests."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

VECTORS = Path(__file__).resolve().parents[4] / "shared" / "vectors" / "hl7"
FILES = sorted(p.name for p in VECTORS.glob("*.hl7"))


def vector(name: str) -> bytes:
    return (VECTORS / name).read_bytes()


def siu(trigger="S12", *, control="C1", appt="A1", patient="P1", start=None, sent=None,
        given="Ada", family="Lovelace", phone="2025550123", charset="", extra_msh=""):  # fmt: skip
    """A small v2.5 SIU: start in TQ1-7 (UTC offset), 30 minutes in AIS."""
    start = start or dt.datetime(2026, 11, 28, 15, 0, tzinfo=dt.UTC)
    sent = sent or dt.datetime(2026, 11, 25, 14, 0, tzinfo=dt.UTC)
    msh18 = f"|||||{charset}" if charset else ""
    lines = [
        f"MSH|^~\\&|PMS|CLINIC|CAREBELL|CB|{sent:%Y%m%d%H%M%S}+0000||SIU^{trigger}^SIU_{trigger}"
        f"|{control}|P|2.5{extra_msh or msh18}",
        f"SCH|{appt}|{appt}||||Checkup|Checkup||||||||||||||||||Booked",
        f"TQ1|||||||{start:%Y%m%d%H%M%S}+0000",
        f"PID|1||{patient}^^^PMS^MR||{family}^{given}||20150601|F|||||{phone}^PRN^CP",
        "RGS|1",
        f"AIS|1||CHK^Checkup|{start:%Y%m%d%H%M%S}+0000|||30|min",
        "AIL|1||R1^Room 1^^Main Clinic",
        "AIP|1||D1^Shaw^Rose^^^Dr",
    ]
    return "\r".join(lines).encode("utf-8" if charset != "8859/1" else "latin-1") + b"\r"
