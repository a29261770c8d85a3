"""From a site's rows to the rules core's inputs, built once per site and reused."""

from __future__ import annotations

from carebell.core.vocab import Channel, Kind, Weekday
from carebell.core.windows import DeliveryPolicy, DeliverySettings, TimeWindow
from carebell.sites.models import DeliverySettings as DeliverySettingsRow
from carebell.sites.models import Site

# Which site-level channel list governs which kinds (the pharmacy seed's "Send … :
# Email, SMS, Call, neither or all"). Kinds not listed are enabled on every channel.
KIND_CHANNEL_FIELDS: dict[Kind, str] = {
    Kind.REFILL_DUE: "refill_channels",
    Kind.REFILL_PAST_DUE: "refill_channels",
    Kind.REFILL_ASK_PRESCRIBER: "refill_channels",
    Kind.RX_READY: "ready_channels",
    Kind.RX_PICKUP_REMINDER: "ready_channels",
    Kind.RX_PICKUP_CONFIRMATION: "pickup_confirmation_channels",
    Kind.BIRTHDAY: "birthday_channels",
    Kind.WELCOME: "welcome_channels",
    Kind.GENERAL: "general_channels",
    Kind.REVIEW_REQUEST: "review_channels",
}


def core_settings(site: Site, row: DeliverySettingsRow) -> DeliverySettings:
    """The rules core's view of a site's delivery settings."""
    return DeliverySettings(
        zone=site.time_zone,
        email_sms_window=TimeWindow(row.email_sms_window_start, row.email_sms_window_end),
        call_window=TimeWindow(row.call_window_start, row.call_window_end),
        delivery_days=frozenset(Weekday(d) for d in row.delivery_days),
        daily_process_start=row.daily_process_start,
        only_verified=row.only_verified,
        require_opt_in=row.require_opt_in,
        combine_siblings=row.combine_siblings,
        cancellation_mode=row.cancellation_mode,
        cancellation_deadline_hours=row.cancellation_deadline_hours,
        track_cancellations=row.track_cancellations,
        kind_channels={
            kind: frozenset(Channel(c) for c in getattr(row, field))
            for kind, field in KIND_CHANNEL_FIELDS.items()
        },
    )


class PolicyCache:
    """Compiled delivery policies per site, rebuilt when the site or its delivery
    settings change: the key holds both rows' update stamps and the zone itself, so
    a worker that keeps its cache across batches sees a new time zone on its next
    batch, whichever of the two rows was saved."""

    def __init__(self) -> None:
        self._policies: dict[int, tuple[object, DeliveryPolicy]] = {}

    def for_site(self, site: Site) -> DeliveryPolicy:
        row = site.delivery
        key = (site.time_zone, site.updated_at, row.updated_at)
        cached = self._policies.get(site.id)
        if cached is not None and cached[0] == key:
            return cached[1]
        policy = DeliveryPolicy(core_settings(site, row))
        self._policies[site.id] = (key, policy)
        return policy
