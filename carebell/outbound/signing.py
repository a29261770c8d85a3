"""Signing per the Standard Webhooks specification (https://www.standardwebhooks.com/):
`webhook-id`, `webhook-timestamp` and `webhook-signature`, the last holding one
`v1,<base64 HMAC-SHA256 of "id.timestamp.body">` per secret in force — two during a
rotation, so a receiver that still has the previous secret verifies too.

The signatures are made by the `standardwebhooks` reference library itself, so what
carebell sends is what every receiver's library checks.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
from functools import lru_cache

from standardwebhooks import Webhook

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
def _signer(secret: str) -> Webhook:
    # Decoding the secret costs more than signing with it; endpoints are few.
    return Webhook(secret)


def body_of(event_type: str, data: dict, created_at: dt.datetime) -> str:
    """The JSON body of an event: the envelope the specification recommends."""
    envelope = {
        "type": event_type,
        "timestamp": created_at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        "data": data,
    }
    return json.dumps(envelope, separators=(",", ":"), sort_keys=True)


def headers_for(message_id: str, secrets: list[str], body: str, now: dt.datetime) -> dict:
    """The signed headers of one attempt sent at `now` (whole seconds, UTC)."""
    stamp = now.astimezone(dt.UTC).replace(microsecond=0)
    signatures = " ".join(_signer(s).sign(message_id, stamp, body) for s in secrets)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(stamp.timestamp())),
        "webhook-signature": signatures,
        "content-type": "application/json",
        "user-agent": "carebell-webhooks/1",
    }
