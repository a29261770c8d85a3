from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import hmac
from urllib.parse import parse_qsl

import aiohttp
import pytest
from aiohttp.client_reqrep import ConnectionKey
from twilio.request_validator import RequestValidator

from carebell.providers.base import OutgoingMessage, ProviderError, Unsupported, network_error
from carebell.providers.twilio.signature import verify_twilio_signature
from carebell.providers.twilio.sms import (
    TwilioConfig,
    TwilioSmsProvider,
    classify,
    parse_inbound,
)
from tests.providers.conftest import RecordingServer, load_vectors

SID = "AC" + "a" * 32
SEND_EXAMPLE = load_vectors("send_message_request.json")
STATUS_VECTORS = load_vectors("status_callback.json")
SIGNATURE_VECTORS = load_vectors("signature_vectors.json")["vectors"]


def created(_request):
    return 201, SEND_EXAMPLE["response_201_example"]["body"], {}


def provider(base_url: str, **overrides) -> TwilioSmsProvider:
    fields = dict(account_sid=SID, auth_token="secret", sender="+15005550006", base_url=base_url)
    fields.update(overrides)
    return TwilioSmsProvider(TwilioConfig(**fields))


def message(attempt_id: int = 7, **overrides) -> OutgoingMessage:
    fields = dict(
        attempt_id=attempt_id,
        channel="sms",
        to="+15558675310",
        sender="",
        body="Reminder from Oak Clinic: appointment tomorrow 9:00. Reply C to confirm.",
        status_callback_url=f"https://carebell.example/hooks/twilio/status/{attempt_id}",
        idempotency_key=f"attempt-{attempt_id}",
        site_id=3,
    )
    fields.update(overrides)
    return OutgoingMessage(**fields)


def send(reply, *messages, **config):
    async def go():
        async with RecordingServer(reply) as server:
            results = await provider(server.url, **config).send_batch(None, list(messages))
            return server.requests, results

    return asyncio.run(go())


def test_it_posts_the_message_form_to_the_account_messages_resource():
    requests, results = send(created, message())
    (request,) = requests
    assert request.method == "POST"
    assert request.path == f"/2010-04-01/Accounts/{SID}/Messages.json"
    assert dict(request.form) == {
        "To": "+15558675310",
        "From": "+15005550006",
        "Body": message().body,
        "StatusCallback": "https://carebell.example/hooks/twilio/status/7",
    }
    expected_auth = "Basic " + base64.b64encode(f"{SID}:secret".encode()).decode()
    assert request.headers["Authorization"] == expected_auth
    assert request.headers["I-Twilio-Idempotency-Token"] == "attempt-7"
    assert results[0].accepted
    assert results[0].provider_message_id == "SM" + "a" * 32
    assert results[0].status == "sent"


def test_it_sends_through_a_messaging_service_when_the_sender_is_one():
    requests, _ = send(created, message(sender="MG" + "b" * 32))
    form = dict(requests[0].form)
    assert form["MessagingServiceSid"] == "MG" + "b" * 32
    assert "From" not in form


def test_it_returns_one_result_per_message_in_order():
    def reply(request):
        to = dict(request.form)["To"]
        return 201, {"sid": "SM" + to[-4:], "status": "queued"}, {}

    batch = [message(i, to=f"+1555000{i:04d}") for i in range(1, 41)]
    requests, results = send(reply, *batch)
    assert len(requests) == 40
    assert [r.attempt_id for r in results] == list(range(1, 41))
    assert [r.provider_message_id for r in results] == [f"SM{i:04d}" for i in range(1, 41)]
    assert all(r.status == "queued" for r in results)


@pytest.mark.parametrize(
    ("code", "permanent", "opt_out"),
    [(21211, True, False), (21610, True, True), (21614, True, False), (30001, False, False)],
)
def test_it_classifies_twilio_error_codes(code, permanent, opt_out):
    def reply(_request):
        return 400, {"code": code, "message": "nope", "status": 400}, {}

    _, (result,) = send(reply, message())
    assert not result.accepted
    assert result.error_code == str(code)
    assert result.permanent is permanent
    assert result.opt_out is opt_out


def test_it_honours_retry_after_on_429():
    def reply(_request):
        return 429, {"code": 20429, "message": "Too Many Requests"}, {"Retry-After": "17"}

    _, (result,) = send(reply, message())
    assert not result.accepted
    assert not result.permanent
    assert result.retry_after == 17.0
    assert result.error_code == "20429"


def test_it_treats_server_errors_as_transient():
    _, (result,) = send(lambda _r: (503, {}, {}), message())
    assert (result.permanent, result.error_code) == (False, "http_503")


def test_a_refused_connection_becomes_a_transient_result_not_an_exception():
    async def go():
        async with RecordingServer(created) as server:
            url = server.url
        return await provider(url).send_batch(None, [message()])

    (result,) = asyncio.run(go())
    assert not result.accepted
    assert (result.permanent, result.error_code, result.unknown) == (False, "network", False)


def test_a_body_over_1600_characters_is_refused_before_any_request():
    requests, (result,) = send(created, message(body="x" * 1601))
    assert requests == []
    assert (result.permanent, result.error_code) == (True, "body_too_long")


def test_an_email_given_to_the_sms_provider_is_unsupported_not_dropped():
    requests, (result,) = send(created, message(channel="email"))
    assert requests == []
    assert (result.accepted, result.error_code, result.permanent) == (False, "unsupported", True)


def test_it_looks_up_a_message_by_sid():
    def reply(request):
        if request.path.endswith("/SMknown.json"):
            return 200, {"sid": "SMknown", "status": "delivered"}, {}
        return 404, {"code": 20404, "message": "not found"}, {}

    async def go():
        async with RecordingServer(reply) as server:
            twilio = provider(server.url)
            found = await twilio.lookup(None, provider_message_id="SMknown")
            missing = await twilio.lookup(None, provider_message_id="SMother")
            return server.requests, found, missing

    requests, found, missing = asyncio.run(go())
    assert requests[0].method == "GET"
    assert requests[0].path == f"/2010-04-01/Accounts/{SID}/Messages/SMknown.json"
    assert (found.provider_message_id, found.status) == ("SMknown", "delivered")
    assert missing is None


def test_lookup_by_idempotency_key_alone_is_unsupported_on_twilio():
    with pytest.raises(Unsupported):
        asyncio.run(provider("http://127.0.0.1:9").lookup(None, idempotency_key="k"))


def test_the_provider_reads_its_configuration_from_settings(twilio_settings):
    twilio_settings.TWILIO_BASE_URL = "http://127.0.0.1:8025"
    twilio = TwilioSmsProvider()
    assert twilio.config.account_url == f"http://127.0.0.1:8025/2010-04-01/Accounts/{SID}"
    assert twilio.limits.messages_per_second == 10.0


def test_classify_keeps_credential_errors_retryable():
    error = classify(401, 20003, "Authenticate")
    assert isinstance(error, ProviderError)
    assert not error.permanent


# --- status callbacks: one line per recorded payload --------------------------------

EXPECTED_STATUS = {
    "MESSAAGE_BODY_WITH_ACCEPTED_STATUS": None,
    "MESSAAGE_BODY_WITH_SCHEDULED_STATUS": None,
    "MESSAAGE_BODY_WITH_QUEUED_STATUS": None,
    "MESSAAGE_BODY_WITH_SENDING_STATUS": None,
    "MESSAAGE_BODY_WITH_SENT_STATUS": ("sent", "", False),
    "MESSAAGE_BODY_WITH_DELIVERED_STATUS": ("delivered", "", False),
    "MESSAAGE_BODY_WITH_UNDELIVERED_STATUS": ("undelivered", "", True),
    "MESSAAGE_BODY_WITH_FAILED_STATUS": ("failed", "", True),
    "MESSAAGE_BODY_WITH_CANCELED_STATUS": ("failed", "", True),
    "MESSAAGE_BODY_WITH_FAILED_STATUS_AND_ERROR_CODE_30010": ("failed", "30010", True),
    "MESSAGE_BODY_WITH_NO_MESSAGE_STATUS": None,
    "MESSAGE_BODY_WITH_INVALID_MESSAGE_STATUS": None,
}


@pytest.mark.parametrize(
    "example", STATUS_VECTORS["captured_examples"]["examples"], ids=lambda e: e["fixture"]
)
def test_it_normalises_each_recorded_status_callback(example):
    data = dict(parse_qsl(example["raw_body"]))
    update = provider("http://x").parse_status(data, attempt_id=9)
    expected = EXPECTED_STATUS[example["fixture"]]
    if expected is None:
        assert update is None
        return
    assert (update.status, update.error_code, update.permanent) == expected
    assert update.attempt_id == 9
    assert update.provider_message_id == data["MessageSid"]
    assert update.event_id == f"{data['MessageSid']}:{data['MessageStatus']}"


def test_every_recorded_status_callback_has_an_expectation():
    fixtures = {e["fixture"] for e in STATUS_VECTORS["captured_examples"]["examples"]}
    assert fixtures == set(EXPECTED_STATUS)


def test_an_unsubscribed_recipient_in_a_callback_opts_the_number_out():
    data = {"MessageSid": "SM1", "MessageStatus": "failed", "ErrorCode": "21610"}
    update = provider("http://x").parse_status(data)
    assert (update.status, update.permanent, update.opt_out) == ("failed", True, True)


def test_a_transient_carrier_error_in_a_callback_is_not_permanent():
    data = {"MessageSid": "SM1", "MessageStatus": "undelivered", "ErrorCode": "30001"}
    update = provider("http://x").parse_status(data)
    assert (update.status, update.permanent, update.opt_out) == ("undelivered", False, False)


# --- signatures: every vector, read from the file -----------------------------------


def vector_params(vector):
    if "raw_body" in vector:
        return vector["raw_body"]
    return vector.get("params_multi") or vector["params"]


def vector_signature(vector):
    return vector.get("expected_signature") or vector["expected_valid_signature"]


@pytest.mark.parametrize("vector", SIGNATURE_VECTORS, ids=lambda v: v["id"])
def test_it_accepts_each_signature_vector(vector):
    headers = {"x-twilio-signature": vector_signature(vector)}
    url = vector["url"]
    assert verify_twilio_signature(vector["auth_token"], url, vector_params(vector), headers)


@pytest.mark.parametrize("vector", SIGNATURE_VECTORS, ids=lambda v: v["id"])
def test_it_rejects_each_signature_vector_under_another_token(vector):
    headers = {"X-Twilio-Signature": vector_signature(vector)}
    assert not verify_twilio_signature("54321", vector["url"], vector_params(vector), headers)


@pytest.mark.parametrize("vector", SIGNATURE_VECTORS, ids=lambda v: v["id"])
def test_it_rejects_each_signature_vector_with_a_tampered_field(vector):
    headers = {"X-Twilio-Signature": vector_signature(vector)}
    params = vector_params(vector)
    if isinstance(params, str):
        params = params.replace("value", "valeu")
    elif isinstance(params, list):
        params = [*params, ["Digits", "9"]]
    else:
        params = {**params, "To": "+18005550000"}
    assert not verify_twilio_signature(vector["auth_token"], vector["url"], params, headers)


def test_the_basic_vector_string_to_sign_matches_an_independent_hmac():
    vector = SIGNATURE_VECTORS[0]
    digest = hmac.new(b"12345", vector["string_to_sign"].encode(), hashlib.sha1).digest()
    assert base64.b64encode(digest).decode() == vector["expected_signature"]


def test_a_request_without_a_signature_or_token_is_never_trusted():
    vector = SIGNATURE_VECTORS[0]
    assert not verify_twilio_signature("12345", vector["url"], vector["params"], {})
    headers = {"X-Twilio-Signature": vector["expected_signature"]}
    assert not verify_twilio_signature("", vector["url"], vector["params"], headers)


def test_a_form_signed_with_sha256_as_its_settings_header_says_is_accepted():
    url, form = "https://carebell.example.org/hooks/twilio/inbound", {"Body": "HELP"}
    signature = RequestValidator("shared").compute_signature(url, form, "HMAC_SHA256")
    headers = {"X-Twilio-Signature": signature,
               "X-Twilio-Webhooks-Signature-Settings": "key=k1,algorithm=HMAC_SHA256"}  # fmt: skip
    assert verify_twilio_signature("shared", url, form, headers)
    assert not verify_twilio_signature("shared", url, form, {"X-Twilio-Signature": signature})
    unknown = {**headers, "X-Twilio-Webhooks-Signature-Settings": "algorithm=HMAC_MD5"}
    assert not verify_twilio_signature("shared", url, form, unknown)


def test_the_provider_verifies_with_its_auth_token():
    vector = SIGNATURE_VECTORS[0]
    twilio = provider("http://x", auth_token="12345")
    headers = {"X-Twilio-Signature": vector["expected_signature"]}
    assert twilio.verify_signature(vector["url"], vector["params"], headers)


# --- inbound SMS ----------------------------------------------------------------------


def test_it_parses_an_inbound_sms_and_ignores_unknown_fields():
    data = {
        "MessageSid": "SM" + "1" * 32,
        "SmsSid": "SM" + "1" * 32,
        "AccountSid": SID,
        "From": "+15558675310",
        "To": "+15005550006",
        "Body": "C",
        "NumMedia": "1",
        "NumSegments": "1",
        "MediaUrl0": "https://api.twilio.com/media/ME1",
        "MediaContentType0": "image/jpeg",
        "ReferralNumMedia": "0",
        "SomethingNew": "x",
    }
    inbound = parse_inbound(data)
    assert inbound.message_sid == "SM" + "1" * 32
    assert (inbound.from_number, inbound.to_number, inbound.body) == (
        "+15558675310",
        "+15005550006",
        "C",
    )
    assert inbound.media == [("https://api.twilio.com/media/ME1", "image/jpeg")]


def test_every_documented_inbound_field_name_is_accepted():
    names = [p["name"] for p in load_vectors("inbound_sms_webhook.json")["parameters"]]
    data = {name: "1" for name in names if name.isidentifier()}
    data.update({"MessageSid": "SM1", "From": "+15558675310", "Body": "STOP"})
    inbound = parse_inbound(data)
    assert (inbound.message_sid, inbound.body) == ("SM1", "STOP")


def test_a_body_over_ten_segments_is_refused_before_any_request():
    body = "ж" * (67 * 10 + 1)  # UCS-2: 11 segments, though under 1,600 characters
    requests, (result,) = send(created, message(body=body))
    assert requests == []
    assert (result.permanent, result.error_code) == (True, "too_many_segments")


# --- settling an attempt whose answer was lost ----------------------------------------

SINCE = dt.datetime(2026, 11, 25, 15, 0, tzinfo=dt.UTC)


def listed(*resources, next_page_uri=None):
    """A Messages list page, shaped as Twilio returns it."""
    uri = f"/2010-04-01/Accounts/{SID}/Messages.json?To=%2B15558675310&PageSize=100&Page=0"
    return {
        "end": len(resources) - 1,
        "first_page_uri": uri,
        "messages": list(resources),
        "next_page_uri": next_page_uri,
        "page": 0,
        "page_size": 100,
        "previous_page_uri": None,
        "start": 0,
        "uri": uri,
    }


def recorded(**overrides):
    """The recorded Message resource, sent to `message()`'s number and body at SINCE."""
    resource = dict(SEND_EXAMPLE["response_201_example"]["body"])
    resource.update(
        to="+15558675310", body=message().body, date_created="Wed, 25 Nov 2026 15:00:02 +0000"
    )
    resource.update(overrides)
    return resource


def search(page):
    async def go():
        async with RecordingServer(lambda _r: (200, page, {})) as server:
            found = await provider(server.url).lookup(None, message=message(), since=SINCE)
            return server.requests, found

    return asyncio.run(go())


def test_without_a_sid_it_searches_what_went_to_the_number_since_the_attempt_started():
    requests, found = search(
        listed(recorded(sid="SMold", date_created="Tue, 24 Nov 2026 9:00:00 +0000"), recorded())
    )
    (request,) = requests
    assert (request.method, request.path) == ("GET", f"/2010-04-01/Accounts/{SID}/Messages.json")
    assert request.query == {"To": "+15558675310", "DateSent>": "2026-11-25", "PageSize": "100"}
    assert request.headers["Authorization"].startswith("Basic ")
    assert (found.provider_message_id, found.status) == ("SM" + "a" * 32, "sent")


def test_the_search_matches_a_body_twilio_re_encoded():
    body = message().body.replace(":", "\uff1a")  # smart encoding changes punctuation
    _, found = search(listed(recorded(body=body)))
    assert found is not None


def test_the_search_finds_nothing_when_only_other_texts_went_to_the_number():
    _, found = search(listed(recorded(body="Your order is ready."), recorded(to="+15550000000")))
    assert found is None


def test_the_search_cannot_say_when_the_number_has_more_than_one_page():
    with pytest.raises(ProviderError) as raised:
        search(listed(recorded(body="Other."), next_page_uri="/2010-04-01/Accounts/x?Page=1"))
    assert not raised.value.permanent


def test_a_call_is_never_searched_for():
    from carebell.providers.twilio.voice import TwilioVoiceProvider

    voice = TwilioVoiceProvider(TwilioConfig(account_sid=SID, auth_token="s", base_url="http://x"))
    with pytest.raises(Unsupported):
        asyncio.run(voice.lookup(None, message=message(channel="call"), since=SINCE))


@pytest.mark.parametrize(
    ("error", "unknown", "code"),
    [
        (
            aiohttp.ClientConnectorError(
                ConnectionKey("x", 80, False, True, None, None, None), OSError(111, "no")
            ),
            False,
            "network",
        ),
        (aiohttp.ConnectionTimeoutError(), False, "network"),
        (aiohttp.SocketTimeoutError(), True, "timeout"),
        (TimeoutError(), True, "timeout"),
        (aiohttp.ServerDisconnectedError(), True, "network"),
        (aiohttp.ClientConnectionResetError(), True, "network"),
        (aiohttp.ClientPayloadError(), True, "network"),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v),
)
def test_a_transport_failure_is_unknown_unless_the_request_surely_never_left(error, unknown, code):
    result = network_error(error)
    assert (result.permanent, result.unknown, result.code) == (False, unknown, code)
