"""Consent records (SPEC §3.5) — the signature pad's call — and verification codes,
through carebell.people.consent.record_consent and carebell.people.verification.
Reading needs view_patients, recording and codes edit_patients."""

from __future__ import annotations

import base64
import binascii
from typing import Literal

from django.http import HttpRequest, HttpResponse
from ninja import Field, Router, Schema, Status
from pydantic import AwareDatetime

from carebell.api.common import Id, In, PageParams, page_of, paginate, site_for, user_of
from carebell.api.problems import ApiProblem
from carebell.api.routes.people import EDIT, POINTS, VIEW
from carebell.people import consent, verification
from carebell.people.models import ConsentRecord

router = Router(tags=["consent"])
MAX_SIGNATURE_BASE64 = (consent.MAX_SIGNATURE_BYTES * 4) // 3 + 4


class ConsentIn(In):
    channel: Literal["sms", "call", "email"]
    action: Literal["grant", "revoke"]
    source: Literal["signature_pad", "web_form", "paper", "verbal", "import"]
    wording: str = Field(
        min_length=1, max_length=consent.MAX_WORDING, description="the exact words shown"
    )
    wording_version: str = Field("", max_length=32)
    signature_png_base64: str | None = Field(
        None, max_length=MAX_SIGNATURE_BASE64, description="the signature image, base64 (≤ 256 KB)"
    )
    signature_sha256: str = Field(
        "", pattern=r"^([0-9a-fA-F]{64})?$", description="or only its SHA-256"
    )
    evidence: str = Field("", max_length=300)


class ConsentOut(Schema):
    id: int
    site_id: int
    contact_point_id: int
    channel: str
    action: str
    source: str
    wording: str
    wording_version: str
    recorded_at: AwareDatetime
    captured_by_id: int | None
    captured_by_system: str
    evidence: str
    signature_sha256: str


class WordingOut(Schema):
    version: str
    wording: str


class CodeIssued(Schema):
    code_id: int
    message_id: int = Field(description="the outbox message carrying the code")
    channel: str
    expires_at: AwareDatetime


class CodeIn(In):
    code: str = Field(pattern=r"^[0-9]{4,10}$")


class CodeChecked(Schema):
    outcome: Literal["verified", "wrong", "locked", "expired", "no_code"]
    verified: bool
    tries_left: int


def _signature(body: ConsentIn) -> bytes | None:
    if body.signature_png_base64 is None:
        return None
    try:
        return base64.b64decode(body.signature_png_base64, validate=True)
    except (binascii.Error, ValueError):
        raise ApiProblem(
            422,
            "invalid",
            "carebell refused the change.",
            errors=[("signature_png_base64", "This is not base64.")],
        ) from None


@router.get(
    "/sites/{site_id}/consent-wording", response=WordingOut, summary="The wording to show today"
)
def wording(request: HttpRequest, site_id: Id):
    version, text = consent.current_wording(site_for(request, site_id, VIEW))
    return {"version": version, "wording": text}


@router.get(
    "/contact-points/{point_id}/consents",
    response=page_of(ConsentOut),
    summary="The consent ledger of a phone number or email",
)
def list_consents(request: HttpRequest, point_id: Id, page: PageParams):
    point = POINTS.one(request, point_id, VIEW)
    return paginate(ConsentRecord.objects.filter(contact_point=point), page)


@router.post(
    "/contact-points/{point_id}/consents",
    response={201: ConsentOut},
    summary="Record consent given or withdrawn (a signature pad sends the image or its SHA-256)",
)
def record_consent(request: HttpRequest, point_id: Id, body: ConsentIn, response: HttpResponse):
    point = POINTS.one(request, point_id, EDIT)
    record = consent.record_consent(
        point,
        body.channel,
        body.action,
        source=body.source,
        wording=body.wording,
        wording_version=body.wording_version,
        by=user_of(request),
        evidence=body.evidence,
        signature=_signature(body),
        signature_sha256=body.signature_sha256,
    )
    return Status(201, record)


@router.post(
    "/contact-points/{point_id}/verification-codes",
    response={201: CodeIssued},
    summary="Send a verification code to a mobile (SMS) or email (at most 3 an hour)",
)
def issue_code(request: HttpRequest, point_id: Id):
    point = POINTS.one(request, point_id, EDIT)
    issued = verification.issue_code(point, by=user_of(request))
    code = issued.code
    return Status(
        201,
        {
            "code_id": code.pk,
            "message_id": issued.message_id,
            "channel": code.channel,
            "expires_at": code.expires_at,
        },
    )


@router.post(
    "/contact-points/{point_id}/verification-codes/check",
    response=CodeChecked,
    summary="Check the code the person read back; right, the number or email is verified",
)
def check_code(request: HttpRequest, point_id: Id, body: CodeIn):
    point = POINTS.one(request, point_id, EDIT)
    checked = verification.check_code(
        point, body.code, method=verification.Method.STAFF, by=user_of(request)
    )
    return {
        "outcome": checked.outcome.value,
        "verified": checked.verified,
        "tries_left": checked.tries_left,
    }
