"""The signature pad's call and verification codes through the API."""

from __future__ import annotations

import base64
import hashlib

import pytest

from carebell.messaging.models import OutboxMessage
from carebell.people.models import ConsentRecord
from carebell.sites.roles import READ_ONLY
from tests import factories
from tests.api.conftest import assert_problem

PNG = b"\x89PNG\r\n\x1a\n" + b"signature strokes" * 20


@pytest.fixture
def point(pharmacy):
    contact = factories.make_contact(factories.make_patient(pharmacy))
    return factories.add_point(contact, "mobile", "+12025550142")


def consent_body(api, site_id, **extra):
    shown = api.get(f"/api/v1/sites/{site_id}/consent-wording").json()
    return {"channel": "sms", "action": "grant", "source": "signature_pad",
            "wording": shown["wording"], "wording_version": shown["version"], **extra}  # fmt: skip


def test_a_signature_pad_records_consent_with_the_image(api_as, pharmacy, point):
    api = api_as(at=pharmacy)
    body = consent_body(api, pharmacy.pk, signature_png_base64=base64.b64encode(PNG).decode())
    response = api.post(f"/api/v1/contact-points/{point.pk}/consents", body)
    assert response.status_code == 201, response.content
    record = ConsentRecord.objects.get()
    assert (
        record.signature_sha256
        == hashlib.sha256(PNG).hexdigest()
        == response.json()["signature_sha256"]
    )
    assert bytes(record.signature_image) == PNG and record.captured_by == api.user
    point.refresh_from_db()
    assert point.consent_sms
    listed = api.get(f"/api/v1/contact-points/{point.pk}/consents").json()["items"]
    assert [r["id"] for r in listed] == [record.pk]


def test_the_hash_alone_is_enough_and_must_agree_with_an_image(api_as, pharmacy, point):
    api = api_as(at=pharmacy)
    digest = hashlib.sha256(PNG).hexdigest()
    assert (
        api.post(
            f"/api/v1/contact-points/{point.pk}/consents",
            consent_body(api, pharmacy.pk, signature_sha256=digest),
        ).status_code
        == 201
    )
    wrong = consent_body(
        api,
        pharmacy.pk,
        signature_sha256="0" * 64,
        signature_png_base64=base64.b64encode(PNG).decode(),
    )
    assert_problem(api.post(f"/api/v1/contact-points/{point.pk}/consents", wrong), 422)
    assert_problem(
        api.post(f"/api/v1/contact-points/{point.pk}/consents", consent_body(api, pharmacy.pk)), 422
    )
    bad = consent_body(api, pharmacy.pk, signature_png_base64="not base64!")
    assert_problem(api.post(f"/api/v1/contact-points/{point.pk}/consents", bad), 422)
    assert ConsentRecord.objects.count() == 1


def test_consent_stays_in_the_organization_and_needs_edit_patients(
    api_as, outsider_api, pharmacy, point
):
    body = {"channel": "sms", "action": "grant", "source": "paper", "wording": "I agree."}
    assert_problem(outsider_api.post(f"/api/v1/contact-points/{point.pk}/consents", body), 404)
    assert_problem(
        api_as(READ_ONLY, at=pharmacy).post(f"/api/v1/contact-points/{point.pk}/consents", body),
        403,
    )
    assert not ConsentRecord.objects.exists()


def test_a_code_is_sent_and_checked_without_its_digits_in_the_answer(api_as, pharmacy, point):
    api = api_as(at=pharmacy)
    issued = api.post(f"/api/v1/contact-points/{point.pk}/verification-codes")
    assert issued.status_code == 201, issued.content
    message = OutboxMessage.objects.get(pk=issued.json()["message_id"])
    digits = next(
        word for word in message.body.replace(".", " ").split() if word.isdigit() and len(word) == 6
    )
    assert digits not in issued.content.decode()
    wrong = api.post(
        f"/api/v1/contact-points/{point.pk}/verification-codes/check",
        {"code": "000000" if digits != "000000" else "111111"},
    )
    assert wrong.json()["outcome"] == "wrong" and not wrong.json()["verified"]
    right = api.post(
        f"/api/v1/contact-points/{point.pk}/verification-codes/check", {"code": digits}
    )
    assert right.json() == {"outcome": "verified", "verified": True, "tries_left": 0}
    point.refresh_from_db()
    assert point.verified_at is not None
    assert_problem(
        api.post(f"/api/v1/contact-points/{point.pk}/verification-codes/check", {"code": "12ab"}),
        422,
    )
