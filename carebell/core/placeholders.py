"""Hash variables (`#PATIENTNAME#`): what a template may say, checked when it is saved
and filled in by plain substitution when a message is sent.

Rendering is deliberately dumb: a template is cut once into literal text and
placeholder names, and a message is the literals joined with the values. There are
no expressions, filters, attribute lookups or code, so a template written by staff can
reveal nothing but the values the engine hands it, and a value that itself contains
`#CODE#` (a patient named "#CODE#", say) is printed as it is, never expanded again.

Validation is strict (an unknown or disallowed placeholder is an error when the
template is saved); rendering is forgiving (a missing value becomes a defined
fallback plus a warning), because a reminder must never fail at send time.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, tzinfo
from enum import StrEnum
from functools import lru_cache
from typing import NamedTuple

from carebell.core import speech
from carebell.core.vocab import Channel, Kind

# --- Problems ------------------------------------------------------------------------


class Severity(StrEnum):
    ERROR = "error"  # refused: the template is not saved
    WARNING = "warning"  # shown: the template is saved, the message is sent


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a template or a rendering, precise enough to point at.

    `position` is the 0-based offset in `field`'s text; `line` and `column` are
    1-based for people. `allowed` lists what would have been accepted.
    """

    code: str
    message: str
    severity: Severity = Severity.ERROR
    field: str = "body"
    token: str = ""
    position: int | None = None
    line: int | None = None
    column: int | None = None
    allowed: tuple[str, ...] = ()

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def as_dict(self) -> dict:
        return {
            "code": self.code,
            "message": self.message,
            "severity": str(self.severity),
            "field": self.field,
            "token": self.token,
            "position": self.position,
            "line": self.line,
            "column": self.column,
            "allowed": list(self.allowed),
        }


# --- The catalogue -------------------------------------------------------------------


class ValueType(StrEnum):
    TEXT = "text"
    DATE = "date"
    TIME = "time"
    PHONE = "phone"
    LINK = "link"
    NUMBER = "number"
    CODE = "code"
    #: (first name, start) pairs, one per appointment: siblings in one message.
    VISITS = "visits"


class Sensitivity(StrEnum):
    """Health information a placeholder may reveal to whoever sees the phone."""

    NONE = ""
    DRUG = "drug"
    DIAGNOSIS = "diagnosis"


@dataclass(frozen=True, slots=True)
class Placeholder:
    name: str
    type: ValueType
    description: str
    fallback_en: str
    fallback_es: str
    sensitivity: Sensitivity = Sensitivity.NONE

    @property
    def token(self) -> str:
        return f"#{self.name}#"

    def fallback(self, language: str) -> str:
        return self.fallback_es if language == "es" else self.fallback_en


def _p(name, type_, description, en, es, sensitivity=Sensitivity.NONE) -> Placeholder:
    return Placeholder(name, ValueType(type_), description, en, es, Sensitivity(sensitivity))


# Fallbacks are chosen to read sensibly where the default templates use them
# ("call #SITEPHONE#" → "call our office"). Links fall back to nothing: a wrong link
# is worse than none, and the text around a link always names the phone as well.
CATALOGUE: dict[str, Placeholder] = {
    p.name: p
    for p in (
        _p("PATIENTNAME", "text", "patient's full name", "the patient", "el paciente"),
        _p("PATIENTFIRSTNAME", "text", "patient's first name", "the patient", "el paciente"),
        _p("SITENAME", "text", "practice or pharmacy name", "your care team", "su equipo de salud"),
        _p("SITEPHONE", "phone", "site's phone number for patients", "our office", "la oficina"),
        _p("SITEADDRESS", "text", "site's street address", "our office", "nuestra oficina"),
        _p("APPTDATE", "date", "appointment date", "the scheduled day", "el dia programado"),
        _p("APPTTIME", "time", "appointment time", "the scheduled time", "la hora programada"),
        _p("PREVAPPTDATE", "date", "date before a move", "the original day", "el dia original"),
        _p("PREVAPPTTIME", "time", "time before a move", "the original time", "la hora original"),
        _p("APPTLIST", "visits", "each child with their time", "your appointments", "sus citas"),
        _p("PROVIDER", "text", "provider's name", "your provider", "su proveedor"),
        _p("LOCATION", "text", "where the appointment is", "our office", "nuestra oficina"),
        _p("APPTREASON", "text", "reason for the visit", "your visit", "su visita", "diagnosis"),
        _p("CANCELHOURS", "number", "cancellation deadline in hours", "a few", "unas"),
        _p("CONFIRMLINK", "link", "link to confirm or cancel", "", ""),
        _p("DUEDATE", "date", "date a visit or refill is due", "soon", "pronto"),
        _p("READYDATE", "date", "date the order became ready", "recently", "hace unos dias"),
        _p("RXCOUNT", "number", "number of prescriptions", "your", "sus"),
        _p("RXNUMBER", "text", "prescription number(s)", "on file", "en archivo"),
        _p("DRUGNAME", "text", "drug name", "your medication", "su medicamento", "drug"),
        _p("PRESCRIBER", "text", "prescriber's name", "your prescriber", "su medico"),
        _p("REVIEWLINK", "link", "link to the site's review page", "", ""),
        _p("UNSUBSCRIBELINK", "link", "one-click email unsubscribe link", "", ""),
        _p("CODE", "code", "one-time verification code", "", ""),
        _p("CODEMINUTES", "number", "minutes until the code expires", "10", "10"),
    )
}  # fmt: skip

_PERSON = ("PATIENTNAME", "PATIENTFIRSTNAME")
_SITE = ("SITENAME", "SITEPHONE", "SITEADDRESS")
_BASE = (*_PERSON, *_SITE, "UNSUBSCRIBELINK")
_APPT = (*_BASE, "APPTDATE", "APPTTIME", "PROVIDER", "LOCATION", "APPTREASON")
_RX = (*_BASE, "RXCOUNT", "RXNUMBER", "DRUGNAME")
_REFILL = (*_RX, "DUEDATE")

#: The placeholders each kind may use. Transactional replies carry less: a keyword
#: reply goes to a number that may belong to several patients, so it names none.
ALLOWED: dict[Kind, frozenset[str]] = {
    kind: frozenset(names)
    for kind, names in {
        Kind.APPT_CONFIRMATION: (*_APPT, "CONFIRMLINK", "APPTLIST"),
        Kind.APPT_REMINDER: (*_APPT, "CONFIRMLINK", "APPTLIST"),
        Kind.APPT_CANCEL_ACK: (*_APPT, "APPTLIST"),
        Kind.APPT_CANCEL_REFUSED: (*_APPT, "APPTLIST", "CANCELHOURS"),
        Kind.APPT_RESCHEDULED: (*_APPT, "PREVAPPTDATE", "PREVAPPTTIME", "CONFIRMLINK"),
        Kind.APPT_NO_SHOW: _APPT,
        Kind.RECALL: (*_BASE, "DUEDATE", "PROVIDER"),
        Kind.RX_READY: _RX,
        Kind.RX_PICKUP_REMINDER: (*_RX, "READYDATE"),
        Kind.RX_PICKUP_CONFIRMATION: _RX,
        Kind.REFILL_DUE: _REFILL,
        Kind.REFILL_PAST_DUE: _REFILL,
        Kind.REFILL_ASK_PRESCRIBER: (*_REFILL, "PRESCRIBER"),
        Kind.REVIEW_REQUEST: (*_BASE, "REVIEWLINK"),
        Kind.BIRTHDAY: _BASE,
        Kind.WELCOME: _BASE,
        Kind.GENERAL: _BASE,
        Kind.VERIFICATION: ("SITENAME", "SITEPHONE", "CODE", "CODEMINUTES"),
        Kind.INBOX_REPLY: (*_PERSON, *_SITE),
        Kind.KEYWORD_REPLY: ("SITENAME", "SITEPHONE"),
        Kind.STAFF_NOTICE: (),  # written by carebell for staff, never from a format
    }.items()
}


def allowed_for(kind: Kind) -> tuple[str, ...]:
    """The placeholder names `kind` may use, in catalogue order."""
    names = ALLOWED[Kind(kind)]
    return tuple(name for name in CATALOGUE if name in names)


# --- Validation ----------------------------------------------------------------------

# A token is a name between two hashes. Lower-case names are matched too, so they can
# be reported ("#patientname#" is a typo, not text); "#1" or "# 2" are plain text.
_TOKEN = re.compile(r"#([A-Za-z][A-Za-z0-9_]*)#")
_UNCLOSED = re.compile(r"#([A-Z][A-Z0-9_]*)(?![A-Za-z0-9_#])")


def _where(text: str, position: int) -> tuple[int, int]:
    line = text.count("\n", 0, position) + 1
    return line, position - (text.rfind("\n", 0, position) + 1) + 1


def _problem(code, message, text, position, token, field_name, allowed) -> Problem:
    line, column = _where(text, position)
    where = f"{field_name} line {line}, column {column}"
    return Problem(
        code, f"{token} at {where}: {message}", Severity.ERROR, field_name, token,
        position, line, column, allowed,
    )  # fmt: skip


def find_problems(text: str, kind: Kind, field_name: str = "body") -> list[Problem]:
    """Every placeholder in `text` that `kind` may not use, with where it is.

    Errors: a name not in the catalogue (`unknown_placeholder`), a name the kind
    does not allow (`disallowed_placeholder`), a name in the wrong case
    (`malformed_placeholder`) and a known name missing its closing hash
    (`unclosed_placeholder`). An empty list means the text is valid for `kind`.
    """
    allowed = allowed_for(kind)
    problems = []
    for match in _TOKEN.finditer(text):
        message = _token_error(match.group(1), kind, allowed)
        if message:
            code, explanation = message
            problems.append(
                _problem(code, explanation, text, match.start(), match.group(), field_name, allowed)
            )
    problems.extend(_unclosed(text, field_name, allowed))
    return sorted(problems, key=lambda p: p.position or 0)


def _token_error(name: str, kind: Kind, allowed: tuple[str, ...]) -> tuple[str, str] | None:
    if name in allowed:
        return None
    listing = ", ".join(f"#{n}#" for n in allowed)
    if name.upper() in CATALOGUE and name != name.upper():
        return "malformed_placeholder", f"placeholders are upper case: #{name.upper()}#"
    if name in CATALOGUE:
        return "disallowed_placeholder", f"not available in {kind} templates; use {listing}"
    return "unknown_placeholder", f"unknown placeholder; {kind} templates may use {listing}"


def _unclosed(text: str, field_name: str, allowed: tuple[str, ...]) -> list[Problem]:
    closed = {m.start() for m in _TOKEN.finditer(text)} | {
        m.end() - 1 for m in _TOKEN.finditer(text)
    }
    return [
        _problem(
            "unclosed_placeholder",
            f"missing the closing '#': write #{m.group(1)}#",
            text,
            m.start(),
            m.group(),
            field_name,
            allowed,
        )
        for m in _UNCLOSED.finditer(text)
        if m.group(1) in CATALOGUE and m.start() not in closed
    ]


def placeholders_in(text: str) -> list[str]:
    """The names of the well-formed tokens in `text`, in order, repeats included."""
    return [m.group(1) for m in _TOKEN.finditer(text)]


# --- Rendering -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RenderContext:
    """How values are written: the template's language, the site's time zone, the
    channel (SMS writes short dates, a call speaks them) and whether the output is
    HTML (values are then escaped). `today`, when given, adds the year to dates in
    another year."""

    language: str = "en"
    time_zone: tzinfo = UTC
    channel: Channel = Channel.SMS
    html: bool = False
    today: date | None = None

    def __post_init__(self):
        # Normalised once here so that formatting a value never parses "es-MX" again.
        object.__setattr__(self, "language", speech.language_of(self.language))
        object.__setattr__(self, "channel", Channel(self.channel))


class Rendered(NamedTuple):
    text: str
    warnings: tuple[Problem, ...] = ()


class CompiledTemplate:
    """A template cut once into literals and names; `render` only joins."""

    __slots__ = ("_layout", "_steps", "names", "source")

    def __init__(self, source: str):
        self.source = source
        pieces = _TOKEN.split(source)  # literal, name, literal, name, …, literal
        self.names = tuple(pieces[1::2])
        self._steps = tuple((name, _formatter(name)) for name in self.names)
        # The literals, braces doubled, with "{}" where each value goes: str.format
        # then places the values in one C-level pass. Values are arguments, never
        # parsed as a format string, so a value with braces or #X# stays as it is.
        literals = [piece.replace("{", "{{").replace("}", "}}") for piece in pieces[::2]]
        self._layout = "{}".join(literals)

    def render(self, values: Mapping[str, object], context: RenderContext) -> Rendered:
        """The text with each placeholder replaced by its formatted value, once.

        Never raises for data: a missing or unusable value is replaced by the
        placeholder's fallback for the language and reported as a warning.
        """
        texts = [formatter(values.get(name), context) for name, formatter in self._steps]
        warnings: tuple[Problem, ...] = ()
        if None in texts:
            texts, warnings = self._fill_fallbacks(texts, values, context)
        if context.html:
            texts = [html.escape(text) for text in texts]
        return Rendered(self._layout.format(*texts), warnings)

    def _fill_fallbacks(self, texts, values, context) -> tuple[list[str], tuple[Problem, ...]]:
        warnings: list[Problem] = []
        filled = [
            _fallback(name, values.get(name), context, warnings) if text is None else text
            for (name, _), text in zip(self._steps, texts, strict=True)
        ]
        return filled, tuple(warnings)


def _fallback(name: str, value: object, context: RenderContext, warnings: list) -> str:
    placeholder = CATALOGUE.get(name)
    code = "missing_value" if value in (None, "") else "unusable_value"
    if placeholder is None:
        code = "unknown_placeholder"
    warnings.append(
        Problem(
            code,
            f"#{name}#: no usable value, wrote the fallback",
            Severity.WARNING,
            token=f"#{name}#",
        )
    )
    return placeholder.fallback(context.language) if placeholder else ""


@lru_cache(maxsize=2048)
def compile_template(source: str) -> CompiledTemplate:
    """The compiled form of `source`, cached: compile once, render many times.

    Compiling never fails: validation belongs to save time (`find_problems`), and a
    name unknown at send time renders as nothing, with a warning.
    """
    return CompiledTemplate(source)


def render(source: str, values: Mapping[str, object], context: RenderContext) -> Rendered:
    """Compile (cached) and render `source` in one call."""
    return compile_template(source).render(values, context)


# --- Formatting values ---------------------------------------------------------------

EN_DAYS_SHORT = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
EN_MONTHS_SHORT = tuple(m[:3] for m in speech.EN_MONTHS)
# In SMS, "sábado" would be the only accent that pushes a Spanish date out of GSM-7
# (á is not in the alphabet; é in "miércoles" is) and halve the segment; SMS writes
# it as Spanish texters do.
ES_DAYS_SMS = tuple(d.replace("á", "a") for d in speech.ES_DAYS)


def _text(value: object, context: RenderContext) -> str | None:
    if value is None:
        return None
    text = str(value)
    if not text.isprintable():
        # One line: a stray newline or tab in a name must not reshape a message.
        text = " ".join(text.split())
    return text or None


@lru_cache(maxsize=8192)
def _local(value: datetime, zone: tzinfo) -> datetime:
    # Cached: a reminder formats the same start as #APPTDATE# and #APPTTIME#.
    # Aware datetimes are UTC inside carebell; a naive one is taken to be UTC too.
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(zone)


def _date(value: object, context: RenderContext) -> str | None:
    if isinstance(value, datetime):
        value = _local(value, context.time_zone).date()
    if not isinstance(value, date):
        return _text(value, context) if isinstance(value, str) else None
    return write_date(value, context)


def _time(value: object, context: RenderContext) -> str | None:
    if isinstance(value, datetime):
        value = _local(value, context.time_zone).time()
    if not isinstance(value, time):
        return _text(value, context) if isinstance(value, str) else None
    return write_time(value, context)


def _phone(value: object, context: RenderContext) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    if context.channel is Channel.CALL:
        return speech.say_phone(value, context.language)
    return display_phone(value)


def _code(value: object, context: RenderContext) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    if context.channel is Channel.CALL and text:
        return speech.say_digits(text, context.language)
    return text or None


def _number(value: object, context: RenderContext) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    return str(value) or None


def _link(value: object, context: RenderContext) -> str | None:
    # A link cannot be heard; a call script that uses one says nothing there.
    if context.channel is Channel.CALL:
        return ""
    return _text(value, context) if isinstance(value, str) else None


def _visits(value: object, context: RenderContext) -> str | None:
    """Each child with their own time, in the order given: "Ana 9:00 AM, Ben 10:30 AM"
    in an SMS (short, and GSM-7: no dash), "Ana at 9:00 AM and Ben at 10:30 AM" in an
    email, "Ana a las 9:00 am y Ben a las 10:30 am" in Spanish, spoken on a call."""
    if isinstance(value, str):
        return _text(value, context)
    if not isinstance(value, list | tuple) or not value:
        return None
    items = []
    for pair in value:
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            return None
        name, start = _text(pair[0], context), pair[1]
        moment = _time(start, context)
        if name is None or moment is None or isinstance(start, str):
            return None
        items.append(_visit(name, moment, start, context))
    if context.channel is Channel.SMS or len(items) == 1:
        return ", ".join(items)
    last = " y " if context.language == "es" else " and "
    return ", ".join(items[:-1]) + last + items[-1]


def _visit(name: str, moment: str, start: datetime | time, context: RenderContext) -> str:
    if context.channel is Channel.SMS:
        return f"{name} {moment}"
    if context.language != "es":
        return f"{name} at {moment}"
    if context.channel is Channel.CALL:
        return f"{name} a {moment}"  # a spoken time carries its article: "las nueve"
    hour = _local(start, context.time_zone).hour if isinstance(start, datetime) else start.hour
    return f"{name} {'a la' if hour % 12 == 1 else 'a las'} {moment}"


_FORMATTERS = {
    ValueType.TEXT: _text,
    ValueType.DATE: _date,
    ValueType.TIME: _time,
    ValueType.PHONE: _phone,
    ValueType.CODE: _code,
    ValueType.NUMBER: _number,
    ValueType.LINK: _link,
    ValueType.VISITS: _visits,
}


def _nothing(value: object, context: RenderContext) -> None:
    return None


def _formatter(name: str):
    placeholder = CATALOGUE.get(name)
    if placeholder is None:
        return _nothing
    return _FORMATTERS[placeholder.type]


def write_date(day: date, context: RenderContext) -> str:
    """A date for the template's language and channel: "Tue, Mar 17" in an SMS,
    "Tuesday, March 17" in an email, "martes 17 de marzo"; spoken words on a call."""
    year = context.today is not None and day.year != context.today.year
    return _write_date(day, context.language, context.channel, year)


@lru_cache(maxsize=4096)
def _write_date(day: date, language: str, channel: Channel, year: bool) -> str:
    if channel is Channel.CALL:
        return speech.say_date(day, language)
    if language == "es":
        days = ES_DAYS_SMS if channel is Channel.SMS else speech.ES_DAYS
        text = f"{days[day.weekday()]} {day.day} de {speech.ES_MONTHS[day.month - 1]}"
        return f"{text} de {day.year}" if year else text
    if channel is Channel.SMS:
        text = f"{EN_DAYS_SHORT[day.weekday()]}, {EN_MONTHS_SHORT[day.month - 1]} {day.day}"
    else:
        text = f"{speech.EN_DAYS[day.weekday()]}, {speech.EN_MONTHS[day.month - 1]} {day.day}"
    return f"{text}, {day.year}" if year else text


def write_time(moment: time, context: RenderContext) -> str:
    """A clock time: "2:30 PM" in English, "2:30 pm" in Spanish (no dots, so a
    sentence ending in a time does not end in "p.m.."); spoken words on a call.
    Plain spaces only: the no-break spaces CLDR puts before "PM" would force an SMS
    into UCS-2."""
    return _write_time(moment.hour, moment.minute, context.language, context.channel)


@lru_cache(maxsize=4096)
def _write_time(hour: int, minute: int, language: str, channel: Channel) -> str:
    if channel is Channel.CALL:
        return speech.say_time(time(hour, minute), language)
    marker = ("am", "pm") if language == "es" else ("AM", "PM")
    return f"{hour % 12 or 12}:{minute:02d} {marker[hour >= 12]}"


@lru_cache(maxsize=1024)
def display_phone(number: str) -> str:
    """A North American E.164 number as "(555) 010-0123"; any other as given."""
    if len(number) == 12 and number.startswith("+1") and number[1:].isdigit():
        return f"({number[2:5]}) {number[5:8]}-{number[8:]}"
    return number
