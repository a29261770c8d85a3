"""Twilio's request signatures, once for SMS, voice and the simulator that plays
Twilio: X-Twilio-Signature is an HMAC over the URL and the sorted form fields (JSON
bodies via bodySHA256), computed and checked with twilio's own RequestValidator.

https://www.twilio.com/docs/usage/webhooks/webhooks-security
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any

from django.utils.datastructures import CaseInsensitiveMapping
from multidict import MultiDict
from twilio.request_validator import RequestValidator, get_signature_algorithm

from carebell.providers.base import header

SIGNATURE_HEADER = "X-Twilio-Signature"
SIGNATURE_SETTINGS_HEADER = "X-Twilio-Webhooks-Signature-Settings"


def verify_twilio_signature(
    auth_token: str, url: str, params: Any, headers: Mapping[str, str]
) -> bool:
    """X-Twilio-Signature check with twilio's RequestValidator (HMAC over the URL and
    the sorted form fields; JSON bodies via bodySHA256). No token, no trust.

    A form signed over `url` as carebell was called at (the callback URL carebell
    gave, or the one configured at Twilio) is told by one HMAC; anything else gets
    the validator's whole check (the URL with and without its port, a JSON body's
    hash), which costs a status callback a second HMAC and a URL parse."""
    signature = _header(headers, SIGNATURE_HEADER)
    if not auth_token or not signature:
        return False
    if isinstance(params, list | tuple):
        params = MultiDict(params)
    algorithm = get_signature_algorithm(_header(headers, SIGNATURE_SETTINGS_HEADER))
    validator = RequestValidator(auth_token)
    if not isinstance(params, str):
        try:
            expected = validator.compute_signature(url, params, algorithm)
        except ValueError:  # an algorithm the validator does not know: it refuses below
            expected = ""
        if hmac.compare_digest(expected.encode(), signature.encode()):
            return True
    return validator.validate(url, params, signature, algorithm=algorithm)


def _header(headers: Mapping[str, str], name: str) -> str:
    # Django's request.headers finds a name in any case by itself; a plain mapping
    # is searched.
    if isinstance(headers, CaseInsensitiveMapping):
        return headers.get(name) or ""
    return header(headers, name)


def sign(auth_token: str, url: str, form: Mapping[str, str]) -> str:
    """X-Twilio-Signature for a form POST to `url`, exactly as Twilio computes it."""
    return RequestValidator(auth_token).compute_signature(url, dict(form))
