from __future__ import annotations

import asyncio
import collections
import datetime as dt
import json
import time
import urllib.parse
import urllib.request

import pytest

from carebell.providers.base import OutgoingMessage
from carebell.providers.twilio.signature import verify_twilio_signature
from carebell.simulator.providers import SimEmailProvider, SimSmsProvider, SimVoiceProvider
from carebell.simulator.server import (
    SIM_ACCOUNT_SID,
    Faults,
    SimConfig,
    config_from_args,
    start_in_thread,
)
from tests.providers.conftest import RecordingServer

TOKEN = "sim-secret"


@pytest.fixture
def sim(settings):
    handle = start_in_thread(SimConfig(port=0, auth_token=TOKEN, callback_delay=0.01, seed=1))
    settings.SIM_URL = handle.url
    settings.SIM_AUTH_TOKEN = TOKEN
    settings.TWILIO_FROM = "+15005550006"
    settings.BASE_URL = "https://carebell.example"
    yield handle
    handle.stop()


def sms(attempt_id: int, **overrides) -> OutgoingMessage:
    fields = dict(
        attempt_id=attempt_id,
        channel="sms",
        to="+15558675310",
        sender="",
        body=f"Reminder {attempt_id}",
        idempotency_key=f"attempt-{attempt_id}",
    )
    fields.update(overrides)
    return OutgoingMessage(**fields)


def api(handle, path: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        handle.url + path, data=data, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def send(provider, *messages):
    return asyncio.run(provider.send_batch(None, list(messages)))


def test_the_twilio_shaped_sms_provider_is_recorded_by_the_sim(sim):
    (result,) = send(SimSmsProvider(), sms(1))
    assert result.accepted and result.provider_message_id.startswith("SM")
    (record,) = api(sim, "/sim/api/messages")["messages"]
    assert (record["to"], record["sender"], record["body"]) == (
        "+15558675310",
        "+15005550006",
        "Reminder 1",
    )


def test_the_same_idempotency_key_gives_the_same_sid_and_no_second_record(sim):
    first = send(SimSmsProvider(), sms(1))[0]
    again = send(SimSmsProvider(), sms(1), sms(1))
    assert {r.provider_message_id for r in again} == {first.provider_message_id}
    listing = api(sim, "/sim/api/messages")
    assert len(listing["messages"]) == 1
    assert listing["duplicates"] == {"attempt-1": 2}
    assert listing["counts"]["duplicates"] == 2


def test_a_batch_of_distinct_keys_is_recorded_once_each(sim):
    results = send(SimSmsProvider(), *[sms(i, to=f"+1555100{i:04d}") for i in range(200)])
    assert all(r.accepted for r in results)
    assert len({r.provider_message_id for r in results}) == 200
    assert api(sim, "/sim/api/messages")["counts"]["sms"] == 200


def test_lookup_finds_an_accepted_message_by_sid_and_by_key(sim):
    provider = SimSmsProvider()
    sent = send(provider, sms(5))[0]

    async def go():
        by_sid = await provider.lookup(None, provider_message_id=sent.provider_message_id)
        by_key = await provider.lookup(None, idempotency_key="attempt-5")
        unknown = await provider.lookup(None, idempotency_key="attempt-6")
        missing = await provider.lookup(None, provider_message_id="SMnope")
        return by_sid, by_key, unknown, missing

    by_sid, by_key, unknown, missing = asyncio.run(go())
    assert by_sid.provider_message_id == sent.provider_message_id
    assert by_key.provider_message_id == sent.provider_message_id
    assert unknown is None and missing is None


def test_a_number_configured_to_fail_gets_a_permanent_opt_out_error(sim):
    api(sim, "/sim/api/faults", {"numbers": {"+15550000001": 21610}})
    (result,) = send(SimSmsProvider(), sms(1, to="+15550000001"))
    assert (result.accepted, result.error_code, result.permanent, result.opt_out) == (
        False,
        "21610",
        True,
        True,
    )
    assert api(sim, "/sim/api/messages")["messages"] == []


def test_throttling_answers_429_with_retry_after(sim):
    api(sim, "/sim/api/faults", {"throttle_rate": 1.0, "retry_after": 3})
    (result,) = send(SimSmsProvider(), sms(1))
    assert (result.accepted, result.permanent, result.retry_after) == (False, False, 3.0)
    assert api(sim, "/sim/api/faults")["throttle_rate"] == 1.0


def test_a_failure_rate_fails_about_that_share_transiently(sim):
    api(sim, "/sim/api/faults", {"failure_rate": 0.5})
    results = send(SimSmsProvider(), *[sms(i) for i in range(200)])
    failed = [r for r in results if not r.accepted]
    assert 60 < len(failed) < 140
    assert all(not r.permanent and r.error_code == "20500" for r in failed)
    assert len(api(sim, "/sim/api/messages")["messages"]) == 200 - len(failed)


def test_latency_is_injected(sim):
    api(sim, "/sim/api/faults", {"latency_ms": 150})
    started = time.monotonic()
    send(SimSmsProvider(), sms(1))
    assert time.monotonic() - started >= 0.15


def test_reset_and_clearing_faults_start_afresh(sim):
    api(sim, "/sim/api/faults", {"failure_rate": 1.0})
    api(sim, "/sim/api/faults", {"clear": True})
    send(SimSmsProvider(), sms(1))
    api(sim, "/sim/api/reset", {})
    assert api(sim, "/sim/api/messages")["messages"] == []


def test_status_callbacks_go_sent_then_delivered_and_are_signed(sim):
    async def go():
        async with RecordingServer(lambda _r: (200, {}, {})) as hook:
            url = f"{hook.url}/hooks/twilio/status/42"
            result = (await SimSmsProvider().send_batch(None, [sms(42, status_callback_url=url)]))[
                0
            ]
            for _ in range(100):
                if len(hook.requests) >= 2:
                    break
                await asyncio.sleep(0.02)
            return result, hook.requests, url

    result, requests, url = asyncio.run(go())
    assert [dict(r.form)["MessageStatus"] for r in requests] == ["sent", "delivered"]
    provider = SimSmsProvider()
    for request in requests:
        form = dict(request.form)
        assert form["MessageSid"] == result.provider_message_id
        assert provider.verify_signature(url, form, request.headers)
        assert provider.parse_status(form, attempt_id=42).attempt_id == 42


def test_callbacks_can_be_turned_off_for_benchmarks(sim):
    api(sim, "/sim/api/faults", {"callbacks": False})

    async def go():
        async with RecordingServer(lambda _r: (200, {}, {})) as hook:
            await SimSmsProvider().send_batch(None, [sms(1, status_callback_url=hook.url)])
            await asyncio.sleep(0.1)
            return hook.requests

    assert asyncio.run(go()) == []


def test_a_patient_reply_is_posted_in_twilio_inbound_shape_and_signed(sim):
    async def go():
        async with RecordingServer(lambda _r: (200, {}, {})) as hook:
            sim.server.config.inbound_url = f"{hook.url}/hooks/sim/inbound"
            await SimSmsProvider().send_batch(None, [sms(1)])
            answer = await asyncio.to_thread(
                api, sim, "/sim/api/reply", {"from": "+15558675310", "body": "C"}
            )
            return answer, hook.requests, sim.server.config.inbound_url

    answer, (request,), url = asyncio.run(go())
    form = dict(request.form)
    assert answer["webhook_status"] == 200
    assert (form["From"], form["To"], form["Body"]) == ("+15558675310", "+15005550006", "C")
    assert form["MessageSid"] == answer["sid"]
    assert verify_twilio_signature(TOKEN, url, form, request.headers)
    assert not verify_twilio_signature("other", url, form, request.headers)
    kinds = [m["kind"] for m in api(sim, "/sim/api/messages?to=%2B15558675310")["messages"]]
    assert kinds == ["sms", "inbound"]


def test_email_is_recorded_with_subject_html_and_headers(sim):
    message = OutgoingMessage(
        attempt_id=3,
        channel="email",
        to="ana@example.org",
        sender="clinic@example.org",
        body="Text version",
        subject="Your visit",
        html="<p>HTML version</p>",
        headers={"List-Unsubscribe": "<https://x/u>"},
        idempotency_key="attempt-3",
    )
    first, again = send(SimEmailProvider(), message, message)
    (record,) = api(sim, "/sim/api/messages?kind=email")["messages"]
    assert first.accepted and record["sid"] == first.provider_message_id
    assert again.provider_message_id == first.provider_message_id
    assert (record["subject"], record["html"]) == ("Your visit", "<p>HTML version</p>")
    assert record["headers"] == {"List-Unsubscribe": "<https://x/u>"}


def test_a_call_keypress_is_posted_to_the_gather_url_signed(sim, settings):
    async def go():
        async with RecordingServer(lambda _r: (200, {}, {})) as hook:
            settings.BASE_URL = hook.url
            call = OutgoingMessage(
                attempt_id=8,
                channel="call",
                to="+15558675310",
                sender="+15005550006",
                body="Your appointment is tomorrow.",
                kind="appt_confirmation",
                language="es",
            )
            (result,) = await SimVoiceProvider().send_batch(None, [call])
            await asyncio.to_thread(
                api, sim, "/sim/api/press", {"call_sid": result.provider_message_id, "digits": "2"}
            )
            return result, hook.requests, hook.url

    result, (request,), base = asyncio.run(go())
    assert request.path == "/hooks/twilio/gather/8"
    form = dict(request.form)
    assert (form["CallSid"], form["Digits"]) == (result.provider_message_id, "2")
    assert verify_twilio_signature(TOKEN, f"{base}/hooks/twilio/gather/8", form, request.headers)
    (call,) = api(sim, "/sim/api/messages?kind=call")["messages"]
    assert call["language"] == "es"


def test_the_browser_page_is_served(sim):
    with urllib.request.urlopen(sim.url + "/", timeout=5) as response:
        page = response.read().decode()
    assert "/sim/api/reply" in page
    assert "innerHTML" not in page  # patient data is inserted as text, never markup


def test_the_command_line_reads_ports_and_faults():
    config = config_from_args(["--port", "9000", "--no-callbacks", "--failure-rate", "0.1"])
    assert (config.port, config.callbacks, config.faults.failure_rate) == (9000, False, 0.1)
    assert isinstance(config.faults, Faults)


def send_with_timeout(provider, seconds: float, *messages):
    import aiohttp

    async def go():
        timeout = aiohttp.ClientTimeout(total=seconds)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            return await provider.send_batch(session, list(messages))

    return asyncio.run(go())


def test_a_timeout_after_acceptance_keeps_the_message_and_loses_the_answer(sim):
    api(sim, "/sim/api/faults", {"timeout_rate": 1.0, "stall_seconds": 2})
    provider = SimSmsProvider()
    (result,) = send_with_timeout(provider, 0.3, sms(1))
    assert (result.accepted, result.unknown, result.permanent) == (False, True, False)
    assert result.error_code == "timeout"
    (record,) = api(sim, "/sim/api/messages")["messages"]
    found = asyncio.run(provider.lookup(None, idempotency_key="attempt-1"))
    assert found.provider_message_id == record["sid"]


def test_a_connection_dropped_after_acceptance_keeps_the_message_and_loses_the_answer(sim):
    api(sim, "/sim/api/faults", {"drop_rate": 1.0})
    (result,) = send(SimSmsProvider(), sms(1))
    assert (result.accepted, result.unknown, result.error_code) == (False, True, "network")
    assert len(api(sim, "/sim/api/messages")["messages"]) == 1


def test_a_resend_under_a_kept_key_is_answered_with_the_kept_message_whatever_the_faults(sim):
    api(sim, "/sim/api/faults", {"drop_rate": 1.0})
    send(SimSmsProvider(), sms(1))
    api(sim, "/sim/api/faults", {"clear": True, "failure_rate": 1.0})
    (again,) = send(SimSmsProvider(), sms(1))
    (record,) = api(sim, "/sim/api/messages")["messages"]
    assert again.accepted and again.provider_message_id == record["sid"]


def test_fault_rates_are_shares_of_one_draw_and_add_up(sim):
    faults = {"throttle_rate": 0.2, "failure_rate": 0.2, "error_rate": 0.2, "drop_rate": 0.2}
    api(sim, "/sim/api/faults", faults)
    results = send(SimSmsProvider(), *[sms(i, to=f"+1555100{i:04d}") for i in range(400)])
    codes = collections.Counter("ok" if r.accepted else r.error_code for r in results)
    assert set(codes) == {"ok", "20429", "20500", "21211", "network"}
    assert all(50 < count < 120 for count in codes.values()), codes
    kept = len(api(sim, "/sim/api/messages")["messages"])
    assert kept == codes["ok"] + codes["network"]  # drops are kept, refusals are not


def test_the_twilio_list_finds_what_went_to_a_number_since_a_day(sim):
    provider = SimSmsProvider()
    send(provider, sms(1, to="+15550000001"), sms(2, to="+15550000002"))
    url = f"{sim.url}/2010-04-01/Accounts/{SIM_ACCOUNT_SID}/Messages.json"
    today = dt.datetime.now(dt.UTC).date()
    tomorrow = today + dt.timedelta(days=1)

    def listing(day):
        query = urllib.parse.urlencode({"To": "+15550000001", "DateSent>": day.isoformat()})
        with urllib.request.urlopen(f"{url}?{query}", timeout=5) as response:
            return json.loads(response.read())

    (found,) = listing(today)["messages"]
    assert (found["to"], found["body"]) == ("+15550000001", "Reminder 1")
    assert listing(tomorrow)["messages"] == []
    assert listing(today)["next_page_uri"] is None


def test_the_command_line_reads_the_lost_answer_faults():
    lost = ["--timeout-rate", "0.05", "--stall-seconds", "3", "--drop-rate", "0.01"]
    config = config_from_args([*lost, "--error-rate", "0.02", "--retry-after", "2"])
    faults = config.faults
    assert (faults.timeout_rate, faults.stall_seconds, faults.drop_rate) == (0.05, 3.0, 0.01)
    assert (faults.error_rate, faults.retry_after) == (0.02, 2.0)
