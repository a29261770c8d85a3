"""The message queue (SPEC §8), "why?" (SPEC §11) and the dry run: the staff queue's
own filter form and keyset order, its cancel (engine.cancel_queued, through the
outbox), and carebell.planning.explain / dry_run. Viewing needs view_queue (explain
of a patient, appointment or prescription needs view_patients), cancelling
delete_queued."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from django.db.models import Q
from django.http import HttpRequest
from ninja import Field, Query, Router, Schema
from pydantic import AwareDatetime

from carebell.api.common import Id, In, Limit, object_for, site_for, user_of
from carebell.api.problems import ApiProblem
from carebell.appointments.models import Appointment
from carebell.core.reasons import render
from carebell.core.vocab import EntityType
from carebell.messaging.models import PENDING, OutboxMessage
from carebell.people.models import Patient
from carebell.pharmacy.models import Prescription
from carebell.planning import explain
from carebell.planning.decisions import masked
from carebell.web.staff import engine
from carebell.web.staff.cursors import make_cursor, parse_cursor
from carebell.web.staff.views.queue import LIST_FIELDS, QueueFilter, after

router = Router(tags=["queue"])
VIEW_QUEUE, DELETE, VIEW_PATIENTS = "view_queue", "delete_queued", "view_patients"
MAX_CANCEL = 500
MAX_DRY_RUN_LINES = 1000


class MessageOut(Schema):
    id: int
    site_id: int
    patient_id: int | None
    channel: str
    kind: str
    priority: int
    entity_type: str
    entity_id: int | None
    entity_name: str
    status: str
    block_reason: str
    planned_at: AwareDatetime
    attempts: int
    to_address: str


class MessageDetail(MessageOut):
    contact_id: int | None
    due_at: AwareDatetime
    sent_at: AwareDatetime | None
    finished_at: AwareDatetime | None
    segments: int
    subject: str
    body: str
    error_code: str
    why: list[str] = Field(description="the stored reasons, as sentences")


class QueuePage(Schema):
    items: list[MessageOut]
    next: str | None


class QueueQuery(Schema):
    date_from: dt.date | None = Field(
        None, description="planned on or after this day (site's zone)"
    )
    date_to: dt.date | None = None
    channel: Literal["email", "sms", "call"] | None = None
    kind: str | None = Field(None, max_length=32)
    priority: int | None = Field(None, ge=0, le=99)
    entity: str | None = Field(None, max_length=24)
    status: str | None = Field(None, max_length=12)
    attempts: int | None = Field(None, ge=0, le=99)
    limit: Limit = 50
    cursor: str = Field("", max_length=200)


class CancelIn(In):
    message_ids: list[Id] = Field(min_length=1, max_length=MAX_CANCEL)


class CancelOut(Schema):
    cancelled: int


@router.get(
    "/sites/{site_id}/queue", response=QueuePage, summary="The site's messages, by planned time"
)
def queue(request: HttpRequest, site_id: Id, query: Query[QueueQuery]):
    site = site_for(request, site_id, VIEW_QUEUE)
    data = query.model_dump(exclude={"limit", "cursor"}, exclude_none=True)
    form = QueueFilter({k: str(v) for k, v in data.items()})
    if not form.is_valid():
        errors = [(field, str(m)) for field, items in form.errors.items() for m in items]
        raise ApiProblem(422, "invalid", "The filters are not valid.", errors=errors)
    rows = form.rows(site).only(*LIST_FIELDS)
    if query.cursor:
        cursor = parse_cursor(query.cursor)
        if cursor is None:
            raise ApiProblem(400, "bad-cursor", "This cursor is not one the API gave.")
        rows = after(rows, cursor)
    page = list(rows[: query.limit + 1])
    more = len(page) > query.limit
    page = page[: query.limit]
    request.api_object_type = "messaging.outboxmessage"
    return {"items": page, "next": make_cursor(page[-1].planned_at, page[-1].pk) if more else None}


def _message(request, message_id: int) -> OutboxMessage:
    return object_for(
        request, OutboxMessage.objects.select_related("site"), "site", message_id, VIEW_QUEUE
    )


@router.get("/messages/{message_id}", response=MessageDetail, summary="One message, with why")
def get_message(request: HttpRequest, message_id: Id):
    message = _message(request, message_id)
    message.why = engine.reason_sentences(message.reasons)
    return message


@router.post(
    "/sites/{site_id}/queue/cancel",
    response=CancelOut,
    summary="Delete (cancel) pending messages of the site; sent or ended ones stay as they are",
)
def cancel(request: HttpRequest, site_id: Id, body: CancelIn):
    site = site_for(request, site_id, DELETE)
    ids = sorted(set(body.message_ids))
    pending = OutboxMessage.objects.filter(site=site, id__in=ids, status__in=PENDING)
    return {
        "cancelled": engine.cancel_queued(
            site, pending.values_list("id", flat=True), by=user_of(request)
        )
    }


# --- Why? ----------------------------------------------------------------------------


class StoredMessage(Schema):
    id: int
    kind: str
    channel: str
    to: str = Field(description="masked")
    status: str
    block_reason: str
    planned_at: AwareDatetime
    why: list[str]


class Decision(Schema):
    status: Literal["planned", "skipped"]
    kind: str
    channel: str | None
    to: str = Field(description="masked")
    entity_type: str
    entity_id: int | None
    planned_at: AwareDatetime | None
    why: list[str]


class ExplainOut(Schema):
    lines: list[str] = Field(description="the explanation as `carebell explain` prints it")
    messages: list[StoredMessage] = Field(description="what the outbox holds, and why")
    planning: list[Decision] = Field(description="what planning decides now (writes nothing)")


def _stored(rows) -> list[dict]:
    return [
        {
            "id": m.id,
            "kind": m.kind,
            "channel": m.channel,
            "to": masked(m.to_address),
            "status": m.status,
            "block_reason": m.block_reason,
            "planned_at": m.planned_at,
            "why": explain.sentences(m.reasons),
        }
        for m in rows
    ]


def _decisions(patient: Patient, keep=lambda d: True) -> list[dict]:
    return [
        {
            "status": d.status,
            "kind": d.kind,
            "channel": d.channel or None,
            "to": masked(d.to) if d.to else "",
            "entity_type": d.entity_type,
            "entity_id": d.entity_id,
            "planned_at": d.planned_at,
            "why": [render(r) for r in d.reasons],
        }
        for d in engine.planned_for_patient(patient)
        if keep(d)
    ]


@router.get("/patients/{patient_id}/explain", response=ExplainOut, summary="Why: a patient")
def explain_patient(request: HttpRequest, patient_id: Id):
    patient = object_for(
        request, Patient.objects.select_related("site"), "site", patient_id, VIEW_PATIENTS
    )
    rows = OutboxMessage.objects.filter(patient=patient).order_by("planned_at", "id")
    return {
        "lines": list(explain.explain_patient(patient)),
        "messages": _stored(rows),
        "planning": _decisions(patient),
    }


@router.get(
    "/appointments/{appointment_id}/explain", response=ExplainOut, summary="Why: an appointment"
)
def explain_appointment(request: HttpRequest, appointment_id: Id):
    rows = Appointment.objects.select_related("site", "patient__site")
    appointment = object_for(request, rows, "site", appointment_id, VIEW_PATIENTS)
    about = Q(entity_type=EntityType.APPOINTMENT, entity_id=appointment.id) | Q(
        subjects__entity_type=EntityType.APPOINTMENT, subjects__entity_id=appointment.id
    )
    stored = OutboxMessage.objects.filter(about).distinct().order_by("planned_at", "id")

    def concerns(d) -> bool:
        return d.entity_type == EntityType.APPOINTMENT and (
            d.entity_id == appointment.id or appointment.id in (d.entity_ids or [])
        )

    return {
        "lines": list(explain.explain_appointment(appointment)),
        "messages": _stored(stored),
        "planning": _decisions(appointment.patient, concerns),
    }


@router.get("/prescriptions/{rx_id}/explain", response=ExplainOut, summary="Why: a prescription")
def explain_prescription(request: HttpRequest, rx_id: Id):
    rows = Prescription.objects.select_related("site", "patient")
    prescription = object_for(request, rows, "site", rx_id, VIEW_PATIENTS)
    fills = list(prescription.fills.values_list("id", flat=True))
    about = Q(entity_type=EntityType.PRESCRIPTION, entity_id=prescription.id) | Q(
        entity_type=EntityType.FILL, entity_id__in=fills
    )
    stored = list(OutboxMessage.objects.filter(about).order_by("planned_at", "id"))
    lines = [f"prescription {prescription.id} ({prescription.status}) at {prescription.site.name}"]
    for message in stored:
        lines += explain.describe_message(message)
    if not stored:
        lines.append(
            "  no message about it yet: refill and ready notices are planned by the daily pass"
        )
    return {"lines": lines, "messages": _stored(stored), "planning": []}


@router.get("/messages/{message_id}/explain", response=ExplainOut, summary="Why: a message")
def explain_message(request: HttpRequest, message_id: Id):
    message = _message(request, message_id)
    return {
        "lines": explain.describe_message(message),
        "messages": _stored([message]),
        "planning": [],
    }


# --- The dry run ---------------------------------------------------------------------


class DryRunQuery(Schema):
    days: int = Field(7, ge=1, le=31, description="from now, this many days ahead")


class DryRunLine(Schema):
    status: Literal["planned", "skipped"]
    kind: str
    channel: str | None
    to: str
    entity_type: str
    entity_id: int | None
    planned_at: str | None
    segments: int | None
    reasons: list[str]


class DryRunOut(Schema):
    start: AwareDatetime
    end: AwareDatetime
    planned: int
    skipped: int
    segments: int
    lines: list[DryRunLine] = Field(description=f"the first {MAX_DRY_RUN_LINES}")


@router.get(
    "/sites/{site_id}/dry-run", response=DryRunOut, summary="What would be sent in the coming days"
)
def dry_run(request: HttpRequest, site_id: Id, query: Query[DryRunQuery]):
    from django.utils import timezone

    from carebell.planning.dry_run import plan_period

    site = site_for(request, site_id, "view_automated_messages")
    now = timezone.now()
    end = now + dt.timedelta(days=query.days)
    lines, planned, skipped, parts = [], 0, 0, 0
    for line in plan_period([site], now, now, end):
        is_planned = line["status"] == "planned"
        planned, skipped = planned + is_planned, skipped + (not is_planned)
        parts += line["segments"] or 0
        if len(lines) < MAX_DRY_RUN_LINES:
            lines.append(line)
    return {
        "start": now,
        "end": end,
        "planned": planned,
        "skipped": skipped,
        "segments": parts,
        "lines": lines,
    }
