"""Forged and malformed webhook requests: whatever arrives at a hook — any provider
name, any attempt id of any channel, random fields, broken bodies, a valid signature
over junk — the answer is never a server error, and a forged one writes nothing.

The requests are drawn from a seeded generator, so a failure replays exactly.
"""

from __future__ import annotations

import base64
import json
import random
import uuid
from urllib.parse import urlencode

import pytest
from django.apps import apps
from django.http import QueryDict
from django.test import Client
from django.utils import timezone
from twilio.request_validator import RequestValidator

import carebell.urls
from carebell.appointments.models import Appointment
from carebell.core.vocab import ContactPointKind, Kind
from carebell.messaging.models import DeliveryAttempt, InboundMessage, OutboxMessage
from carebell.providers.registry import BY_NAME
from carebell.simulator.providers import sim_token
from carebell.webhooks import views as hooks
from tests import factories

pytestmark = pytest.mark.django_db

BASE_URL = "https://carebell.example.org"
TOKEN = "fuzz-twilio-token"
SECRET = "carebell:fuzz-secret"
SEED = 20261125

#: Every provider carebell knows, and names it does not.
PROVIDERS = [*BY_NAME, "nope", "Twilio", "ANYMAIL", "sim_sms", "x" * 40, "%00", "..", "-"]
#: Field names Twilio and the sim use, and others.
FIELDS = [
    "MessageSid", "SmsSid", "MessageStatus", "CallSid", "CallStatus", "Digits", "From",
    "To", "Body", "AccountSid", "ErrorCode", "AnsweredBy", "NumMedia", "MediaUrl0",
    "NumSegments", "event", "RecordType", "Metadata", "attempt_id", "",
]  # fmt: skip
#: Values no hook can use: never a real status word or a key that means something.
JUNK = [
    "", " ", "x" * 5000, "\x00", "nul\x00byte", "é😀\u202e", "-1", "0", "3", "*", "#",
    "9" * 40, "1" * 30, "99999999999999999999999", "<Response/>", "{", "null", "[]",
    "DELIVERED ", "sending", "machine_start", "+12025550999", "SM" + "f" * 32,
    "CA" + "0" * 32, "whatsapp:+1", "%ZZ", "\r\nX-Injected: 1", "'; DROP TABLE x;--",
]  # fmt: skip
#: Raw bodies with the content types they might claim.
BODIES = [
    b"", b"{", b'{"a":', b"null", b"[]", b"[{}]", b'"x"', b"\xff\xfe\x00\x00",
    b"a=%ZZ&b=%&=&&", b"\x00" * 64, b"Digits=1&Digits=2", b"x" * 20000,
    b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n",
]  # fmt: skip
CONTENT_TYPES = [
    "application/x-www-form-urlencoded",
    "application/json",
    "multipart/form-data; boundary=b",
    "multipart/form-data",
    "text/plain; charset=utf-16",
    "",
]
#: Attempt ids that belong to no attempt; the fixture adds one of every channel.
NO_ATTEMPT = [0, 1_000_000, 2**31, 2**63 - 1, 2**63, 10**30]


@pytest.fixture
def hook_settings(settings):
    settings.BASE_URL = BASE_URL
    settings.TWILIO_AUTH_TOKEN = TOKEN
    settings.TWILIO_ACCOUNT_SID = "AC" + "1" * 32
    settings.ANYMAIL_ESP = ""  # no email service configured
    settings.ANYMAIL = {"WEBHOOK_SECRET": None}
    return settings


@pytest.fixture
def attempts(site, hook_settings) -> list[int]:
    """One attempt per (channel, provider) carebell sends with, about an appointment."""
    patient = factories.make_patient(site)
    contact = factories.make_contact(patient)
    factories.add_point(contact, ContactPointKind.MOBILE, "+12025550160", consent_sms=True)
    appointment = factories.make_appointment(patient)
    now = timezone.now()
    ids = []
    for channel, provider, to in [
        ("sms", "twilio", "+12025550160"),
        ("sms", "sim", "+12025550160"),
        ("sms", "console", "+12025550160"),
        ("call", "twilio_voice", "+12025550160"),
        ("call", "sim_voice", "+12025550160"),
        ("email", "smtp", "pat@example.org"),
        ("email", "anymail", "pat@example.org"),
        ("email", "sim_email", "pat@example.org"),
    ]:
        message = OutboxMessage.objects.create(
            site=site,
            patient=patient,
            to_address=to,
            channel=channel,
            kind=Kind.APPT_CONFIRMATION,
            entity_type="appointment",
            entity_id=appointment.id,
            body="Hello. Your visit is on Friday.",
            event_at=appointment.starts_at,
            planned_at=now,
            due_at=now,
            status="sent",
            sent_at=now,
            created_at=now,
            updated_at=now,
        )
        attempt = DeliveryAttempt.objects.create(
            message=message,
            number=1,
            provider=provider,
            idempotency_key=uuid.uuid4().hex,
            started_at=now,
            provider_message_id=f"{provider}-1",
        )
        ids.append(attempt.id)
    return ids


def snapshot() -> dict[str, list]:
    """Every row of every carebell table, to show a request wrote nothing."""
    return {
        model._meta.label: list(model.objects.order_by("pk").values())
        for model in apps.get_models()
        if model.__module__.startswith("carebell.")
    }


def routes(rng: random.Random, attempt_ids: list[int]) -> str:
    attempt = rng.choice([*attempt_ids, *NO_ATTEMPT])
    provider = rng.choice(PROVIDERS)
    return rng.choice(
        [
            f"/hooks/{provider}/status/{attempt}",
            f"/hooks/{provider}/inbound",
            f"/hooks/twilio/voice/{attempt}",
            f"/hooks/twilio/gather/{attempt}",
        ]
    )


def junk_form(rng: random.Random) -> list[tuple[str, str]]:
    names = rng.sample(FIELDS, rng.randint(0, 8))
    return [(name, rng.choice(JUNK)) for name in names for _ in range(rng.choice([1, 1, 2]))]


def twilio_signature(token: str, path: str, form: list[tuple[str, str]]) -> str:
    """X-Twilio-Signature over the form as the hook will read it (every value of a
    repeated field counts)."""
    params = QueryDict(form_body(form))
    return RequestValidator(token).compute_signature(BASE_URL + path, params)


def basic(secret: str) -> str:
    return "Basic " + base64.b64encode(secret.encode()).decode()


def forged_headers(rng: random.Random, path: str, form) -> dict[str, str]:
    """Headers of a forger: no signature, garbage, or one computed with a wrong token
    or over another URL."""
    signature = rng.choice(
        [
            None,
            "",
            "bm90IGl0",
            "\x00",
            twilio_signature("wrong-token", path, form),
            twilio_signature(TOKEN, path + "0", form),
            twilio_signature(sim_token(), "/hooks/sim/inbound", []),
        ]
    )
    headers = {} if signature is None else {"X-Twilio-Signature": signature}
    auth = rng.choice([None, "Basic", "Basic !!!", basic("carebell:wrong"), "Bearer x"])
    if auth is not None:
        headers["Authorization"] = auth
    return headers


def post(client: Client, path: str, body: bytes, content_type: str, headers: dict):
    extra = {"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items()}
    return client.generic("POST", path, body, content_type=content_type, **extra)


def form_body(form) -> bytes:
    return urlencode(form).encode()


FORM = "application/x-www-form-urlencoded"


def server_errors(results) -> list:
    return [(status, path, body[:80]) for status, path, body in results if status >= 500]


def test_forged_and_malformed_requests_get_4xx_and_write_nothing(attempts):
    rng = random.Random(SEED)
    client = Client(raise_request_exception=False)
    before = snapshot()
    results = []
    for _ in range(700):
        path = routes(rng, attempts)
        form = junk_form(rng)
        if rng.random() < 0.7:
            body, content_type = form_body(form), FORM
        else:
            body, content_type = rng.choice(BODIES), rng.choice(CONTENT_TYPES)
        response = post(client, path, body, content_type, forged_headers(rng, path, form))
        results.append((response.status_code, path, body))
    assert server_errors(results) == []
    assert {status for status, _, _ in results} <= {400, 403, 404, 405}
    assert snapshot() == before


def test_requests_signed_over_junk_fields_never_get_a_server_error(attempts):
    """A valid signature (Twilio's token, or the sim's) over fields no hook can use:
    answered without a server error, and only an inbound text that names a sender
    and a message id is kept (for staff review, SPEC §7.1)."""
    rng = random.Random(SEED + 1)
    client = Client(raise_request_exception=False)
    before = snapshot()
    results = []
    for _ in range(700):
        path = routes(rng, attempts)
        form = junk_form(rng)
        token = rng.choice([TOKEN, sim_token()])
        headers = {"X-Twilio-Signature": twilio_signature(token, path, form)}
        response = post(client, path, form_body(form), FORM, headers)
        results.append((response.status_code, path, form_body(form)))
    assert server_errors(results) == []
    after = snapshot()
    kept = after.pop(InboundMessage._meta.label)
    before.pop(InboundMessage._meta.label)
    assert after == before
    assert all(row["needs_review"] and row["site_id"] is None for row in kept)


def test_a_signed_report_for_an_attempt_of_another_provider_changes_nothing(attempts):
    client = Client(raise_request_exception=False)
    form = [("MessageSid", "SMforged"), ("MessageStatus", "delivered")]
    form += [("CallSid", "CAforged"), ("CallStatus", "completed")]
    before = snapshot()
    for attempt_id in [*attempts, *NO_ATTEMPT]:
        owner = DeliveryAttempt.objects.filter(id=attempt_id).values_list("provider").first()
        for provider in ("twilio", "sim", "twilio_voice", "sim_voice", "sim_email"):
            if owner == (provider,):
                continue  # its own report: recorded, as it should be
            path = f"/hooks/{provider}/status/{attempt_id}"
            token = TOKEN if provider.startswith("twilio") else sim_token()
            headers = {"X-Twilio-Signature": twilio_signature(token, path, form)}
            response = post(client, path, form_body(form), FORM, headers)
            assert response.status_code < 500, path
    assert snapshot() == before


def test_the_anymail_hooks_answer_404_when_no_email_service_is_configured(client, attempts):
    anymail_attempt = DeliveryAttempt.objects.get(provider="anymail")
    for path in (f"/hooks/anymail/status/{anymail_attempt.id}", "/hooks/anymail/inbound"):
        response = client.post(path, {"a": "b"}, HTTP_AUTHORIZATION=basic(SECRET))
        assert response.status_code == 404


def test_the_voice_hooks_refuse_an_attempt_that_is_not_a_call(client, attempts):
    for attempt in DeliveryAttempt.objects.exclude(message__channel="call"):
        for kind in ("voice", "gather"):
            path = f"/hooks/twilio/{kind}/{attempt.id}"
            form = [("CallSid", "CA1"), ("Digits", "1")]
            token = TOKEN if attempt.provider.startswith("twilio") else sim_token()
            headers = {"X-Twilio-Signature": twilio_signature(token, path, form)}
            response = post(client, path, form_body(form), FORM, headers)
            assert response.status_code == 404, (attempt.provider, kind)
    assert Appointment.objects.get().status == "booked"


# --- the email service's tracking webhook (anymail), when configured -----------------

urlpatterns: list = []  # this module is the URLconf while an email service is configured


@pytest.fixture
def email_service(hook_settings, attempts):
    hook_settings.ANYMAIL_ESP = "postmark"
    hook_settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET}
    urlpatterns[:] = [*carebell.urls.urlpatterns, *hooks.anymail_hook_patterns()]
    hook_settings.ROOT_URLCONF = __name__
    return attempts


def test_the_anymail_status_route_with_the_right_secret_is_not_where_reports_go(
    client, email_service
):
    anymail_attempt = DeliveryAttempt.objects.get(provider="anymail")
    response = client.post(
        f"/hooks/anymail/status/{anymail_attempt.id}",
        {"MessageStatus": "delivered", "MessageID": "anymail-1"},
        HTTP_AUTHORIZATION=basic(SECRET),
    )
    assert response.status_code == 404


def junk_json(rng: random.Random, depth: int = 0):
    choices = [
        lambda: rng.choice(JUNK),
        lambda: rng.choice([0, -1, 2**64, 1.5, True, None]),
        lambda: [junk_json(rng, depth + 1) for _ in range(rng.randint(0, 3))],
        lambda: {rng.choice(POSTMARK_KEYS): junk_json(rng, depth + 1) for _ in range(3)},
    ]
    return rng.choice(choices[:2] if depth > 2 else choices)()


POSTMARK_KEYS = [
    "RecordType", "Type", "MessageID", "Metadata", "ID", "Email", "Recipient",
    "DeliveredAt", "BouncedAt", "Tag", "SuppressSending", "SuppressionReason",
    "FromFull", "attempt_id", "anymail_id",
]  # fmt: skip
RECORD_TYPES = ["Delivery", "Bounce", "Open", "SpamComplaint", "SubscriptionChange", "Inbound"]


def postmark_event(rng: random.Random, attempt_ids: list[int]) -> dict:
    """A Postmark event that is right in shape and wrong in content."""
    anymail = DeliveryAttempt.objects.get(provider="anymail").id
    not_anymail = [i for i in attempt_ids if i != anymail] + NO_ATTEMPT
    metadata = rng.choice(
        [
            {"attempt_id": str(rng.choice(not_anymail))},
            {"attempt_id": rng.choice(JUNK)},
            {"anymail_id": junk_json(rng)},
            rng.choice(JUNK),
            [1, 2],
            None,
        ]
    )
    return {
        "RecordType": rng.choice([*RECORD_TYPES, *JUNK]),
        "Type": rng.choice(["HardBounce", "SpamNotification", *JUNK]),
        "MessageID": rng.choice(["msg-unknown", *JUNK]),
        "Metadata": metadata,
        "DeliveredAt": rng.choice(["2026-11-25T15:00:00Z", *JUNK]),
    }


def test_the_tracking_webhook_answers_4xx_to_what_it_cannot_use(email_service):
    rng = random.Random(SEED + 2)
    client = Client(raise_request_exception=False)
    before = snapshot()
    path = "/hooks/anymail/postmark/tracking/"
    results = []
    for _ in range(400):
        auth = rng.choice([SECRET, SECRET, "carebell:wrong", ""])
        headers = {"Authorization": basic(auth)} if auth else {}
        roll = rng.random()
        if roll < 0.4:
            body = json.dumps(postmark_event(rng, email_service)).encode()
        elif roll < 0.7:
            body = json.dumps(junk_json(rng)).encode()
        else:
            body = rng.choice(BODIES)
        response = post(client, path, body, rng.choice(["application/json", FORM]), headers)
        results.append((response.status_code, path, body))
    assert server_errors(results) == []
    assert snapshot() == before


def test_a_tracking_event_that_is_not_json_gets_400(client, email_service):
    response = client.post(
        "/hooks/anymail/postmark/tracking/",
        b'{"RecordType": "Delivery",',
        content_type="application/json",
        HTTP_AUTHORIZATION=basic(SECRET),
    )
    assert response.status_code == 400
