"""Message formats as the rest of carebell uses them: validate a template before it is
saved, preview it with sample data, and fetch carebell's defaults.

The web editor, the REST API, the `carebell template preview` command and the
template model's save path all call these functions, so a template is judged the
same way wherever it is written.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from carebell.core import content, placeholders, segments, speech
from carebell.core.placeholders import Problem, RenderContext, Severity
from carebell.core.vocab import Channel, Kind
from carebell.formats.defaults import DefaultTemplate, all_defaults, keyword_reply, quick_reply
from carebell.formats.defaults import default_template as _default_template

__all__ = [
    "MAX_EMAIL_BYTES",
    "MAX_SMS_SEGMENTS",
    "DefaultTemplate",
    "all_defaults",
    "as_validation_error",
    "default_template",
    "keyword_reply",
    "preview",
    "quick_reply",
    "sample_values",
    "save_format",
    "validate_template",
]

MAX_SMS_SEGMENTS = 10
MAX_EMAIL_BYTES = 100 * 1024

#: The site the samples come from when the caller gives none.
SAMPLE_SITE = {
    "name": "Maple Street Clinic",
    "phone": "+15550100123",
    "address": "120 Maple Street, Springfield",
    "time_zone": "America/New_York",
}

# Samples are long on purpose (a Wednesday in September is the longest Spanish date),
# so a template that fits one segment here fits it for most real patients too.
_APPOINTMENT = datetime(2026, 9, 30, 18, 30, tzinfo=UTC)
_SAMPLES: dict[str, object] = {
    "PATIENTNAME": "Alexandra Gutierrez",
    "PATIENTFIRSTNAME": "Alexandra",
    "APPTDATE": _APPOINTMENT,
    "APPTTIME": _APPOINTMENT,
    "PREVAPPTDATE": datetime(2026, 9, 28, 13, 0, tzinfo=UTC),
    "PREVAPPTTIME": datetime(2026, 9, 28, 13, 0, tzinfo=UTC),
    "APPTLIST": (("Alexandra", _APPOINTMENT), ("Leo", _APPOINTMENT + timedelta(minutes=30))),
    "PROVIDER": "Dr. Rivera",
    "LOCATION": "Maple Street, Suite 2",
    "APPTREASON": "Follow-up visit",
    "CANCELHOURS": 24,
    "CONFIRMLINK": "https://carebell.example/p/confirm/Xk2f9Q",
    "DUEDATE": date(2026, 9, 30),
    "READYDATE": date(2026, 9, 25),
    "RXCOUNT": 2,
    "RXNUMBER": "6012345, 6012346",
    "DRUGNAME": "Amoxicillin 250 mg",
    "PRESCRIBER": "Dr. Rivera",
    "REVIEWLINK": "https://carebell.example/p/review/Xk2f9Q",
    "UNSUBSCRIBELINK": "https://carebell.example/p/unsub/Xk2f9Q",
    "CODE": "402913",
    "CODEMINUTES": 10,
}


def default_template(kind: Kind, channel: Channel, language: str) -> DefaultTemplate:
    """carebell's default for `kind`, `channel` and `language` ("Load default" and
    "Restore default"): `.subject`, `.body` and `.html_body` (email only)."""
    return _default_template(kind, channel, language)


def sample_values(site: object | Mapping | None = None) -> dict[str, object]:
    """Placeholder values for previews: the samples above with the site's name,
    phone and address when `site` (a Site or any mapping/object with those
    attributes) is given."""
    values = dict(_SAMPLES)
    values["SITENAME"] = _site_attr(site, "name")
    values["SITEPHONE"] = _site_attr(site, "phone")
    values["SITEADDRESS"] = _site_attr(site, "address")
    return values


def _site_attr(site: object | Mapping | None, name: str) -> str:
    if site is None:
        return str(SAMPLE_SITE[name])
    value = site.get(name) if isinstance(site, Mapping) else getattr(site, name, None)
    return str(value) if value else str(SAMPLE_SITE[name])


def _site_zone(site: object | Mapping | None) -> ZoneInfo:
    try:
        return ZoneInfo(_site_attr(site, "time_zone"))
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(str(SAMPLE_SITE["time_zone"]))


# --- Validation ----------------------------------------------------------------------


def _error(code: str, message: str, field: str = "body") -> Problem:
    return Problem(code, message, Severity.ERROR, field)


def _warning(code: str, message: str, field: str = "body", token: str = "") -> Problem:
    return Problem(code, message, Severity.WARNING, field, token)


def validate_template(
    channel: Channel | str,
    kind: Kind | str,
    subject: str,
    body: str,
    html_body: str = "",
    *,
    language: str = "en",
    site_name: str | None = None,
    restricted_words: Iterable[str] = content.DEFAULT_RESTRICTED_WORDS,
) -> list[Problem]:
    """Everything wrong with a template, errors first. Errors refuse the save
    (unknown or disallowed placeholders, an empty body, an email without subject or
    over 100 KB, an SMS over 10 segments with sample data, script in HTML);
    warnings are shown and the template is saved (characters forcing UCS-2, a
    missing STOP hint or site name, a drug or diagnosis in an SMS or call, …)."""
    try:
        channel, kind = Channel(channel), Kind(kind)
    except ValueError as error:
        return [_error("unknown_channel_or_kind", str(error), "kind")]
    subject, body, html_body = subject or "", body or "", html_body or ""
    problems = _placeholder_problems(channel, kind, subject, body, html_body)
    if not body.strip():
        problems.append(_error("empty_body", "the message has no text"))
    if channel is Channel.EMAIL:
        problems += _email_problems(subject, body, html_body)
    rendered = _render_sample(channel, body, language)
    if channel is Channel.SMS:
        problems += _sms_problems(rendered)
    if channel is Channel.CALL:
        problems += _call_problems(body)
    problems += _lint(channel, kind, body, rendered, site_name)
    problems += _restricted(subject, body, html_body, restricted_words)
    return sorted(problems, key=lambda p: not p.is_error)


def _placeholder_problems(channel, kind, subject, body, html_body) -> list[Problem]:
    # An SMS or call "subject" is only a label staff see; it is never sent.
    fields = {"body": body}
    if channel is Channel.EMAIL:
        fields.update(subject=subject, html_body=html_body)
    problems = []
    for name, text in fields.items():
        problems += placeholders.find_problems(text, kind, field_name=name)
    return problems


_UNSAFE_HTML = re.compile(r"<\s*(script|iframe|object|embed)\b|javascript:|\son\w+\s*=", re.I)


def _email_problems(subject: str, body: str, html_body: str) -> list[Problem]:
    problems = []
    if not subject.strip():
        problems.append(_error("empty_subject", "an email needs a subject", "subject"))
    size = len(subject.encode()) + len(body.encode()) + len(html_body.encode())
    if size > MAX_EMAIL_BYTES:
        problems.append(
            _error("email_too_large", f"the email is {size // 1024} KB; the limit is 100 KB")
        )
    if _UNSAFE_HTML.search(html_body):
        problems.append(
            _error("unsafe_html", "scripts, frames and event handlers are not allowed", "html_body")
        )
    return problems


def _sms_problems(rendered: str) -> list[Problem]:
    counted = segments.count(rendered)
    problems = []
    if counted.segments > MAX_SMS_SEGMENTS:
        problems.append(
            _error(
                "sms_too_long",
                f"{counted.segments} segments with sample data; the limit is {MAX_SMS_SEGMENTS}",
            )
        )
    for culprit in segments.ucs2_culprits(rendered):
        problems.append(_warning("forces_ucs2", culprit.message, token=culprit.char))
    return problems


def _call_problems(body: str) -> list[Problem]:
    links = [n for n in placeholders.placeholders_in(body) if n.endswith("LINK")]
    return [
        _warning("link_in_call", f"#{n}# cannot be heard on a call and is left out", token=n)
        for n in dict.fromkeys(links)
    ]


def _lint(channel, kind, body, rendered, site_name) -> list[Problem]:
    flags = content.lint_template(channel, kind, body, rendered, site_name)
    return [_warning(f.code, f.message, token=f.token) for f in flags]


def _restricted(subject, body, html_body, words) -> list[Problem]:
    block = content.check_outbound((subject, body, html_body), tuple(words))
    if block is None:
        return []
    return [
        _warning(
            block.reason,
            f"messages from this template will be blocked: {block.message}",
            token=block.matched,
        )
    ]


def _render_sample(channel: Channel, body: str, language: str) -> str:
    context = RenderContext(language=language, time_zone=_site_zone(None), channel=channel)
    return placeholders.render(body, sample_values(), context).text


def as_validation_error(problems: Iterable[Problem]):
    """A Django ValidationError keyed by field for the errors among `problems`, or
    None when there are none: `if (e := as_validation_error(p)): raise e`."""
    from django.core.exceptions import ValidationError

    by_field: dict[str, list[str]] = {}
    for problem in problems:
        if problem.is_error:
            by_field.setdefault(problem.field, []).append(problem.message)
    return ValidationError(by_field) if by_field else None


# --- Preview -------------------------------------------------------------------------


def preview(
    channel: Channel | str,
    kind: Kind | str,
    language: str,
    *,
    body: str,
    subject: str = "",
    html_body: str = "",
    site: object | Mapping | None = None,
    values: Mapping[str, object] | None = None,
    smart_encoding: bool = False,
    restricted_words: Iterable[str] = content.DEFAULT_RESTRICTED_WORDS,
) -> dict:
    """The template rendered with sample data (or `values`) as the recipient gets it.

    Returns a dict with `channel`, `kind`, `language`, `subject` (email only),
    `body`, `html` (email only), `errors` and `warnings` (messages) and `problems`
    (the details); for SMS also `encoding`, `characters`, `units`, `segments` and
    `split` (the text of each segment); for a call `body` is the speakable script.
    """
    channel, kind = Channel(channel), Kind(kind)
    data = {**sample_values(site), **(values or {})}
    context = RenderContext(language=language, time_zone=_site_zone(site), channel=channel)
    rendered = placeholders.render(body, data, context)
    result = {"channel": str(channel), "kind": str(kind), "language": language}
    result.update(_shape(channel, subject, html_body, rendered.text, data, context))
    if channel is Channel.SMS:
        result.update(_sms_figures(result["body"], smart_encoding))
    site_name = _site_attr(site, "name")
    problems = validate_template(
        channel, kind, subject, body, html_body, language=language, site_name=site_name,
        restricted_words=restricted_words,
    )  # fmt: skip
    problems += rendered.warnings
    result["errors"] = [p.message for p in problems if p.is_error]
    result["warnings"] = [p.message for p in problems if not p.is_error]
    result["problems"] = [p.as_dict() for p in problems]
    return result


def _shape(channel, subject, html_body, text, data, context) -> dict:
    if channel is Channel.CALL:
        return {"subject": "", "body": speech.speakable(text, context.language), "html": ""}
    if channel is Channel.SMS:
        return {"subject": "", "body": text, "html": ""}
    html_context = RenderContext(
        language=context.language, time_zone=context.time_zone, channel=channel, html=True
    )
    return {
        "subject": placeholders.render(subject, data, context).text,
        "body": text,
        "html": placeholders.render(html_body, data, html_context).text if html_body else "",
    }


def _sms_figures(text: str, smart_encoding: bool) -> dict:
    if smart_encoding:
        text = segments.smart_encode(text)
    counted = segments.count(text)
    return {
        "body": text,
        "encoding": str(counted.encoding),
        "characters": counted.characters,
        "units": counted.units,
        "segments": counted.segments,
        "split": segments.split(text),
    }


# --- Saving --------------------------------------------------------------------------


def save_format(template, *, by, now: datetime | None = None) -> list[Problem]:
    """Create or change a message format (a MessageTemplate), the one way staff
    doors write one. Errors refuse the save (a ValidationError, nothing written);
    the warnings are returned. A format saved in use takes over from the one in use
    for its site, kind, channel and language, in the same transaction, so the
    `one_template_in_use` constraint never refuses a second format."""
    from django.core.exceptions import ValidationError
    from django.db import IntegrityError, transaction
    from django.utils import timezone

    from carebell.audit import trail

    now = now or timezone.now()
    problems = template.problems()
    if error := as_validation_error(problems):
        raise error
    template.is_default = _is_default(template)
    created = template.pk is None
    try:
        with transaction.atomic():
            if template.in_use:
                _others_in_use(template).update(in_use=False, updated_at=now)
            template.save()
            trail.record(by, "create" if created else "change", template, at=now)
    except IntegrityError:
        # Another format was put in use for the same slot at the same moment.
        raise ValidationError(
            "Another format was put in use for this kind, channel and language just now; "
            "please try again."
        ) from None
    return [p for p in problems if not p.is_error]


def _others_in_use(template):
    return type(template).objects.filter(
        site_id=template.site_id, kind=template.kind, channel=template.channel,
        language=template.language, in_use=True,
    ).exclude(pk=template.pk)  # fmt: skip


def _is_default(template) -> bool:
    try:
        default = default_template(
            Kind(template.kind), Channel(template.channel), template.language
        )
    except (KeyError, ValueError):
        return False
    return (template.subject, template.body, template.html_body) == (
        default.subject, default.body, default.html_body,
    )  # fmt: skip
