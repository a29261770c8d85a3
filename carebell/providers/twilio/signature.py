"""Twilio's request signatures, once for SMS, voice and the simulator that plays
Twilio: X-Twilio-Signature is an HMAC over the URL and the sorted form fields (JSON
bodies via bodySHA256), computed and checked with twilio's own RequestValidator.

https://www.twilio.com/docs/usage/webhooks/webhooks-security
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from multidict import MultiDict
from twilio.request_validator import RequestValidator, get_signature_algorithm

from carebell.providers.base import header

SIGNATURE_HEADER = "X-Twilio-Signature"
SIGNATURE_SETTINGS_HEADER = "X-Twilio-Webhooks-Signature-Settings"


def verify_twilio_signature(
    auth_token: str, url: str, params: Any, headers: Mapping[str, str]
) -> bool:
    """X-Twilio-Signature check with twilio's RequestValidator (HMAC over the URL and
    the sorted form fields; JSON bodies via bodySHA256). No token, no trust."""
    signature = header(headers, SIGNATURE_HEADER)
    if not auth_token or not signature:
        return False
    if isinstance(params, list | tuple):
        params = MultiDict(params)
    algorithm = get_signature_algorithm(header(headers, SIGNATURE_SETTINGS_HEADER))
    return RequestValidator(auth_token).validate(url, params, signature, algorithm=algorithm)


def sign(auth_token: str, url: str, form: Mapping[str, str]) -> str:
    """X-Twilio-Signature for a form POST to `url`, exactly as Twilio computes it."""
    return RequestValidator(auth_token).compute_signature(url, dict(form))
