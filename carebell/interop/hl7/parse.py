"""HL7 v2 bytes to plain data: pure, no Django, no I/O, safe on any input.

`parse_message(raw)` decodes a message in the charset its MSH-18 names (UTF-8 and
Latin-1 at least; a message that names none is read as UTF-8, else Windows-1252,
which is what unlabelled feeds mostly send), accepts CR, LF or CRLF between
segments, checks the MSH header and splits it with python-hl7 into a `Message`:
segments of fields of repetitions of components of subcomponents, escapes undone.
Anything it cannot read raises `Hl7Error` with the ACK code and the HL7 error code
(table 0357) that say why — never another exception, so the listener can always
answer.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

import hl7

#: HL7 versions carebell reads. 2.1–2.2 lack the segments and fields the mappings use.
SUPPORTED_VERSIONS = ("2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6", "2.7", "2.7.1", "2.8")

#: MSH-18 spellings seen in real feeds → Python codec.
CHARSETS = {
    "": None,
    "ASCII": "ascii",
    "UNICODE UTF-8": "utf-8",
    "UTF-8": "utf-8",
    "UTF8": "utf-8",
    "UNICODE": "utf-8",
    "8859/1": "latin-1",
    "ISO-8859-1": "latin-1",
    "ISO8859-1": "latin-1",
    "ISO_IR 100": "latin-1",
    "LATIN1": "latin-1",
    "LATIN-1": "latin-1",
    "8859/15": "iso8859-15",
    "ISO-8859-15": "iso8859-15",
    "CP1252": "cp1252",
    "WINDOWS-1252": "cp1252",
}

_SEGMENT_ID = re.compile(r"^[A-Z][A-Z0-9]{2}$")
_LINE_BREAKS = re.compile(rb"\r\n|\n\r|\n|\r")


class Hl7Error(Exception):
    """The message cannot be processed. `ack` is "AR" (not processable: not HL7, a
    header carebell cannot read, an unsupported type) or "AE" (an application error:
    a missing or wrong field). `code` is the HL7 table 0357 error code, `where` the
    field ("PID-3"), when known."""

    def __init__(self, text: str, *, ack: str = "AE", code: str = "207", where: str = ""):
        super().__init__(text)
        self.text, self.ack, self.code, self.where = text, ack, code, where


@dataclass(frozen=True, slots=True)
class Header:
    """The MSH fields carebell routes, deduplicates and acknowledges by."""

    field_separator: str
    encoding: str
    sending_application: str
    sending_facility: str
    receiving_application: str
    receiving_facility: str
    sent_at_text: str
    message_code: str
    trigger: str
    structure: str
    control_id: str
    processing_id: str
    version: str
    accept_ack_type: str
    application_ack_type: str
    charset: str

    @property
    def message_type(self) -> str:
        return f"{self.message_code}^{self.trigger}" if self.trigger else self.message_code

    @property
    def sender(self) -> str:
        return f"{self.sending_application}/{self.sending_facility}"


class Segment:
    """One segment's fields, split into repetitions of components of subcomponents
    (escapes undone) when first read: a message is read for a dozen fields, so its
    hundreds of others are never split. `segment[n]` is field n (MSH-n for MSH)."""

    __slots__ = ("_encoding", "_sep", "_split", "_texts")

    def __init__(self, texts: list[str], sep: str, encoding: str) -> None:
        self._texts, self._split, self._sep, self._encoding = texts, {}, sep, encoding

    def __len__(self) -> int:
        return len(self._texts)

    def __getitem__(self, n: int) -> list[list[list[str]]]:
        if n < 0 or n >= len(self._texts):
            raise IndexError(n)
        got = self._split.get(n)
        if got is None:
            got = self._split[n] = _split(self._texts[n], self._sep, self._encoding)
        return got


@dataclass(slots=True)
class Message:
    """A decoded message: `segments` are (id, Segment)."""

    header: Header
    segments: list[tuple[str, Segment]] = field(default_factory=list)

    def all(self, segment_id: str) -> list[list]:
        return [fields for sid, fields in self.segments if sid == segment_id]

    def first(self, segment_id: str) -> list | None:
        for sid, fields in self.segments:
            if sid == segment_id:
                return fields
        return None

    def has(self, segment_id: str) -> bool:
        return self.first(segment_id) is not None


def value(fields: list | None, n: int, rep: int = 0, comp: int = 1, sub: int = 1) -> str:
    """Field `n`, repetition `rep` (from 0), component `comp` and subcomponent `sub`
    (from 1) of a segment's fields; "" when absent or an explicit null (`""`)."""
    try:
        text = fields[n][rep][comp - 1][sub - 1] if fields is not None else ""
    except IndexError:
        return ""
    return "" if text == '""' else text.strip()


def repetitions(fields: list | None, n: int) -> list[list[list[str]]]:
    if fields is None or n >= len(fields):
        return []
    return fields[n]


def component(rep: list[list[str]], comp: int, sub: int = 1) -> str:
    try:
        text = rep[comp - 1][sub - 1]
    except IndexError:
        return ""
    return "" if text == '""' else text.strip()


# Reading bytes ----------------------------------------------------------------------


def split_segments(raw: bytes) -> list[bytes]:
    """The non-empty segments of `raw`, whichever of CR, LF or CRLF ends them."""
    return [s for s in _LINE_BREAKS.split(raw) if s.strip()]


def read_header(first: bytes) -> tuple[str, str, list[str]]:
    """The field separator, encoding characters and raw fields of an MSH segment
    (bytes read as Latin-1, which maps every byte, so the header can be read before
    the charset is known)."""
    text = first.decode("latin-1")
    if not text.startswith("MSH") or len(text) < 8:
        raise Hl7Error("The message does not start with an MSH segment.", ack="AR", code="100")
    sep = text[3]
    if sep.isalnum() or sep in " \t":
        raise Hl7Error(f"MSH-1 field separator {sep!r} is not usable.", ack="AR", code="102")
    rest = text[4:]
    encoding = rest.split(sep, 1)[0]
    usable = 4 <= len(encoding) <= 5 and len(set(encoding + sep)) == len(encoding) + 1
    if not usable or any(c.isalnum() or c.isspace() for c in encoding):
        raise Hl7Error(
            f"MSH-2 encoding characters {encoding!r} are not four distinct symbols.",
            ack="AR",
            code="102",
            where="MSH-2",
        )
    return sep, encoding, [sep, encoding, *rest.split(sep)[1:]]


def codec_for(charset: str) -> str | None:
    """The Python codec for an MSH-18 value (its first repetition), or raise."""
    name = charset.strip().upper()
    if name not in CHARSETS:
        raise Hl7Error(
            f"MSH-18 character set {charset[:40]!r} is not supported (UTF-8 or 8859/1).",
            ack="AR",
            code="102",
            where="MSH-18",
        )
    return CHARSETS[name]


def decode(segments: list[bytes], charset: str) -> list[str]:
    codec = codec_for(charset)
    data = b"\r".join(segments)
    if codec is None:  # unlabelled: UTF-8 when it is, else the Windows superset of Latin-1
        try:
            return data.decode("utf-8").split("\r")
        except UnicodeDecodeError:
            return data.decode("cp1252", errors="replace").split("\r")
    try:
        return data.decode(codec).split("\r")
    except UnicodeDecodeError as error:
        raise Hl7Error(
            f"The message is not valid {charset} as MSH-18 says (byte {error.start}).",
            ack="AR",
            code="102",
            where="MSH-18",
        ) from None


def parse_message(raw: bytes) -> Message:
    """`raw` (one message, without MLLP framing) as a `Message`, or raise Hl7Error."""
    segments = split_segments(raw.lstrip(b"\x0b").rstrip(b"\x1c\r\n"))
    if not segments:
        raise Hl7Error("The message is empty.", ack="AR", code="100")
    sep, encoding, msh = read_header(segments[0])
    charset = msh[17].split(encoding[1])[0] if len(msh) > 17 else ""
    lines = decode(segments, charset)
    if "\x00" in "".join(lines):
        raise Hl7Error("The message holds NUL bytes: it is not HL7 text.", ack="AR", code="102")
    for line in lines[1:]:
        if not _SEGMENT_ID.match(line[:3]) or (len(line) > 3 and line[3] != sep):
            raise Hl7Error(
                f"A segment does not start with a segment id: {line[:12]!r}.",
                ack="AR",
                code="100",
            )
    try:
        # python-hl7 reads the header (separators, MSH fields); the other segments
        # are split lazily, field by field, when the mapping reads them.
        parsed = hl7.parse(lines[0])
        msh = [str(f) for f in parsed.segment("MSH")]
    except Exception as error:  # python-hl7 raises bare IndexErrors on truncated headers
        raise Hl7Error(f"The message cannot be parsed: {error}.", ack="AR", code="100") from None
    message = Message(header=_header(sep, encoding, msh))
    message.segments = [("MSH", Segment(["MSH", sep, encoding, *msh[3:]], sep, encoding))]
    message.segments += [(line[:3], Segment(line.split(sep), sep, encoding)) for line in lines[1:]]
    return message


def _header(sep: str, encoding: str, msh: list[str]) -> Header:
    def field_(n: int, comp: int = 1) -> str:
        if n >= len(msh):
            return ""
        text = msh[n].split(encoding[1])[0].split(encoding[0])
        return unescape(text[comp - 1], sep, encoding).strip() if comp <= len(text) else ""

    header = Header(
        field_separator=sep,
        encoding=encoding,
        sending_application=field_(3),
        sending_facility=field_(4),
        receiving_application=field_(5),
        receiving_facility=field_(6),
        sent_at_text=field_(7),
        message_code=field_(9),
        trigger=field_(9, 2),
        structure=field_(9, 3),
        control_id=field_(10),
        processing_id=field_(11),
        version=field_(12),
        accept_ack_type=field_(15).upper(),
        application_ack_type=field_(16).upper(),
        charset=field_(18),
    )
    if not header.control_id:
        raise Hl7Error("MSH-10 message control id is empty.", code="101", where="MSH-10")
    if not header.message_code:
        raise Hl7Error("MSH-9 message type is empty.", code="101", where="MSH-9")
    if header.version not in SUPPORTED_VERSIONS:
        raise Hl7Error(
            f"HL7 version {header.version[:12]!r} is not supported (2.3 to 2.8).",
            ack="AR",
            code="203",
            where="MSH-12",
        )
    return header


def _split(text: str, sep: str, encoding: str) -> list[list[list[str]]]:
    comp, rep, _esc, sub = encoding[0], encoding[1], encoding[2], encoding[3]
    return [
        [[unescape(s, sep, encoding) for s in c.split(sub)] for c in r.split(comp)]
        for r in text.split(rep)
    ]


def unescape(text: str, sep: str, encoding: str) -> str:
    """HL7 escape sequences undone: \\F\\ \\S\\ \\T\\ \\R\\ \\E\\, \\Xhh\\ (bytes as
    Latin-1), \\.br\\ as a line break; highlighting (\\H\\ \\N\\) dropped."""
    esc = encoding[2]
    if esc not in text:
        return text
    table = {"F": sep, "S": encoding[0], "R": encoding[1], "E": esc, "T": encoding[3]}
    out, i = [], 0
    while i < len(text):
        ch = text[i]
        end = text.find(esc, i + 1) if ch == esc else -1
        if end == -1:
            out.append(ch)
            i += 1
            continue
        code = text[i + 1 : end]
        if code in table:
            out.append(table[code])
        elif code == ".br":
            out.append("\n")
        elif code[:1] == "X" and len(code) > 1 and len(code) % 2 == 1:
            try:
                out.append(bytes.fromhex(code[1:]).decode("latin-1"))
            except ValueError:
                out.append(text[i : end + 1])
        elif code not in ("H", "N"):
            out.append(text[i : end + 1])
        i = end + 1
    return "".join(out)


# Values -----------------------------------------------------------------------------

_DTM = re.compile(r"^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.\d{1,4})?([+-]\d{4})?$")


@dataclass(frozen=True, slots=True)
class Timestamp:
    """An HL7 DTM: the wall time written and its UTC offset, when the sender gave one."""

    local: dt.datetime
    offset: dt.timedelta | None
    has_time: bool

    def aware(self, zone: dt.tzinfo) -> dt.datetime:
        """The instant in UTC: by its offset, else as wall time in `zone`."""
        if self.offset is not None:
            return self.local.replace(tzinfo=dt.timezone(self.offset)).astimezone(dt.UTC)
        return self.local.replace(tzinfo=zone).astimezone(dt.UTC)


def parse_timestamp(text: str) -> Timestamp | None:
    """An HL7 DTM/TS ("20210924093000+0215", "20241106113000", "19870101") or None."""
    match = _DTM.match(text.strip())
    if not match:
        return None
    year, month, day, hour, minute, second, offset = match.groups()
    try:
        local = dt.datetime(
            int(year), int(month or 1), int(day or 1), int(hour or 0), int(minute or 0),
            int(second or 0),
        )  # fmt: skip
        delta = None
        if offset:
            sign = -1 if offset[0] == "-" else 1
            hours, minutes = int(offset[1:3]), int(offset[3:5])
            if hours > 14 or minutes > 59:
                return None
            delta = sign * dt.timedelta(hours=hours, minutes=minutes)
    except ValueError:
        return None
    return Timestamp(local, delta, has_time=hour is not None)
