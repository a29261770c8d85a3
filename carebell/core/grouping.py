"""One message where several would say the same thing (SPEC §5.2, §5.4).

Siblings: messages of one kind to one contact point about appointments of different
patients on the same day at the same site become one message listing every child.
Pharmacy: one patient's fills that become ready the same day, and their prescriptions
due the same day, become one message.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from datetime import date, datetime

from carebell.core.reasons import Code, Reason, reason
from carebell.core.vocab import Channel, Kind


@dataclass(frozen=True, slots=True)
class AppointmentItem:
    """One planned appointment message to one contact point. `day` is the
    appointment's date in the site's zone."""

    channel: Channel
    address: str
    kind: Kind
    site_id: object
    day: date
    patient_id: object
    appointment_id: object
    start: datetime


@dataclass(frozen=True, slots=True)
class PatientItem:
    """One planned pharmacy message for a patient about one fill or prescription.
    `day` is the site's date the message is planned for."""

    patient_id: object
    kind: Kind
    site_id: object
    day: date
    entity_id: object


@dataclass(frozen=True, slots=True)
class Group:
    """Items that become one message, in order, and why they were combined."""

    items: tuple
    reasons: tuple[Reason, ...] = ()


def _group(items: Iterable, key: Callable[[object], Hashable]) -> dict[Hashable, list]:
    groups: dict[Hashable, list] = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    return groups


def group_siblings(items: Iterable[AppointmentItem], combine: bool = True) -> tuple[Group, ...]:
    """One group per (contact point, kind, site, day) when `combine` is on (the site's
    "combine siblings"), items by start time; otherwise one group per item. Groups
    come out in the order of their first item."""
    items = list(items)
    if not combine:
        return tuple(Group((i,)) for i in items)
    out = []
    key = lambda i: (i.channel, i.address, i.kind, i.site_id, i.day)  # noqa: E731
    for members in _group(items, key).values():
        members.sort(key=lambda i: (i.start, str(i.patient_id)))
        patients = {m.patient_id for m in members}
        why = (reason(Code.COMBINED_SIBLINGS, count=len(patients)),) if len(patients) > 1 else ()
        out.append(Group(tuple(members), why))
    return tuple(out)


def group_same_day(items: Iterable[PatientItem]) -> tuple[Group, ...]:
    """One group per (patient, kind, site, day): a patient's fills ready the same day,
    or prescriptions due the same day, share one message."""
    out = []
    key = lambda i: (i.patient_id, i.kind, i.site_id, i.day)  # noqa: E731
    for members in _group(items, key).values():
        why = (reason(Code.COMBINED_SAME_DAY, count=len(members)),) if len(members) > 1 else ()
        out.append(Group(tuple(members), why))
    return tuple(out)
