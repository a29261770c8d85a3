"""The one way in for changes to a site and its delivery settings (SPEC §2, §4).

Every door — the admin today, the staff app and the API next — calls these, never
`save()`. Each validates (a ValidationError changes nothing), saves, and when the
change alters what the rules core decides (the site's time zone; windows, delivery
days, verification and opt-in rules, channels per kind …) plans every pending
message of the site again in the same transaction, set-based
(`planning.replan.replan_site`). The running planner and workers see the
change on their next pass: their policy cache is keyed by both rows' update stamps
(`planning.policies.PolicyCache`). Both write the audit log (field names only).
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.db.models import Model
from django.utils import timezone

from carebell.audit import trail
from carebell.core.reasons import Code, reason
from carebell.sites.models import DeliverySettings, Site

_NOT_COMPARED = frozenset({"id", "created_at", "updated_at"})


def save_site(site: Site, *, by=None, source: str = "carebell", now=None) -> Site:
    """Create or change a site. A new time zone moves every pending message to the
    time the site's rules give in that zone."""
    now = now or timezone.now()
    site.full_clean()
    with transaction.atomic():
        previous = _previous(site)
        site.save()
        moved_zone = previous is not None and previous.time_zone != site.time_zone
        if moved_zone and DeliverySettings.objects.filter(site=site).exists():
            _replan(site, now)
        _audit(by, source, site, previous, now)
    return site


def save_delivery_settings(
    row: DeliverySettings, *, by=None, source: str = "carebell", now=None
) -> DeliverySettings:
    """Create or change a site's delivery settings; pending messages are planned
    again when the rules core's view of them changed."""
    from carebell.planning.policies import core_settings

    now = now or timezone.now()
    row.full_clean()
    with transaction.atomic():
        previous = _previous(row)
        row.save()
        site = row.site
        if previous is not None and core_settings(site, previous) != core_settings(site, row):
            _replan(site, now)
        _audit(by, source, row, previous, now)
    return row


def _replan(site: Site, now: dt.datetime) -> None:
    from carebell.planning.replan import replan_site

    replan_site(site, now=now, why=reason(Code.SETTINGS_CHANGED))


def _previous(obj: Model):
    return type(obj).objects.filter(pk=obj.pk).first() if obj.pk else None


def _audit(by, source: str, obj: Model, previous, now: dt.datetime) -> None:
    names = [f.attname for f in obj._meta.concrete_fields if f.attname not in _NOT_COMPARED]
    if previous is not None:
        names = [n for n in names if getattr(obj, n) != getattr(previous, n)]
    detail = {"fields": names} if by is not None else {"fields": names, "system": source}
    trail.record(by, "create" if previous is None else "change", obj, detail=detail, at=now)
