"""Group messages and one-off messages (SPEC §5.6) through carebell.sends: a draft
to chosen patients, its channels and words, the review's counts, then start (the
worker writes it to the queue in batches). Needs group_send."""

from __future__ import annotations

import secrets
from typing import Literal

from django.http import HttpRequest, HttpResponse
from ninja import Field, Router, Schema, Status
from pydantic import AwareDatetime

from carebell.api.common import Id, In, object_for, site_for, user_of
from carebell.api.idempotency import HEADER
from carebell.messaging.models import GroupSend
from carebell.people.models import Patient
from carebell.sends import group, one_off
from carebell.sends.messages import Texts

router = Router(tags=["sends"])
PERMISSION = group.PERMISSION
Channel = Literal["email", "sms"]


class GroupIn(In):
    patient_ids: list[Id] = Field(min_length=1, max_length=group.MAX_RECIPIENTS)
    channels: list[Channel] = Field([], max_length=2)


class TextsIn(In):
    channels: list[Channel] | None = Field(None, min_length=1, max_length=2)
    email_subject: str = Field("", max_length=300)
    email_body: str = Field("", max_length=100_000)
    sms_body: str = Field("", max_length=10_000)


class Progress(Schema):
    status: str
    total: int
    done: int
    queued: int
    blocked: int
    percent: int


class GroupOut(Schema):
    id: int
    site_id: int
    status: str
    channels: list[str]
    email_subject: str
    email_body: str
    sms_body: str
    created_at: AwareDatetime
    started_at: AwareDatetime | None
    finished_at: AwareDatetime | None
    progress: Progress


class Composed(Schema):
    group_send: GroupOut
    warnings: list[str]


class Summary(Schema):
    patients: int
    messages: int
    by_channel: dict[str, int]
    blocked: int
    by_block: dict[str, int]
    segments: int
    price_per_segment: str
    cost: str


class OneOffIn(In):
    contact_id: Id
    channel: Channel
    email_subject: str = Field("", max_length=300)
    email_body: str = Field("", max_length=100_000)
    sms_body: str = Field("", max_length=10_000)


class OneOffOut(Schema):
    message_id: int
    status: str
    block_reason: str
    segments: int


def _out(send: GroupSend) -> GroupSend:
    send.progress = group.progress(send)
    return send


def _group(request, send_id: int) -> GroupSend:
    rows = GroupSend.objects.select_related("site__delivery")
    return object_for(request, rows, "site", send_id, PERMISSION)


@router.post(
    "/sites/{site_id}/group-sends", response={201: GroupOut}, summary="A draft group message"
)
def create(request: HttpRequest, site_id: Id, body: GroupIn, response: HttpResponse):
    site = site_for(request, site_id, PERMISSION)
    send = group.create(site, body.patient_ids, channels=body.channels, by=user_of(request))
    response["Location"] = f"/api/v1/group-sends/{send.pk}"
    return Status(201, _out(send))


@router.get("/group-sends/{send_id}", response=GroupOut, summary="A group message and its progress")
def read(request: HttpRequest, send_id: Id):
    return _out(_group(request, send_id))


@router.post(
    "/group-sends/{send_id}/texts", response=Composed, summary="Set a draft's channels and words"
)
def compose(request: HttpRequest, send_id: Id, body: TextsIn):
    send = _group(request, send_id)
    if body.channels is not None:
        group.set_channels(send, body.channels, by=user_of(request))
    texts = Texts(
        email_subject=body.email_subject, email_body=body.email_body, sms_body=body.sms_body
    )
    warnings = group.compose(send, texts, by=user_of(request))
    return {"group_send": _out(send), "warnings": warnings}


@router.get(
    "/group-sends/{send_id}/summary", response=Summary, summary="The review's counts and cost"
)
def summary(request: HttpRequest, send_id: Id):
    send = _group(request, send_id)
    return group.summary(send, by=user_of(request))


@router.post(
    "/group-sends/{send_id}/start", response=GroupOut, summary="Send the draft to the queue"
)
def start(request: HttpRequest, send_id: Id):
    send = _group(request, send_id)
    return _out(group.start(send, by=user_of(request)))


@router.post(
    "/patients/{patient_id}/messages",
    response={201: OneOffOut},
    summary="One message to one contact of a patient (stored blocked, with why, if it may not go)",
)
def send_one(request: HttpRequest, patient_id: Id, body: OneOffIn):
    patient = object_for(
        request, Patient.objects.select_related("site"), "site", patient_id, PERMISSION
    )
    texts = Texts(
        email_subject=body.email_subject, email_body=body.email_body, sms_body=body.sms_body
    )
    # The Idempotency-Key, when it fits, is also the message's own occurrence key.
    key = request.headers.get(HEADER, "")
    token = key if one_off._TOKEN.match(key) else secrets.token_urlsafe(16)
    message = one_off.send(
        patient,
        contact_id=body.contact_id,
        channel=body.channel,
        texts=texts,
        token=token,
        by=user_of(request),
    )
    return Status(
        201,
        {
            "message_id": message.pk,
            "status": message.status,
            "block_reason": message.block_reason,
            "segments": message.segments,
        },
    )
