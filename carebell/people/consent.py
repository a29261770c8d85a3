"""The consent ledger (SPEC §3.5): the one way in for a grant or revocation of consent.

Every door records consent here — the staff panel (paper, verbal, web form), the
point of sale's signature pad through the API, CSV import, and the SMS keywords STOP
and START (`carebell.twoway.consent`) — so each record carries the same facts: the
contact point and the value it had, the channel, grant or revoke, the source, the
exact wording shown and its version, when, and who (a staff member, or the part of
carebell or the system that captured it). Records are only ever added: the database
refuses to change or delete them (audit migration 0002, people migration 0004).

A record takes effect at once, in its transaction: the contact point's consent flag
follows the newest record, and the patient's pending messages are planned again — a
grant lets through what the site's opt-in requirement held back (no_consent), a
revocation blocks what is pending over that channel.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from carebell import events
from carebell.audit import trail
from carebell.core.reasons import Code, reason
from carebell.core.vocab import Channel, ConsentSource, ContactPointKind
from carebell.people.models import ConsentRecord, ConsentWording, ContactPoint, Patient

GRANT = ConsentRecord.Action.GRANT
REVOKE = ConsentRecord.Action.REVOKE

#: The largest signature image kept (a signature pad's PNG is a few kilobytes).
MAX_SIGNATURE_BYTES = 256 * 1024
MAX_WORDING = 4000

#: Which channels a kind of contact point can consent to.
CHANNELS_OF_KIND = {
    ContactPointKind.MOBILE: (Channel.SMS, Channel.CALL),
    ContactPointKind.HOME: (Channel.CALL,),
    ContactPointKind.EMAIL: (Channel.EMAIL,),
}
_FLAGS = {Channel.SMS: "consent_sms", Channel.CALL: "consent_call"}
_SHA256 = re.compile(r"^[0-9a-f]{64}$")

#: carebell's own wording, shown until a site writes its own (version "carebell-1").
DEFAULT_VERSION = "carebell-1"
DEFAULT_WORDING = (
    "I agree that {site} may send me text messages and automated calls about my "
    "prescriptions and appointments at this number. Message frequency varies. Message "
    "and data rates may apply. Reply STOP to stop texts and HELP for help. Agreeing is "
    "not a condition of any purchase or service."
)


def current_wording(site) -> tuple[str, str]:
    """(version, wording) the site shows today: its newest ConsentWording, else
    carebell's default with the site's name."""
    row = ConsentWording.objects.filter(site=site).first()
    if row is not None:
        return row.version, row.wording
    return DEFAULT_VERSION, DEFAULT_WORDING.format(site=site.name)


def publish_wording(site, version: str, wording: str, *, by, now=None) -> ConsentWording:
    """Add a new version of the site's consent wording (the old ones stay, as the
    records that name them need)."""
    now = now or timezone.now()
    version, wording = (version or "").strip(), (wording or "").strip()
    errors = {}
    if not version or len(version) > 32:
        errors["version"] = "Give the version a name of 1 to 32 characters."
    elif ConsentWording.objects.filter(site=site, version=version).exists() or (
        version == DEFAULT_VERSION
    ):
        errors["version"] = "That version exists already: give the new wording a new name."
    if not wording or len(wording) > MAX_WORDING:
        errors["wording"] = f"Write the wording (at most {MAX_WORDING} characters)."
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        row = ConsentWording.objects.create(
            site=site, version=version, wording=wording, created_at=now, created_by=by
        )
        trail.record(by, "create", row, site_id=site.pk, detail={"fields": ["version", "wording"]},
                     at=now)  # fmt: skip
    return row


def record_consent(
    point: ContactPoint,
    channel: str,
    action: str,
    *,
    source: str,
    wording: str,
    wording_version: str,
    by=None,
    system: str = "",
    evidence: str = "",
    signature: bytes | None = None,
    signature_sha256: str = "",
    now: dt.datetime | None = None,
) -> ConsentRecord:
    """Record that the owner of `point` granted (`action` "grant") or revoked
    ("revoke") consent to `channel` ("sms", "call", "email"), and apply it at once.

    `source` is one of ConsentSource ("signature_pad", "web_form", "paper", "verbal",
    "sms_keyword", "import"); `wording` the exact words shown and `wording_version`
    their version. `by` is the staff member who captured it, or None with `system`
    naming what did (the point of sale, an import file). A signature pad sends the
    image (`signature`, PNG bytes, kept with its SHA-256) or only its hash
    (`signature_sha256`, 64 hex digits); sending both, they must agree.
    Raises ValidationError (nothing written) for anything not right."""
    now = now or timezone.now()
    channel, action, source = _checked(point, channel, action, source, by, system)
    digest = _signature_digest(signature, signature_sha256, source)
    wording, wording_version = _checked_wording(wording, wording_version)
    if len(evidence or "") > 300:
        raise ValidationError({"evidence": "Keep the evidence to 300 characters."})
    with transaction.atomic():
        point = (
            ContactPoint.objects.select_for_update()
            .select_related("contact__patient")
            .get(pk=point.pk)
        )
        patient = point.contact.patient
        record = ConsentRecord.objects.create(
            site_id=patient.site_id, contact_point=point, address=point.value, channel=channel,
            action=action, source=source, wording=wording, wording_version=wording_version,
            recorded_at=now, captured_by=by, captured_by_system="" if by else system[:64],
            evidence=evidence or "", signature_sha256=digest, signature_image=signature or None,
        )  # fmt: skip
        _set_flags([point.pk], channel, action == GRANT)
        _audit(record, by, system, now)
        _emit(record, patient, now)
        if action == GRANT and patient.consented_at is None:
            _patient_consents(patient, by=by, system=system, now=now)  # replans too
        else:
            _replan(patient, now)
    return record


def record_keyword(
    site_ids: Iterable[int],
    address: str,
    channel: Channel,
    action: str,
    *,
    source: str,
    text: str,
    now: dt.datetime,
) -> int:
    """The ledger's side of an opt-out or opt-in by the person's own word (STOP,
    START, a carrier's report of a STOP, an email unsubscribe link), for every contact
    point with `address` at these sites: one record each, and the consent flag set.
    Called by `carebell.twoway.consent`, which blocks or plans again itself.
    Returns how many records were written."""
    consent_source, wording, system = _keyword_terms(source, text, channel, action)
    version = "keyword" if consent_source == ConsentSource.SMS_KEYWORD else source[:32]
    points = list(
        ContactPoint.objects.filter(value=address, contact__patient__site_id__in=list(site_ids))
        .filter(kind__in=[k for k, chans in CHANNELS_OF_KIND.items() if channel in chans])
        .values_list("id", "contact__patient__site_id")
    )
    ConsentRecord.objects.bulk_create(
        [
            ConsentRecord(
                site_id=site_id, contact_point_id=point_id, address=address, channel=channel,
                action=action, source=consent_source, wording=wording,
                wording_version=version,
                recorded_at=now, captured_by_system=system, evidence=(text or "")[:300],
            )
            for point_id, site_id in points
        ]
    )  # fmt: skip
    _set_flags([p for p, _ in points], channel, action == GRANT)
    return len(points)


def ledger(site, start: dt.datetime | None = None, end: dt.datetime | None = None):
    """The site's consent records in a period (start inclusive, end exclusive), newest
    first, without the signature images."""
    rows = ConsentRecord.objects.filter(site=site)
    if start is not None:
        rows = rows.filter(recorded_at__gte=start)
    if end is not None:
        rows = rows.filter(recorded_at__lt=end)
    return (
        rows.defer("signature_image")
        .select_related("captured_by", "contact_point__contact")
        .order_by("-recorded_at", "-id")
    )


# The checks --------------------------------------------------------------------------------


def _checked(point, channel, action, source, by, system) -> tuple[Channel, str, ConsentSource]:
    errors = {}
    try:
        channel = Channel(channel)
    except ValueError:
        errors["channel"] = "Choose SMS, calls or email."
    if action not in (GRANT, REVOKE):
        errors["action"] = "Say whether consent is given or withdrawn."
    try:
        source = ConsentSource(source)
    except ValueError:
        errors["source"] = "Say how consent was captured."
    if by is None and not (system or "").strip():
        errors["by"] = "Say who or what captured the consent."
    if point is None or point.pk is None:
        errors["contact_point"] = "Choose a saved phone number or email."
    elif "channel" not in errors and channel not in CHANNELS_OF_KIND[point.kind]:
        errors["channel"] = "That channel does not reach this kind of phone or email."
    elif not point.is_valid:
        errors["contact_point"] = "This number or email does not parse: correct it first."
    if errors:
        raise ValidationError(errors)
    return channel, str(action), source


def _checked_wording(wording: str, version: str) -> tuple[str, str]:
    wording, version = (wording or "").strip(), (version or "").strip()
    if not wording or len(wording) > MAX_WORDING:
        raise ValidationError({"wording": "Give the exact wording shown to the person."})
    if len(version) > 32:
        raise ValidationError({"wording_version": "A wording version has at most 32 characters."})
    return wording, version


def _signature_digest(signature: bytes | None, given: str, source: ConsentSource) -> str:
    given = (given or "").strip().lower()
    if given and not _SHA256.match(given):
        raise ValidationError({"signature_sha256": "A SHA-256 is 64 hexadecimal digits."})
    if signature is not None:
        if not isinstance(signature, bytes | bytearray) or not signature:
            raise ValidationError({"signature": "The signature image is empty."})
        if len(signature) > MAX_SIGNATURE_BYTES:
            raise ValidationError({"signature": "The signature image is over 256 KB."})
        digest = hashlib.sha256(signature).hexdigest()
        if given and given != digest:
            raise ValidationError({"signature_sha256": "The hash does not match the image."})
        return digest
    if source == ConsentSource.SIGNATURE_PAD and not given:
        raise ValidationError({"signature": "A signature pad consent needs the signature."})
    return given


def _keyword_terms(source: str, text: str, channel: Channel, action: str):
    """(consent source, wording, system) of an opt-out/opt-in event's source."""
    if source == "unsubscribe_link":
        return ConsentSource.WEB_FORM, "Unsubscribe (one-click link in an email)", source
    if source == "staff":
        words = "Opt-out set by staff" if action == REVOKE else "Opt-out cleared by staff"
        return ConsentSource.VERBAL, words, "staff opt-out flag"
    if source == "provider_error":
        return ConsentSource.SMS_KEYWORD, "Opt-out reported by the carrier", "provider"
    keyword = (text or "").strip() or ("STOP" if action == REVOKE else "START")
    return ConsentSource.SMS_KEYWORD, f"Text message: {keyword}"[:MAX_WORDING], "sms keyword"


# The effects -------------------------------------------------------------------------------


def _set_flags(point_ids: list[int], channel: Channel, granted: bool) -> None:
    flag = _FLAGS.get(channel)
    if flag and point_ids:
        ContactPoint.objects.filter(pk__in=point_ids).update(**{flag: granted})


def _audit(record: ConsentRecord, by, system: str, now) -> None:
    detail = {"channel": record.channel, "action": record.action, "source": record.source}
    if by is None:
        detail["system"] = system
    trail.record(by, "consent", record, site_id=record.site_id, detail=detail, at=now)


def _emit(record: ConsentRecord, patient: Patient, now) -> None:
    event = "contact.consent_granted" if record.action == GRANT else "contact.consent_revoked"
    events.emit(record.site_id, event, {
        "channel": record.channel, "source": record.source, "patient": {"id": patient.pk},
        "contact_point": {"id": record.contact_point_id}, "consent_id": record.pk,
    }, now)  # fmt: skip


def _patient_consents(patient: Patient, *, by, system: str, now) -> None:
    """A patient's first consent: noted on the patient, which applies the pharmacy's
    defaults when the site waits for consent to apply them (SPEC §3.4)."""
    from carebell.people.actions import save_patient

    patient.consented_at = now
    save_patient(patient, by=by, source=system or "consent", now=now)


def _replan(patient: Patient, now) -> None:
    from carebell.planning.replan import replan_patients

    replan_patients(patient.site, [patient.pk], now=now, why=reason(Code.RECIPIENT_CHANGED))
