"""Sending identities (SPEC §2): a site's SMS number or Messaging Service, its caller
ID and its email From, each written one way, so that two spellings of one number are
one identity and an organization cannot take another's by typing it differently.

Pure: no Django. Each function returns the one spelling or raises ValueError with a
sentence an administrator can act on.
"""

from __future__ import annotations

import functools
import re

import phonenumbers

#: A Twilio Messaging Service id: "MG" and 32 hex digits.
SERVICE_SID = re.compile(r"^MG[0-9a-fA-F]{32}$")
#: A short code (US and Canada: 5 or 6 digits), kept as typed.
SHORT_CODE = re.compile(r"^\d{5,6}$")


def is_service_sid(value: str) -> bool:
    return bool(SERVICE_SID.match(value))


def normalise_phone(value: str, region: str) -> str:
    """`value` in E.164 ("+12025550199"); a number without a country code is read as
    a local number of `region` (ISO country code)."""
    try:
        number = phonenumbers.parse(value.strip(), (region or "US").upper())
    except phonenumbers.NumberParseException:
        raise ValueError(f"{value!r} is not a phone number.") from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError(f"{value!r} is not a valid phone number (e.g. +12025550199).")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_sms_sender(value: str, region: str) -> str:
    """An SMS sender: a Messaging Service id ("MG" + lower-case hex), a short code, or
    a phone number in E.164."""
    value = value.strip()
    if is_service_sid(value):
        return "MG" + value[2:].lower()
    if SHORT_CODE.match(value):
        return value
    if value[:2].upper() == "MG":
        raise ValueError(f"{value!r} is not a Messaging Service id (MG and 32 hex digits).")
    return normalise_phone(value, region)


def normalise_email(value: str) -> str:
    """An email address with its domain in lower case (the local part is the
    mailbox's own business, RFC 5321 §2.4)."""
    local, at, domain = value.strip().rpartition("@")
    if not at or not local or not domain:
        raise ValueError(f"{value!r} is not an email address.")
    return f"{local}@{domain.lower()}"


@functools.lru_cache(maxsize=256)
def spelling_of(value: str) -> str:
    """A sender as received or configured (an inbound text's To, a setting) in the
    spelling carebell stores; as given, trimmed, when it reads as no sender. Kept per
    process (pure, and read on every inbound text: phonenumbers' parse is its cost)."""
    try:
        return normalise_sms_sender(value, "US")
    except ValueError:
        return value.strip()
