"""Twilio's request signatures, once for SMS, voice and the simulator that plays
Twilio: X-Twilio-Signature is an HMAC over the URL and the sorted form fields (JSON
bodies via bodySHA256). A form signed over the URL carebell was called at is checked
here with one HMAC; everything else goes to twilio's own RequestValidator.

https://www.twilio.com/docs/usage/webhooks/webhooks-security
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Mapping
from typing import Any

from django.utils.datastructures import CaseInsensitiveMapping
from multidict import MultiDict
from twilio.request_validator import RequestValidator, get_signature_algorithm

from carebell.providers.base import header

SIGNATURE_HEADER = "X-Twilio-Signature"
SIGNATURE_SETTINGS_HEADER = "X-Twilio-Webhooks-Signature-Settings"
#: The algorithms X-Twilio-Webhooks-Signature-Settings may name → hashlib's names.
#: Without the header a request is signed with the Auth Token over HMAC-SHA1.
HASHES = {"HMAC_SHA1": "sha1", "HMAC_SHA256": "sha256"}


def verify_twilio_signature(
    auth_token: str, url: str, params: Any, headers: Mapping[str, str]
) -> bool:
    """X-Twilio-Signature check (HMAC over the URL and the sorted form fields; JSON
    bodies via bodySHA256). No token, no trust.

    A form signed over `url` as carebell was called at (the callback URL carebell
    gave, or the one configured at Twilio) is told by one HMAC, computed here; any
    other request gets twilio's RequestValidator's whole check (the URL with and
    without its port, a JSON body's hash), which costs it a second HMAC and a URL
    parse."""
    signature = _header(headers, SIGNATURE_HEADER)
    if not auth_token or not signature:
        return False
    if isinstance(params, list | tuple):
        params = MultiDict(params)
    settings_header = _header(headers, SIGNATURE_SETTINGS_HEADER)
    algorithm = get_signature_algorithm(settings_header) if settings_header else "HMAC_SHA1"
    if not isinstance(params, str) and algorithm.upper() in HASHES:
        expected = signature_of(auth_token, url, params, algorithm)
        if hmac.compare_digest(expected.encode(), signature.encode()):
            return True
    return RequestValidator(auth_token).validate(url, params, signature, algorithm=algorithm)


def signature_of(auth_token: str, url: str, params: Any, algorithm: str = "HMAC_SHA1") -> str:
    """The signature Twilio sends for a form POST of `params` to `url`: base64 of the
    HMAC, keyed by the token, of the URL followed by each field's name and value, the
    names sorted and each name's distinct values sorted. `params` is a Django
    QueryDict (every value of a field counts), a MultiDict or a plain mapping."""
    text = _signed_text(url, _fields(params))
    digest = hmac.digest(auth_token.encode(), text.encode(), HASHES[algorithm.upper()])
    return base64.b64encode(digest).decode("ascii")


def _fields(params: Any) -> dict[str, list]:
    if not params:
        return {}
    if hasattr(params, "lists"):  # Django's QueryDict (a MultiValueDict)
        return dict(params.lists())
    if hasattr(params, "getall"):  # multidict's MultiDict
        return {name: params.getall(name) for name in set(params)}
    return {name: [params[name]] for name in params}


def _signed_text(url: str, fields: dict[str, list]) -> str:
    parts = [url]
    for name in sorted(fields):
        values = fields[name]
        if len(values) == 1:
            parts.append(name + values[0])
        else:
            parts.extend(name + value for value in sorted(set(values)))
    return "".join(parts)


def _header(headers: Mapping[str, str], name: str) -> str:
    # Django's request.headers (and the hooks' own view of the request's headers)
    # find a name in any case by themselves; a plain mapping is searched.
    if isinstance(headers, CaseInsensitiveMapping):
        return headers.get(name) or ""
    return header(headers, name)


def sign(auth_token: str, url: str, form: Mapping[str, str]) -> str:
    """X-Twilio-Signature for a form POST to `url`, exactly as Twilio computes it."""
    return signature_of(auth_token, url, dict(form))
