"""Automated messages (SPEC §5) and message formats (SPEC §6): reading needs
view_automated_messages; rules change with edit_automated_messages through the
staff app's engine adapter (save_rule replans the site; forecast is the rule's dry
run), formats with manage_templates through carebell.formats.service."""

from __future__ import annotations

from typing import Literal

from django.http import HttpRequest
from ninja import Field, Router, Schema

from carebell.api.common import (
    Id,
    In,
    site_for,
)
from carebell.api.fields import apply, in_schemas, out_schema
from carebell.api.resources import Resource, mount
from carebell.core import segments
from carebell.core.vocab import Channel, Kind, Weekday
from carebell.formats import service
from carebell.messaging.models import AutomatedMessage, MessageTemplate
from carebell.web.staff import engine

router = Router(tags=["messaging"])
VIEW, EDIT_RULES, EDIT_FORMATS = (
    "view_automated_messages",
    "edit_automated_messages",
    "manage_templates",
)

ChannelName = Literal[tuple(c.value for c in Channel)]  # type: ignore[valid-type]
KindName = Literal[tuple(k.value for k in Kind)]  # type: ignore[valid-type]
DayName = Literal[tuple(d.value for d in Weekday)]  # type: ignore[valid-type]
DrugClass = Literal["maintenance", "non_maintenance", "controlled", "c2"]


class Offset(Schema):
    """Days or hours before the event (exactly one of them)."""

    days: int | None = Field(None, ge=0, le=365)
    hours: int | None = Field(None, ge=0, le=23 * 365)


class Filters(Schema):
    appointment_types: list[str] = []
    providers: list[str] = []
    locations: list[str] = []
    drug_classes: list[DrugClass] = []


class Override(Schema):
    email_sms_window_start: str | None = Field(None, pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    email_sms_window_end: str | None = Field(None, pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    delivery_days: list[DayName] | None = None


RULE_JSON = {
    "offsets": list[Offset],
    "channels": list[ChannelName],
    "filters": Filters,
    "settings_override": Override,
}
RULE_FIELDS = ["name", "enabled", "offsets", "channels", "filters", "settings_override"]
RuleOut = out_schema(
    "AutomatedMessageOut",
    AutomatedMessage,
    ["site", "kind", *RULE_FIELDS, "updated_at"],
    json_types=RULE_JSON,
)
RuleCreate, RuleChange = in_schemas(
    "AutomatedMessage",
    AutomatedMessage,
    RULE_FIELDS,
    required=("name",),
    json_types=RULE_JSON,
    create_extra={"site_id": (Id, ...), "kind": (KindName, ...)},
)


class PlannedLine(Schema):
    kind: str
    channel: str | None
    to: str = Field(description="masked")
    entity_type: str
    entity_id: int | None
    planned_at: str | None = Field(description="ISO 8601, in the recipient's zone")
    segments: int | None


class NotSent(Schema):
    reason: str
    count: int


class ForecastOut(Schema):
    days: int
    planned: list[PlannedLine]
    not_sent: list[NotSent]
    segments: int


class RuleFilter(Schema):
    site_id: Id | None = None


def _rule_data(rule: AutomatedMessage, body: Schema, *, creating: bool) -> None:
    apply(rule, body, creating=creating)
    for name in ("offsets", "filters", "settings_override"):
        value = getattr(rule, name)
        if isinstance(value, list):
            setattr(rule, name, [_plain(v) for v in value])
        else:
            setattr(rule, name, _plain(value))


def _plain(value):
    """A nested schema as the JSON the rule stores, without empty parts."""
    if isinstance(value, Schema):
        value = value.model_dump()
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if v not in (None, [], "")}
    return value


RULES = Resource(
    name="rule", plural="rules", collection="/automated-messages",
    item="/automated-messages/{rule_id}",
    model=AutomatedMessage, out=RuleOut, create=RuleCreate, change=RuleChange,
    view=VIEW, edit=EDIT_RULES, save=engine.save_rule,
    new=lambda site: AutomatedMessage(site=site), fill=_rule_data,
    filters=RuleFilter,
    summaries={
        "list": "Automated messages (rules)",
        "create": "Add an automated message (switched off unless `enabled`); the site is replanned",
        "get": "One automated message",
        "change": "Change an automated message; the site's pending messages are planned again",
    },
)  # fmt: skip
mount(router, RULES, __name__)


@router.post(
    "/automated-messages/{rule_id}/forecast",
    response=ForecastOut,
    summary="What the rule, with these changes (none saved), would send in the coming days",
)
def forecast_rule(request: HttpRequest, rule_id: Id, body: RuleChange):
    rule = RULES.one(request, rule_id, VIEW)
    _rule_data(rule, body, creating=False)
    rule.full_clean()
    result = engine.forecast(rule)
    return {
        "days": result.days,
        "planned": result.planned,
        "not_sent": [{"reason": why, "count": n} for why, n in result.not_sent],
        "segments": result.segments,
    }


# --- Message formats -----------------------------------------------------------------

FORMAT_FIELDS = [
    "channel",
    "kind",
    "language",
    "name",
    "subject",
    "body",
    "html_body",
    "is_group",
    "in_use",
]
FormatOut = out_schema(
    "MessageFormatOut", MessageTemplate, ["site", *FORMAT_FIELDS, "is_default", "updated_at"]
)
FormatCreate, FormatChange = in_schemas(
    "MessageFormat",
    MessageTemplate,
    FORMAT_FIELDS,
    required=("channel", "kind", "name", "body"),
    create_extra={"site_id": (Id, ...)},
)


class FormatSaved(Schema):
    format: FormatOut
    warnings: list[str]


class FormatFilter(Schema):
    site_id: Id | None = None
    kind: KindName | None = None
    channel: ChannelName | None = None


class PreviewIn(In):
    site_id: Id
    channel: ChannelName
    kind: KindName
    language: Literal["en", "es"] = "en"
    body: str = Field(max_length=100_000)
    subject: str = Field("", max_length=300)
    html_body: str = Field("", max_length=100_000)


class SmsCountIn(In):
    text: str = Field(max_length=10_000)
    smart_encoding: bool = False


class SmsCountOut(Schema):
    encoding: str
    characters: int
    units: int
    segments: int
    split: list[str]
    text: str = Field(description="the text as sent (after smart encoding, if asked)")
    ucs2_characters: list[str] = Field(description="characters that force UCS-2")


class PreviewOut(Schema):
    channel: str
    kind: str
    language: str
    subject: str
    body: str
    html: str
    errors: list[str]
    warnings: list[str]
    encoding: str | None = None
    characters: int | None = None
    units: int | None = None
    segments: int | None = None
    split: list[str] | None = None


@router.post(
    "/message-formats/preview",
    response=PreviewOut,
    summary="A format rendered on sample data, with its errors and the SMS counter (saves nothing)",
)
def preview_format(request: HttpRequest, body: PreviewIn):
    site = site_for(request, body.site_id, VIEW)
    return service.preview(
        body.channel,
        body.kind,
        body.language,
        body=body.body,
        subject=body.subject,
        html_body=body.html_body,
        site=site,
        smart_encoding=site.delivery.smart_encoding,
        restricted_words=site.delivery.restricted_words or (),
    )


FORMATS = Resource(
    name="format", plural="formats", collection="/message-formats",
    item="/message-formats/{format_id}",
    model=MessageTemplate, out=FormatOut, create=FormatCreate, change=FormatChange,
    view=VIEW, edit=EDIT_FORMATS, save=service.save_format,
    new=lambda site: MessageTemplate(site=site),
    saved=FormatSaved,
    saved_body=lambda template, problems: {
        "format": template, "warnings": [p.message for p in problems]
    },
    filters=FormatFilter,
    summaries={
        "list": "Message formats",
        "get": "One message format",
        "create": "Add a message format (manage_templates)",
        "change": "Change a message format (manage_templates)",
    },
)  # fmt: skip
# After the preview: /message-formats/preview is not the format with the id "preview".
mount(router, FORMATS, __name__)


@router.post("/sms/count", response=SmsCountOut, summary="Count an SMS text's segments")
def count_sms(request: HttpRequest, body: SmsCountIn):
    text = segments.smart_encode(body.text) if body.smart_encoding else body.text
    counted = segments.count(text)
    return {
        "encoding": str(counted.encoding),
        "characters": counted.characters,
        "units": counted.units,
        "segments": counted.segments,
        "split": segments.split(text),
        "text": text,
        "ucs2_characters": [c.char for c in segments.ucs2_culprits(text)],
    }
