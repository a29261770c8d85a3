"""Acknowledgements (pure): what carebell answers each message, built from its
header so a sender's engine can match it (MSA-2 echoes MSH-10).

Original mode (MSH-15 and MSH-16 empty): one ACK, AA / AE / AR. Enhanced mode: a
commit ACK (CA / CE / CR) when MSH-15 asks for one, and an application ACK (AA / AE /
AR) when MSH-16 does — "AL" always, "ER" only on an error, "SU" only on success,
"NE" never. Both are sent only after the message and its change are committed.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
from dataclasses import dataclass

from carebell.interop.hl7.parse import Header

_DEFAULT = Header("|", "^~\\&", "", "", "", "", "", "", "", "", "", "P", "2.5", "", "", "")
_sequence = itertools.count(1)

_ERROR_NAMES = {
    "100": "Segment sequence error", "101": "Required field missing", "102": "Data type error",
    "103": "Table value not found", "200": "Unsupported message type",
    "201": "Unsupported event code", "202": "Unsupported processing id",
    "203": "Unsupported version id", "204": "Unknown key identifier",
    "205": "Duplicate key identifier", "206": "Application record locked",
    "207": "Application internal error",
}  # fmt: skip
_COMMIT = {"AA": "CA", "AE": "CE", "AR": "CR"}


@dataclass(frozen=True, slots=True)
class Result:
    """What became of a message: `code` AA / AE / AR, with the reason for AE and AR."""

    code: str
    text: str = ""
    error_code: str = ""
    where: str = ""


def acks_for(header: Header | None, result: Result, now: dt.datetime) -> list[bytes]:
    """The ACK messages (segments joined by CR, unframed) to send for `result`."""
    header = header or _DEFAULT
    accept, application = header.accept_ack_type, header.application_ack_type
    if not accept and not application:
        return [build_ack(header, result.code, result, now)]
    out = []
    if _wanted(accept, result.code):
        out.append(build_ack(header, _COMMIT[result.code], result, now))
    if _wanted(application, result.code):
        out.append(build_ack(header, result.code, result, now))
    return out


def _wanted(kind: str, code: str) -> bool:
    return kind == "AL" or (kind == "ER" and code != "AA") or (kind == "SU" and code == "AA")


def build_ack(header: Header, code: str, result: Result, now: dt.datetime) -> bytes:
    sep, enc = header.field_separator, header.encoding
    comp = enc[0]

    def clean(text: str) -> str:  # no separator of ours may appear in a text we echo
        for ch in sep + enc:
            text = text.replace(ch, " ")
        return text.replace("\r", " ").replace("\n", " ")[:200]

    stamp = now.astimezone(dt.UTC).strftime("%Y%m%d%H%M%S") + "+0000"
    control = f"CB{os.getpid() % 100000:05d}{next(_sequence):010d}"
    version = header.version or "2.5"
    trigger = f"{comp}{clean(header.trigger)}" if header.trigger else ""
    msh = sep.join([
        "MSH", enc, clean(header.receiving_application) or "carebell",
        clean(header.receiving_facility), clean(header.sending_application),
        clean(header.sending_facility), stamp, "", f"ACK{trigger}{comp}ACK", control,
        clean(header.processing_id) or "P", clean(version), "", "", "", "", "",
        clean(header.charset),
    ]).rstrip(sep)  # fmt: skip
    segments = [msh, sep.join(["MSA", code, clean(header.control_id), clean(result.text)])]
    if code not in ("AA", "CA"):
        segments.append(_err(sep, comp, result, version, clean))
    return "\r".join(segments).encode(_codec(header.charset), errors="replace") + b"\r"


def _err(sep: str, comp: str, result: Result, version: str, clean) -> str:
    error = result.error_code or "207"
    where = clean(result.where)
    if version.startswith(("2.3", "2.4")):
        # Before 2.5, ERR-1 holds the location and the code (ELD).
        location = comp.join(where.split("-", 1)) if where else ""
        name = _ERROR_NAMES.get(error, "")
        return sep.join(["ERR", f"{location}{comp}{comp}{error}&{name}&HL70357"])
    segment, _, field = where.partition("-")
    location = comp.join([segment, "1", field.split(".")[0]]) if where else ""
    code = comp.join([error, _ERROR_NAMES.get(error, ""), "HL70357"])
    return sep.join(["ERR", "", location, code, "E", "", "", "", clean(result.text)])


def _codec(charset: str) -> str:
    return "latin-1" if charset.strip().upper() in ("8859/1", "ISO-8859-1", "LATIN1") else "utf-8"
