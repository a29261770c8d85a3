"""Verification codes (SPEC §3.5): proving that a mobile number or an email reaches
the person it was written down for.

`issue_code` sends a one-time code through the outbox (at once: the person is at the
counter or on the phone). The person reads it back to staff (`check_code` with
method "staff"), types it on the patient page its email links to ("patient_page"),
or texts it back (`check_reply`, called by the inbound text handler: "reply").

The rules: 6 digits from the operating system's CSPRNG (`secrets`); a code lives 10
minutes and works once; a code is dead after 5 wrong tries; at most 3 codes per
contact point in any hour; only the newest code of a contact point counts. Only a
keyed hash of the digits is stored (HMAC-SHA256 with the site's SECRET_KEY and a
salt of its own), and the digits are never logged: they exist in clear only in the
message that carries them to the person.

Verifying marks the contact point verified with when and how, and plans the
patient's messages again, so what a site that sends only to verified points held
back (unverified) goes. A changed number or email loses the flag
(`people.actions.save_contact_point`), and a code sent to the old value no longer
verifies the new one.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from dataclasses import dataclass
from enum import StrEnum

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac

from carebell import outbox
from carebell.audit import trail
from carebell.core.placeholders import RenderContext, render
from carebell.core.reasons import Code, reason
from carebell.core.vocab import Channel, ContactPointKind, Kind
from carebell.people.models import ContactPoint, VerificationCode

DIGITS = 6
LIFETIME = dt.timedelta(minutes=10)
MAX_WRONG_TRIES = 5
MAX_CODES_PER_HOUR = 3
LINK_SALT = "carebell.verify"
_KEY_SALT = "carebell.people.verification"
_SIX_DIGITS = re.compile(r"^\s*(\d{6})\s*$")
_CHANNEL_OF_KIND = {ContactPointKind.MOBILE: Channel.SMS, ContactPointKind.EMAIL: Channel.EMAIL}


class Method(StrEnum):
    """How a contact point was verified (ContactPoint.verified_method)."""

    STAFF = "staff"
    REPLY = "reply"
    PATIENT_PAGE = "patient_page"


class Outcome(StrEnum):
    VERIFIED = "verified"
    WRONG = "wrong"  # tries are left
    LOCKED = "locked"  # too many wrong tries: send a new code
    EXPIRED = "expired"
    NO_CODE = "no_code"  # none sent, already used, or sent to a value since changed


@dataclass(frozen=True)
class Issued:
    code: VerificationCode
    message_id: int
    verify_url: str  # the patient page where the code may be typed


@dataclass(frozen=True)
class Checked:
    outcome: Outcome
    tries_left: int = 0

    @property
    def verified(self) -> bool:
        return self.outcome is Outcome.VERIFIED


def channel_for(point: ContactPoint) -> Channel | None:
    """The channel a code goes over for this kind of point (a home phone gets none)."""
    return _CHANNEL_OF_KIND.get(point.kind)


def issue_code(
    point: ContactPoint, *, by=None, system: str = "", now: dt.datetime | None = None
) -> Issued:
    """Send a new code to `point` (a mobile by SMS, an email by email). Raises
    ValidationError, sending nothing, when the point cannot take one (a home phone,
    a value that does not parse, opted out) or has had 3 codes in the last hour."""
    now = now or timezone.now()
    channel = channel_for(point)
    if channel is None:
        raise ValidationError("A code goes to a mobile number or an email address.")
    with transaction.atomic():
        # The lock makes the hourly count exact when two requests race.
        point = (
            ContactPoint.objects.select_for_update(of=("self",))
            .select_related("contact__patient__site")
            .get(pk=point.pk)
        )
        _check_may_send(point, channel, now)
        digits = f"{secrets.randbelow(10**DIGITS):0{DIGITS}d}"
        salt = secrets.token_hex(8)
        code = VerificationCode.objects.create(
            contact_point=point, address=point.value, channel=channel, created_at=now,
            expires_at=now + LIFETIME, code_hash=f"{salt}${_digest(salt, point, digits)}",
            requested_by=by if getattr(by, "is_authenticated", False) else None,
        )  # fmt: skip
        url = verify_url(code)
        subject, body = _text(point, channel, digits, url)
        message = outbox.queue_verification_code(
            point.contact.patient.site, point, channel, subject, body, now=now
        )
        detail = {"channel": channel.value, "code_id": code.pk}
        if by is None:
            detail["system"] = system or "carebell"
        trail.record(by, "send_code", point, detail=detail, at=now)
    return Issued(code, message.pk, url)


def check_code(
    point: ContactPoint,
    digits: str,
    *,
    method: Method | str,
    by=None,
    system: str = "",
    now: dt.datetime | None = None,
) -> Checked:
    """Check `digits` against the newest code of `point`; right, the point is verified
    (with `method`) and the code used up; wrong, one try is spent."""
    now = now or timezone.now()
    method = Method(method)
    with transaction.atomic():
        point = ContactPoint.objects.select_for_update(of=("self",)).get(pk=point.pk)
        code = _live_code(point)
        checked = _judge(code, point, str(digits or ""), now)
        if checked.verified:
            _mark_verified(point, code, method, now)
        detail = {"outcome": checked.outcome.value, "method": method.value}
        if code is not None:
            detail["code_id"] = code.pk
        if by is None:
            detail["system"] = system or method.value
        trail.record(by, "check_code", point, detail=detail, at=now)
    return checked


def check_reply(points, body: str, now: dt.datetime) -> bool:
    """A text of six digits from a number with a code out: check it against the newest
    code of each of `points` (the contact points with that number at the site) that
    has one. True when the text was such an answer (right or wrong), so it is not left
    for staff to read as free text."""
    match = _SIX_DIGITS.match(body or "")
    if match is None:
        return False
    checked = None
    for point in points:
        if point.kind != ContactPointKind.MOBILE or _live_code(point) is None:
            continue
        checked = check_code(point, match.group(1), method=Method.REPLY, now=now)
        if checked.verified:
            break
    if checked is not None:
        _answer_reply(point, checked, now)
    return checked is not None


_REPLIES = {
    "en": {"verified": "{site}: thank you, this number is verified.",
           "wrong": "{site}: that code is not right. Please check it and try again.",
           "closed": "{site}: that code no longer works. Please ask us for a new one."},
    "es": {"verified": "{site}: gracias, este número quedó verificado.",
           "wrong": "{site}: esa clave no es correcta. Revísela e inténtelo de nuevo.",
           "closed": "{site}: esa clave ya no sirve. Pídanos una nueva."},
}  # fmt: skip


def _answer_reply(point: ContactPoint, checked: Checked, now: dt.datetime) -> None:
    """Tell the person who texted a code what came of it (a reply, so it goes at once;
    only to a number a code was sent to, so it answers no stranger)."""
    contact = point.contact
    words = _REPLIES.get(contact.language, _REPLIES["en"])
    key = {Outcome.VERIFIED: "verified", Outcome.WRONG: "wrong"}.get(checked.outcome, "closed")
    site = contact.patient.site
    text = words[key].format(site=site.name)
    outbox.queue_reply(site, point.value, Kind.KEYWORD_REPLY, now=now, language=contact.language,
                       body=text, patient_id=contact.patient_id)  # fmt: skip


def verify_url(code: VerificationCode) -> str:
    """The signed patient page link where the code can be typed (SPEC §7.5)."""
    token = signing.dumps({"c": code.pk}, salt=LINK_SALT, compress=True)
    return f"{settings.BASE_URL}/p/verify/{token}"


def code_from_link(token: str) -> VerificationCode | None:
    """The code a patient page link names, while it may still be used; else None."""
    try:
        data = signing.loads(token, salt=LINK_SALT, max_age=LIFETIME.total_seconds())
    except signing.BadSignature:  # includes SignatureExpired
        return None
    if not isinstance(data, dict) or not isinstance(data.get("c"), int):
        return None
    code = (
        VerificationCode.objects.select_related("contact_point__contact__patient__site")
        .filter(pk=data["c"])
        .first()
    )
    return code


def codes_sent_last_hour(point: ContactPoint, now: dt.datetime) -> int:
    return VerificationCode.objects.filter(
        contact_point=point, created_at__gt=now - dt.timedelta(hours=1)
    ).count()


# The steps ---------------------------------------------------------------------------------


def _check_may_send(point: ContactPoint, channel: Channel, now: dt.datetime) -> None:
    if not point.is_valid:
        raise ValidationError("This number or email does not parse: correct it first.")
    if getattr(point, f"opted_out_{channel.value}"):
        raise ValidationError("This number or email is opted out: no code can be sent to it.")
    if codes_sent_last_hour(point, now) >= MAX_CODES_PER_HOUR:
        first = (
            VerificationCode.objects.filter(
                contact_point=point, created_at__gt=now - dt.timedelta(hours=1)
            )
            .order_by("created_at")
            .values_list("created_at", flat=True)
            .first()
        )
        minutes = max(1, int((first + dt.timedelta(hours=1) - now).total_seconds() // 60) + 1)
        raise ValidationError(
            f"Three codes were sent to it in the last hour: try again in {minutes} minutes."
        )


def _digest(salt: str, point: ContactPoint, digits: str) -> str:
    value = f"{salt}:{point.pk}:{digits}"
    return salted_hmac(_KEY_SALT, value, algorithm="sha256").hexdigest()


def _live_code(point: ContactPoint) -> VerificationCode | None:
    """The newest code of `point`, if it is still unused and was sent to its value."""
    code = VerificationCode.objects.filter(contact_point=point).order_by("-created_at", "-id")
    code = code.first()
    if code is None or code.used_at is not None or code.address != point.value:
        return None
    return code


def _judge(code, point: ContactPoint, digits: str, now: dt.datetime) -> Checked:
    if code is None:
        return Checked(Outcome.NO_CODE)
    if now >= code.expires_at:
        return Checked(Outcome.EXPIRED)
    if code.wrong_tries >= MAX_WRONG_TRIES:
        return Checked(Outcome.LOCKED)
    salt, _, stored = code.code_hash.partition("$")
    if _SIX_DIGITS.match(digits) and constant_time_compare(
        stored, _digest(salt, point, digits.strip())
    ):
        return Checked(Outcome.VERIFIED)
    VerificationCode.objects.filter(pk=code.pk).update(wrong_tries=F("wrong_tries") + 1)
    left = MAX_WRONG_TRIES - code.wrong_tries - 1
    return Checked(Outcome.WRONG if left > 0 else Outcome.LOCKED, max(left, 0))


def _mark_verified(point: ContactPoint, code: VerificationCode, method: Method, now) -> None:
    from carebell.planning.replan import replan_patients

    VerificationCode.objects.filter(pk=code.pk).update(used_at=now)
    ContactPoint.objects.filter(pk=point.pk).update(
        verified_at=now, verified_method=method.value, updated_at=now
    )
    patient = point.contact.patient
    replan_patients(patient.site, [patient.pk], now=now, why=reason(Code.RECIPIENT_CHANGED))


def _text(point: ContactPoint, channel: Channel, digits: str, url: str) -> tuple[str, str]:
    """The code message's subject and body, from the site's verification format in use
    (else carebell's default), in the contact's language. An email also gives the
    patient page link."""
    from carebell.formats.service import default_template
    from carebell.messaging.models import MessageTemplate

    site, language = point.contact.patient.site, point.contact.language
    template = MessageTemplate.objects.filter(
        site=site, kind=Kind.VERIFICATION, channel=channel, language=language, in_use=True
    ).first() or default_template(Kind.VERIFICATION, channel, language)
    values = {"SITENAME": site.name, "SITEPHONE": site.phone, "SITEADDRESS": site.address,
              "CODE": digits, "CODEMINUTES": int(LIFETIME.total_seconds() // 60)}  # fmt: skip
    context = RenderContext(language=language, time_zone=site.zone, channel=channel)
    subject = render(template.subject or "", values, context).text if template.subject else ""
    body = render(template.body, values, context).text
    if channel == Channel.EMAIL:
        lead = "Puede escribir la clave aquí:" if language == "es" else "You can type it here:"
        body = f"{body}\n\n{lead} {url}"
    return subject, body
