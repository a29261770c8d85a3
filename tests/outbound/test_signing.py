"""Signatures and bodies, checked against the `standardwebhooks` reference library."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest
from standardwebhooks import Webhook

from carebell.outbound import signing

SENT_AT = dt.datetime(2026, 11, 25, 15, 0, 7, 900_000, tzinfo=dt.UTC)
RAW = bytes(range(32))


@pytest.mark.parametrize(
    "secret",
    [
        "whsec_" + base64.b64encode(RAW).decode(),
        base64.b64encode(RAW).decode(),  # no prefix
        "whsec_" + base64.b64encode(RAW).decode().rstrip("="),  # no padding
        signing.new_secret(),
    ],
)
def test_each_signature_is_the_reference_librarys(secret):
    body = signing.body_of("contact.opted_out", '{"contact": {"id": 3}}', SENT_AT)
    headers = signing.headers_for("msg_1", [secret], body, SENT_AT)
    assert headers["webhook-signature"] == Webhook(secret).sign("msg_1", SENT_AT, body.decode())
    assert headers["webhook-timestamp"] == str(int(SENT_AT.timestamp()))  # whole seconds
    assert Webhook(secret).verify(body, headers)["data"] == {"contact": {"id": 3}}


def test_the_body_carries_the_stored_payload_as_it_is_in_the_envelope():
    stored = '{"patient": {"id": 9}, "note": "Zoë \\"C\\""}'
    happened = dt.datetime(2026, 11, 25, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    body = signing.body_of("appointment.confirmed", stored, happened)
    assert stored.encode() in body  # not decoded and encoded again
    assert json.loads(body) == {
        "type": "appointment.confirmed",
        "timestamp": "2026-11-25T15:00:00Z",
        "data": {"patient": {"id": 9}, "note": 'Zoë "C"'},
    }
