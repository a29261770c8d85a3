"""Consent by the patient's own word: opt-outs and opt-ins of one address.

A STOP (or START) by text, a provider's report that a number refuses texts, a spam
complaint, an email unsubscribe link: each flags every contact point with that
value at the sites concerned, keeps the event, writes the revocation (or, for
START, the grant) in the consent ledger (`carebell.people.consent`, the ledger every
other door writes too), and blocks what is pending to it through the outbox (or
plans again what an opt-in frees). Consent given at the counter, on a form or a
signature pad goes through `carebell.people.consent.record_consent`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django.db import transaction

from carebell import events, outbox
from carebell.core.channels import OPTED_OUT_CODE
from carebell.core.reasons import Code, reason
from carebell.core.vocab import Channel
from carebell.people import consent as ledger
from carebell.people.models import ContactPoint, OptOutEvent

_OPT_OUT_FLAG = {
    Channel.SMS: "opted_out_sms",
    Channel.CALL: "opted_out_call",
    Channel.EMAIL: "opted_out_email",
}


def opt_out_address(
    site_id: int, address: str, channel: Channel, *, source: str, now: dt.datetime, detail: str = ""
) -> int:
    """Opt `address` out of `channel` at one site, at once (SPEC §3.5): every contact
    point with that value there is flagged, the event is kept, and pending messages
    to it are blocked. Returns how many pending messages were blocked."""
    return opt_out_address_at([site_id], address, channel, source=source, now=now, detail=detail)


def opt_out_address_at(
    site_ids: Sequence[int],
    address: str,
    channel: Channel,
    *,
    source: str,
    now: dt.datetime,
    detail: str = "",
) -> int:
    """`opt_out_address` at each of `site_ids` in one transaction: a STOP sent to a
    number several sites of one organization send from stops all of them."""
    site_ids = sorted(set(site_ids))
    with transaction.atomic():
        for site_id in site_ids:
            _record_opt_out(site_id, address, channel, True, source=source, now=now, detail=detail)
            _emit_consent_change(site_id, "contact.opted_out", address, channel, source, now)
        ledger.record_keyword(
            site_ids, address, channel, ledger.REVOKE, source=source, text=detail, now=now
        )
        why = reason(OPTED_OUT_CODE[channel])
        return outbox.block_pending_to(site_ids, address, channel, why, now)


def opt_in_address(
    site_id: int, address: str, channel: Channel, *, source: str, now: dt.datetime
) -> None:
    """Undo an opt-out (START, UNSTOP): the number may receive that channel again."""
    opt_in_address_at([site_id], address, channel, source=source, now=now)


def opt_in_address_at(
    site_ids: Sequence[int],
    address: str,
    channel: Channel,
    *,
    source: str,
    now: dt.datetime,
    detail: str = "",
) -> None:
    """`opt_in_address` at each of `site_ids`, the sites that share the sender.

    The number's patients are planned again in the same transaction: what the
    opt-out blocked gave back its occurrence keys, so every message still due is
    planned afresh as a new row (status only moves forward; the blocked rows stay as
    history) and `carebell explain` shows what the outbox now holds.

    A START by text is the person's own consent to texts, kept in the ledger as a
    grant; staff clearing an opt-out flag is not, and grants nothing."""
    from carebell.planning.replan import replan_patients
    from carebell.sites.models import Site

    with transaction.atomic():
        for site_id in sorted(set(site_ids)):
            _record_opt_out(site_id, address, channel, False, source=source, now=now)
            _emit_consent_change(site_id, "contact.opted_in", address, channel, source, now)
        if source == "keyword":
            ledger.record_keyword(
                site_ids, address, channel, ledger.GRANT, source=source, text=detail, now=now
            )
        for site in Site.objects.filter(id__in=sorted(set(site_ids))).order_by("id"):
            patients = ContactPoint.objects.filter(value=address, contact__patient__site=site)
            patient_ids = set(patients.values_list("contact__patient_id", flat=True))
            replan_patients(site, patient_ids, now=now, why=reason(Code.RECIPIENT_CHANGED))


def _record_opt_out(
    site_id, address, channel, opted_out: bool, *, source: str, now, detail: str = ""
) -> None:
    ContactPoint.objects.filter(value=address, contact__patient__site_id=site_id).update(
        **{_OPT_OUT_FLAG[channel]: opted_out}
    )
    OptOutEvent.objects.create(
        site_id=site_id, address=address, channel=channel, opted_out=opted_out,
        source=source, detail=detail, recorded_at=now,
    )  # fmt: skip


def _emit_consent_change(site_id, event_type, address, channel, source, now) -> None:
    """Tell the source system which of its patients' contact points changed (their
    ids, never the address itself)."""
    points = ContactPoint.objects.filter(value=address, contact__patient__site_id=site_id)
    rows = points.order_by("id").values_list(
        "id", "contact_id", "contact__patient_id", "contact__patient__external_id"
    )
    payload = {
        "channel": str(channel),
        "source": source,
        "contact_points": [
            {"id": point, "contact": contact, "patient": {"id": patient, "external_id": external}}
            for point, contact, patient, external in rows
        ],
    }
    events.emit(site_id, event_type, payload, now)
