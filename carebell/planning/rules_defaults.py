"""The automated messages a site gets out of the box (SPEC §5).

Rules come disabled: an administrator reviews and enables them. The demo seeder
saves them enabled so the demo has something to send.
"""

from __future__ import annotations

from carebell.core.vocab import Kind, OffsetUnit, SiteKind
from carebell.messaging.models import AutomatedMessage
from carebell.sites.models import Site

# (kind, name, offsets). Empty offsets: timing comes from the site's delivery settings
# (pickup reminder days, refill days before/after due, review delay, the daily batch).
_CLINIC_RULES = [
    (Kind.APPT_CONFIRMATION, "Appointment confirmation", [{OffsetUnit.DAYS.value: 3}]),
    (Kind.APPT_REMINDER, "Appointment reminder", [{OffsetUnit.DAYS.value: 1}]),
    (Kind.BIRTHDAY, "Birthday greeting", []),
    (Kind.WELCOME, "Welcome", []),
]

_PHARMACY_RULES = [
    (Kind.RX_READY, "Ready for pickup", []),
    (Kind.RX_PICKUP_REMINDER, "Pickup reminder", []),
    (Kind.REFILL_DUE, "Refill due", []),
    (Kind.REFILL_PAST_DUE, "Refill past due", []),
    (Kind.REVIEW_REQUEST, "Review request", []),
    (Kind.BIRTHDAY, "Birthday greeting", []),
    (Kind.WELCOME, "Welcome", []),
]


#: The kinds a site of each kind may have automated messages for: what its planner
#: plans from the data it holds (answers, replies and codes are not rules).
RULE_KINDS: dict[str, tuple[Kind, ...]] = {
    SiteKind.CLINIC.value: (
        Kind.APPT_CONFIRMATION,
        Kind.APPT_REMINDER,
        Kind.RECALL,
        Kind.BIRTHDAY,
        Kind.WELCOME,
    ),
    SiteKind.PHARMACY.value: (
        Kind.RX_READY,
        Kind.RX_PICKUP_REMINDER,
        Kind.RX_PICKUP_CONFIRMATION,
        Kind.REFILL_DUE,
        Kind.REFILL_PAST_DUE,
        Kind.REFILL_ASK_PRESCRIBER,
        Kind.REVIEW_REQUEST,
        Kind.BIRTHDAY,
        Kind.WELCOME,
    ),
}


def new_rule(site: Site, kind: str, name: str) -> AutomatedMessage:
    """An unsaved, disabled automated message of `kind` for `site`, with the kind's
    default timing (an administrator fills in the rest in the editor)."""
    table = _PHARMACY_RULES if site.kind == SiteKind.PHARMACY else _CLINIC_RULES
    offsets = next((list(o) for k, _n, o in table if k == kind), [])
    return AutomatedMessage(site=site, kind=kind, name=name, enabled=False, offsets=offsets)


def default_rules(site: Site) -> list[AutomatedMessage]:
    """The sensible automated messages for a new site of its kind: unsaved and
    disabled, one per applicable kind, with the default timing."""
    table = _PHARMACY_RULES if site.kind == SiteKind.PHARMACY else _CLINIC_RULES
    return [
        AutomatedMessage(site=site, kind=kind.value, name=name, enabled=False, offsets=offsets)
        for kind, name, offsets in table
    ]
