"""The one way in for webhook endpoints and their deliveries: the staff app and the
API call these, never `.save()`. Each validates (a ValidationError changes
nothing), saves and audits (field names, never the URL or the secret)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from carebell.audit import trail
from carebell.outbound import signing, targets
from carebell.outbound.models import DeliveryStatus, EventDelivery, EventType, WebhookEndpoint

#: How long the previous secret still signs after a rotation, by default.
KEEP_PREVIOUS = dt.timedelta(hours=24)
MAX_KEEP_PREVIOUS = dt.timedelta(days=7)
MAX_DESCRIPTION = 200


def create_endpoint(
    site, *, url: str, event_types: Iterable[str], description: str = "", by, now=None
) -> tuple[WebhookEndpoint, str]:
    """Add an endpoint to `site`, enabled; returns it and its new secret (shown once)."""
    now = now or timezone.now()
    endpoint = WebhookEndpoint(
        site=site,
        url=targets.check_url(url),
        event_types=_check_types(event_types),
        description=_check_description(description),
        secret=signing.new_secret(),
        created_at=now,
        updated_at=now,
        created_by=by if getattr(by, "is_authenticated", False) else None,
    )
    with transaction.atomic():
        endpoint.save()
        trail.record(by, "create", endpoint, detail={"fields": ["url", "event_types"]}, at=now)
    return endpoint, endpoint.secret


def update_endpoint(
    endpoint: WebhookEndpoint,
    *,
    by,
    url: str | None = None,
    event_types: Iterable[str] | None = None,
    description: str | None = None,
    enabled: bool | None = None,
    now=None,
) -> WebhookEndpoint:
    """Change what is given (None: leave it). Enabling again sends what waited."""
    now = now or timezone.now()
    changed = []
    if url is not None and url.strip() != endpoint.url:
        endpoint.url, changed = targets.check_url(url), [*changed, "url"]
    if event_types is not None:
        types = _check_types(event_types)
        if types != endpoint.event_types:
            endpoint.event_types, changed = types, [*changed, "event_types"]
    if description is not None and description.strip() != endpoint.description:
        endpoint.description = _check_description(description)
        changed.append("description")
    if enabled is not None and enabled != endpoint.enabled:
        endpoint.enabled = enabled
        endpoint.disabled_reason = "" if enabled else WebhookEndpoint.Disabled.BY_STAFF
        changed += ["enabled", "disabled_reason"]
    if changed:
        _save(endpoint, changed, by, now)
    return endpoint


def disable_endpoint(endpoint: WebhookEndpoint, *, by, now=None) -> WebhookEndpoint:
    """Switch the endpoint off: nothing is sent to it until it is enabled again."""
    return update_endpoint(endpoint, enabled=False, by=by, now=now)


def rotate_secret(
    endpoint: WebhookEndpoint, *, by, keep_previous: dt.timedelta = KEEP_PREVIOUS, now=None
) -> str:
    """Give the endpoint a new secret; the current one keeps signing beside it for
    `keep_previous` (0 to 7 days), while the receiver switches. Returns the new one."""
    now = now or timezone.now()
    if not dt.timedelta(0) <= keep_previous <= MAX_KEEP_PREVIOUS:
        raise ValidationError(_("Keep the previous secret for 0 to 7 days."), code="keep_previous")
    endpoint.previous_secret = endpoint.secret if keep_previous else ""
    endpoint.previous_secret_expires_at = now + keep_previous if keep_previous else None
    endpoint.secret = signing.new_secret()
    _save(endpoint, ["secret", "previous_secret", "previous_secret_expires_at"], by, now)
    return endpoint.secret


def secrets_in_force(endpoint: WebhookEndpoint, now: dt.datetime) -> list[str]:
    """The secrets that sign a delivery at `now`: the current one, and the previous
    one until it expires."""
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret and expires is not None and now < expires:
        return [endpoint.secret, endpoint.previous_secret]
    return [endpoint.secret]


def resend(delivery: EventDelivery, *, by, now=None) -> bool:
    """Send a delivery again at once (same `webhook-id`), with a new round of
    retries. One being sent right now is left to finish; returns False then."""
    now = now or timezone.now()
    with transaction.atomic():
        updated = EventDelivery.objects.filter(pk=delivery.pk).exclude(
            status=DeliveryStatus.DELIVERING
        ).update(
            status=DeliveryStatus.PENDING, due_at=now, retry_from=now, attempts=0,
            finished_at=None,
        )  # fmt: skip
        if updated:
            site_id = delivery.endpoint.site_id
            trail.record(by, "resend", delivery, site_id=site_id, at=now)
    return bool(updated)


def _save(endpoint: WebhookEndpoint, fields: list[str], by, now) -> None:
    endpoint.updated_at = now
    with transaction.atomic():
        endpoint.save(update_fields=[*fields, "updated_at"])
        trail.record(by, "change", endpoint, detail={"fields": fields}, at=now)


def _check_types(event_types: Iterable[str]) -> list[str]:
    chosen = list(dict.fromkeys(event_types or ()))
    unknown = [t for t in chosen if t not in EventType.values]
    if unknown:
        raise ValidationError(
            _("Unknown event type: %(types)s.") % {"types": ", ".join(map(str, unknown))[:200]},
            code="unknown_event_type",
        )
    if not chosen:
        raise ValidationError(_("Choose at least one event."), code="no_event_type")
    return [t for t in EventType.values if t in chosen]


def _check_description(description: str) -> str:
    description = (description or "").strip()
    if len(description) > MAX_DESCRIPTION:
        raise ValidationError(
            _("The description is too long (at most %(max)d characters).")
            % {"max": MAX_DESCRIPTION},
            code="too_long",
        )
    return description
