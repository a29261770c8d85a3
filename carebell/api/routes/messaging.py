"""Automated messages (SPEC §5) and message formats (SPEC §6): reading needs
view_automated_messages; rules change with edit_automated_messages through the
staff app's engine adapter (save_rule replans the site; forecast is the rule's dry
run), formats with manage_templates through carebell.formats.service."""

from __future__ import annotations

from typing import Literal

from django.http import HttpRequest, HttpResponse
from ninja import Field, Query, Router, Schema, Status

from carebell.api.common import (
    Id,
    In,
    PageParams,
    check_if_match,
    object_for,
    page_of,
    paginate,
    site_for,
    tagged,
    user_of,
    visible,
)
from carebell.api.fields import apply, in_schemas, out_schema
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


def _rule(request, rule_id: int, permission: str) -> AutomatedMessage:
    return object_for(
        request, AutomatedMessage.objects.select_related("site"), "site", rule_id, permission
    )


@router.get("/automated-messages", response=page_of(RuleOut), summary="Automated messages (rules)")
def list_rules(request: HttpRequest, page: PageParams, filters: Query[RuleFilter]):
    rows = visible(request, AutomatedMessage.objects.all(), "site", VIEW)
    if filters.site_id:
        rows = rows.filter(site_id=filters.site_id)
    request.api_object_type = "messaging.automatedmessage"
    return paginate(rows, page)


@router.post(
    "/automated-messages",
    response={201: RuleOut},
    summary="Add an automated message (switched off unless `enabled`); the site is replanned",
)
def create_rule(request: HttpRequest, body: RuleCreate, response: HttpResponse):
    site = site_for(request, body.site_id, EDIT_RULES)
    rule = AutomatedMessage(site=site, kind=body.kind)
    _rule_data(rule, body, creating=True)
    engine.save_rule(rule, by=user_of(request))
    response["Location"] = f"/api/v1/automated-messages/{rule.pk}"
    return Status(201, tagged(response, RuleOut, rule))


@router.get("/automated-messages/{rule_id}", response=RuleOut, summary="One automated message")
def get_rule(request: HttpRequest, rule_id: Id, response: HttpResponse):
    return tagged(response, RuleOut, _rule(request, rule_id, VIEW))


@router.patch(
    "/automated-messages/{rule_id}",
    response=RuleOut,
    summary="Change an automated message; the site's pending messages are planned again",
)
def change_rule(request: HttpRequest, rule_id: Id, body: RuleChange, response: HttpResponse):
    rule = _rule(request, rule_id, EDIT_RULES)
    check_if_match(request, RuleOut, rule)
    _rule_data(rule, body, creating=False)
    engine.save_rule(rule, by=user_of(request))
    return tagged(response, RuleOut, rule)


@router.post(
    "/automated-messages/{rule_id}/forecast",
    response=ForecastOut,
    summary="What the rule, with these changes (none saved), would send in the coming days",
)
def forecast_rule(request: HttpRequest, rule_id: Id, body: RuleChange):
    rule = _rule(request, rule_id, VIEW)
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


def _format(request, format_id: int, permission: str) -> MessageTemplate:
    return object_for(
        request, MessageTemplate.objects.select_related("site"), "site", format_id, permission
    )


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


@router.get("/message-formats", response=page_of(FormatOut), summary="Message formats")
def list_formats(request: HttpRequest, page: PageParams, filters: Query[FormatFilter]):
    rows = visible(request, MessageTemplate.objects.all(), "site", VIEW)
    for name in ("site_id", "kind", "channel"):
        if value := getattr(filters, name):
            rows = rows.filter(**{name: value})
    request.api_object_type = "messaging.messagetemplate"
    return paginate(rows, page)


@router.post("/message-formats", response={201: FormatSaved}, summary="Add a message format")
def create_format(request: HttpRequest, body: FormatCreate, response: HttpResponse):
    site = site_for(request, body.site_id, EDIT_FORMATS)
    template = MessageTemplate(site=site)
    apply(template, body, creating=True)
    warnings = service.save_format(template, by=user_of(request))
    response["Location"] = f"/api/v1/message-formats/{template.pk}"
    tagged(response, FormatOut, template)
    return Status(201, {"format": template, "warnings": [p.message for p in warnings]})


@router.get("/message-formats/{format_id}", response=FormatOut, summary="One message format")
def get_format(request: HttpRequest, format_id: Id, response: HttpResponse):
    return tagged(response, FormatOut, _format(request, format_id, VIEW))


@router.patch(
    "/message-formats/{format_id}", response=FormatSaved, summary="Change a message format"
)
def change_format(request: HttpRequest, format_id: Id, body: FormatChange, response: HttpResponse):
    template = _format(request, format_id, EDIT_FORMATS)
    check_if_match(request, FormatOut, template)
    apply(template, body, creating=False)
    warnings = service.save_format(template, by=user_of(request))
    tagged(response, FormatOut, template)
    return {"format": template, "warnings": [p.message for p in warnings]}


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
