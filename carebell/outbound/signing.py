"""Signing per the Standard Webhooks specification (https://www.standardwebhooks.com/):
`webhook-id`, `webhook-timestamp` and `webhook-signature`, the last holding one
`v1,<base64 HMAC-SHA256 of "id.timestamp.body">` per secret in force — two during a
rotation, so a receiver that still has the previous secret verifies too.

A signature is one HMAC-SHA256 over the bytes sent, made with the standard
library's one-shot `hmac.digest` and the secret decoded once per secret (not per
delivery); the tests check every signature with the `standardwebhooks` reference
library, so what carebell sends is what every receiver's library verifies.
"""

from __future__ import annotations

import base64
import datetime as dt
import hmac
import json
import os
from functools import lru_cache

PREFIX = "whsec_"
#: 32 random bytes: the specification asks for 24 to 64.
SECRET_BYTES = 32


def new_secret() -> str:
    """A fresh endpoint secret, `whsec_` and the base64 of 32 random bytes."""
    return PREFIX + base64.b64encode(os.urandom(SECRET_BYTES)).decode()


def new_message_id() -> str:
    """A delivery's `webhook-id`: the same on every attempt, unique across all."""
    return "msg_" + os.urandom(16).hex()


@lru_cache(maxsize=1024)
def _key(secret: str) -> bytes:
    # As the reference library reads a secret: without its prefix, base64 that may
    # lack its padding. Decoding costs more than signing; endpoints are few.
    if secret.startswith(PREFIX):
        secret = secret[len(PREFIX) :]
    return base64.b64decode(secret + "==")


def body_of(event_type: str, data_json: str, created_at: dt.datetime) -> bytes:
    """The JSON body of an event, the envelope the specification recommends:
    `data_json` is the event's payload as stored (JSON text), put in as it is."""
    stamp = created_at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    head = '{"data":'
    tail = f',"timestamp":{json.dumps(stamp)},"type":{json.dumps(event_type)}}}'
    return (head + data_json + tail).encode()


def signature(secret: str, message_id: str, timestamp: str, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256 of "id.timestamp.body">` with one secret."""
    digest = hmac.digest(_key(secret), f"{message_id}.{timestamp}.".encode() + body, "sha256")
    return "v1," + base64.b64encode(digest).decode()


def headers_for(message_id: str, secrets: list[str], body: bytes, now: dt.datetime) -> dict:
    """The signed headers of one attempt sent at `now` (whole seconds, UTC)."""
    timestamp = str(int(now.timestamp()))
    return {
        "webhook-id": message_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": " ".join(signature(s, message_id, timestamp, body) for s in secrets),
        "content-type": "application/json",
        "user-agent": "carebell-webhooks/1",
    }
