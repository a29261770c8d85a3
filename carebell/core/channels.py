"""Who receives a message and over which channel (SPEC §3.2–§3.3, §3.5).

`choose_channels` answers for one contact and one kind: the deliveries (channel and
contact point) to make, or the reasons there are none. `plan_recipients` does it for
all the contacts of a patient and makes sure one contact point never gets two copies
of the same message. Both are on the nightly planner's hot path: they allocate little
and never raise for a data problem — every problem is a reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date

from carebell.core.reasons import Code, Reason, reason
from carebell.core.vocab import (
    KIND_CATEGORY,
    PHONE_CHANNELS,
    Authority,
    BlockReason,
    Category,
    Channel,
    Kind,
    Preference,
)
from carebell.core.windows import DeliverySettings

ALL_CHANNELS = frozenset(Channel)


@dataclass(frozen=True, slots=True)
class ContactPointFacts:
    """One phone number or email address of a contact, as stored.

    `value` is E.164 or a normalised address ("" when missing); `parses` is False when
    the stored text could not be read as one; `opted_out` and `consented` hold the
    channels for which the point is opted out / has recorded consent.
    """

    value: str
    parses: bool = True
    verified: bool = False
    opted_out: frozenset[Channel] = frozenset()
    consented: frozenset[Channel] = frozenset()


@dataclass(frozen=True, slots=True)
class ContactFacts:
    """A contact of a patient with what eligibility needs (SPEC §3.1)."""

    contact_id: object
    patient_id: object = None
    position: int = 1
    authority: Authority = Authority.BLANK
    end_date: date | None = None
    preferences: Mapping[Category, Preference] = field(default_factory=dict)
    mobile: ContactPointFacts | None = None
    home: ContactPointFacts | None = None
    email: ContactPointFacts | None = None
    zone: str | None = None  # the contact's IANA zone when known (quiet hours)

    def points_for(self, channel: Channel) -> tuple[ContactPointFacts | None, ...]:
        """The contact points that can carry `channel`, in the order they are tried.
        Calls go to the home phone first (a landline is what a voice call is for)."""
        if channel is _EMAIL:
            return (self.email,)
        if channel is _SMS:
            return (self.mobile,)
        return (self.home, self.mobile)


@dataclass(frozen=True, slots=True)
class Delivery:
    """Send one copy over `channel` to `address`, for `contact_id`."""

    contact_id: object
    channel: Channel
    address: str


@dataclass(frozen=True, slots=True)
class ContactChoice:
    """The decision for one contact: deliveries to make and the reasons behind them.
    Reasons explain exclusions (of the contact or of single channels) and detours."""

    contact_id: object
    deliveries: tuple[Delivery, ...]
    reasons: tuple[Reason, ...] = ()

    @property
    def eligible(self) -> bool:
        return bool(self.deliveries)


# Enum member access (`Channel.SMS`) costs a descriptor call in Python 3.11; the hot path
# reads these module constants and prebuilt tables instead.
_EMAIL, _SMS = Channel.EMAIL, Channel.SMS
_AUTHORITY_NONE = Authority.NONE
_BLANK, _NO_CONTACT = Preference.BLANK, Preference.NONE
_PREF_CHANNELS = {p: p.channels for p in Preference}
_PREF_LADDER = {p: p.is_ladder for p in Preference}
#: The reason a contact point is not used on a channel it opted out of.
OPTED_OUT_CODE: dict[Channel, Code] = {
    Channel.EMAIL: Code.OPTED_OUT_EMAIL,
    Channel.SMS: Code.OPTED_OUT_SMS,
    Channel.CALL: Code.OPTED_OUT_CALL,
}


def _per_channel(code_for) -> dict[Channel, Reason]:
    return {c: reason(code_for(c), channel=c) for c in Channel}


_NO_POINT = _per_channel(lambda c: Code.NO_CONTACT_POINT)
_UNPARSEABLE = _per_channel(lambda c: Code.CONTACT_POINT_UNPARSEABLE)
_OPTED = _per_channel(OPTED_OUT_CODE.__getitem__)
_UNVERIFIED = _per_channel(lambda c: Code.NOT_VERIFIED)
_NO_CONSENT = _per_channel(lambda c: Code.NO_CONSENT)
_LADDER_USED = _per_channel(lambda c: Code.LADDER_STEP_USED)
_NO_PREFERENCE = {c: reason(Code.NO_PREFERENCE, category=c) for c in Category}
_PREFERENCE_NONE = {c: reason(Code.PREFERENCE_NONE, category=c) for c in Category}
_AUTHORITY_REASON = reason(Code.CONTACT_AUTHORITY_NONE)
_KIND_SPECIFIC = frozenset({Code.CHANNEL_DISABLED_FOR_KIND, Code.KIND_DISABLED})


def point_problem(
    point: ContactPointFacts | None, channel: Channel, settings: DeliverySettings
) -> Reason | None:
    """None when `point` may carry `channel` under the site's settings, else why not:
    no_contact_point, contact_point_unparseable, opted_out_*, not_verified, no_consent."""
    if point is None or not point.value:
        return _NO_POINT[channel]
    if not point.parses:
        return _UNPARSEABLE[channel]
    if point.opted_out and channel in point.opted_out:
        return _OPTED[channel]
    if settings.only_verified and not point.verified:
        return _UNVERIFIED[channel]
    if settings.require_opt_in and channel in PHONE_CHANNELS and channel not in point.consented:
        return _NO_CONSENT[channel]
    return None


def usable_point(
    contact: ContactFacts, channel: Channel, settings: DeliverySettings
) -> tuple[ContactPointFacts | None, Reason | None]:
    """The first contact point that may carry `channel`, else (None, the first problem
    other than a missing point, if any)."""
    if channel is _SMS or channel is _EMAIL:  # one point: skip the loop
        point = contact.mobile if channel is _SMS else contact.email
        problem = point_problem(point, channel, settings)
        return (point, None) if problem is None else (None, problem)
    first: Reason | None = None
    for point in contact.points_for(channel):
        problem = point_problem(point, channel, settings)
        if problem is None:
            return point, None
        if first is None or first is _NO_POINT[channel]:
            first = problem
    return None, first


def contact_problem(contact: ContactFacts, category: Category, today: date) -> Reason | None:
    """None when the contact may receive `category` messages at all (authority, end
    date, preference set and not "no contact"), else the reason."""
    if contact.authority == _AUTHORITY_NONE:
        return _AUTHORITY_REASON
    if contact.end_date is not None and contact.end_date <= today:
        return reason(Code.CONTACT_END_DATED, end_date=contact.end_date)
    pref = contact.preferences.get(category, _BLANK)
    if pref == _BLANK:
        return _NO_PREFERENCE[category]
    if pref == _NO_CONTACT:
        return _PREFERENCE_NONE[category]
    return None


def choose_channels(
    contact: ContactFacts, kind: Kind, settings: DeliverySettings, today: date
) -> ContactChoice:
    """The deliveries for `contact` of a `kind` message on the site's date `today`.

    Channels are the contact's preference for the kind's category intersected with the
    channels the site enables for the kind; a ladder uses only its first usable
    channel, cheapest first. Raises ValueError for a kind without a category
    (verification codes and replies are addressed directly, not chosen here).
    """
    category = KIND_CATEGORY.get(kind)
    if category is None:
        raise ValueError(f"{kind} is not governed by preferences")
    enabled = settings.kind_channels.get(kind, ALL_CHANNELS)
    return _choose(contact, kind, category, enabled, settings, today)


def _choose(contact, kind, category, enabled, settings, today) -> ContactChoice:
    problem = contact_problem(contact, category, today)
    if problem is not None:
        return ContactChoice(contact.contact_id, (), (problem,))
    if not enabled:
        return ContactChoice(contact.contact_id, (), (reason(Code.KIND_DISABLED, kind=kind),))
    pref = contact.preferences[category]
    channels = _PREF_CHANNELS[pref]
    if len(channels) == 1 and channels[0] in enabled:
        return _single(contact, channels[0], settings)
    if _PREF_LADDER[pref]:
        return _climb(contact, kind, channels, enabled, settings)
    return _each(contact, kind, channels, enabled, settings)


class ChannelChooser:
    """`choose_channels` for one site and a fixed list of kinds (a site's rules),
    compiled once: kinds of one category with the same enabled channels share one
    decision per contact. The rules benchmark measures it; the planner itself still
    chooses per patient and kind through `plan_recipients`."""

    __slots__ = ("_groups", "kinds", "settings")

    def __init__(self, settings: DeliverySettings, kinds: Iterable[Kind]) -> None:
        self.settings = settings
        self.kinds = tuple(dict.fromkeys(kinds))
        groups: dict[tuple, list[Kind]] = {}
        for kind in self.kinds:
            category = KIND_CATEGORY.get(kind)
            if category is None:
                raise ValueError(f"{kind} is not governed by preferences")
            enabled = settings.kind_channels.get(kind, ALL_CHANNELS)
            groups.setdefault((category, enabled), []).append(kind)
        self._groups = tuple((c, e, tuple(ks)) for (c, e), ks in groups.items())

    def choose(self, contact: ContactFacts, today: date) -> dict[Kind, ContactChoice]:
        """The decision for `contact` for each of the chooser's kinds."""
        out: dict[Kind, ContactChoice] = {}
        settings = self.settings
        for category, enabled, kinds in self._groups:
            choice = _choose(contact, kinds[0], category, enabled, settings, today)
            if len(kinds) == 1 or not (choice.reasons and _names_kind(choice.reasons)):
                out.update(dict.fromkeys(kinds, choice))
                continue
            for kind in kinds:
                out[kind] = _choose(contact, kind, category, enabled, settings, today)
        return out


def _names_kind(reasons: tuple[Reason, ...]) -> bool:
    return any(r.code in _KIND_SPECIFIC for r in reasons)


def _single(contact: ContactFacts, channel: Channel, settings: DeliverySettings) -> ContactChoice:
    point, problem = usable_point(contact, channel, settings)
    if point is None:
        return ContactChoice(contact.contact_id, (), (problem,))
    return ContactChoice(contact.contact_id, (Delivery(contact.contact_id, channel, point.value),))


def _each(contact, kind, channels, enabled, settings) -> ContactChoice:
    deliveries, reasons = [], []
    for channel in channels:
        if channel not in enabled:
            reasons.append(reason(Code.CHANNEL_DISABLED_FOR_KIND, kind=kind, channel=channel))
            continue
        point, problem = usable_point(contact, channel, settings)
        if point is None:
            reasons.append(problem)
        else:
            deliveries.append(Delivery(contact.contact_id, channel, point.value))
    return ContactChoice(contact.contact_id, tuple(deliveries), tuple(reasons))


def _climb(contact, kind, channels, enabled, settings) -> ContactChoice:
    # A ladder ("email or text") uses the first rung, cheapest first, that can carry it.
    skipped = []
    for channel in channels:
        if channel not in enabled:
            skipped.append(reason(Code.CHANNEL_DISABLED_FOR_KIND, kind=kind, channel=channel))
            continue
        point, problem = usable_point(contact, channel, settings)
        if point is not None:
            used = (_LADDER_USED[channel],) if skipped else ()
            delivery = Delivery(contact.contact_id, channel, point.value)
            return ContactChoice(contact.contact_id, (delivery,), (*skipped, *used))
        skipped.append(problem)
    return ContactChoice(contact.contact_id, (), tuple(skipped))


def dedupe(choices: Iterable[ContactChoice]) -> tuple[ContactChoice, ...]:
    """Drop every delivery to a (channel, address) already used by an earlier choice,
    with reason duplicate_contact_point, so one contact point gets one copy."""
    seen: set[tuple[Channel, str]] = set()
    out = []
    for choice in choices:
        kept, dropped = [], []
        for d in choice.deliveries:
            key = (d.channel, d.address)
            if key in seen:
                dropped.append(
                    reason(Code.DUPLICATE_CONTACT_POINT, channel=d.channel, address=d.address)
                )
            else:
                seen.add(key)
                kept.append(d)
        out.append(choice if not dropped else _replace(choice, kept, dropped))
    return tuple(out)


def _replace(choice: ContactChoice, kept: list, dropped: list) -> ContactChoice:
    return ContactChoice(choice.contact_id, tuple(kept), (*choice.reasons, *dropped))


def plan_recipients(
    contacts: Iterable[ContactFacts], kind: Kind, settings: DeliverySettings, today: date
) -> tuple[ContactChoice, ...]:
    """`choose_channels` for every contact of a patient (in position order), then
    `dedupe`: every eligible contact is told, each contact point once."""
    ordered = sorted(contacts, key=lambda c: c.position)
    return dedupe(choose_channels(c, kind, settings, today) for c in ordered)


def delivery_problem(
    contact: ContactFacts,
    kind: Kind,
    channel: Channel,
    address: str,
    settings: DeliverySettings,
    today: date,
) -> Reason | None:
    """None when a delivery planned earlier — a `kind` message over `channel` to
    `address` for `contact` — may still go on the site's date `today`, else why not.

    These are the conditions every delivery `choose_channels` makes meets, judged on
    the contact's facts as they are now: the contact may receive the kind's category,
    the preference still names `channel` and the site still enables it for the kind,
    and `address` is still one of the contact's points for `channel` and may carry it.
    Because they are necessary for the planner too, a delivery refused here is never
    planned again while the facts stay as they are. A ladder's rung is not chosen
    again: a change of contact points replans the message when it is made. Kinds
    without a category (codes, replies) are never refused here.
    """
    category = KIND_CATEGORY.get(kind)
    if category is None:
        return None
    problem = contact_problem(contact, category, today)
    if problem is not None:
        return problem
    enabled = settings.kind_channels.get(kind, ALL_CHANNELS)
    if not enabled:
        return reason(Code.KIND_DISABLED, kind=kind)
    if channel not in enabled:
        return reason(Code.CHANNEL_DISABLED_FOR_KIND, kind=kind, channel=channel)
    if channel not in _PREF_CHANNELS[contact.preferences[category]]:
        return reason(Code.PREFERENCE_CHANGED, category=category, channel=channel)
    for point in contact.points_for(channel):
        if point is not None and point.value == address:
            return point_problem(point, channel, settings)
    return reason(Code.CONTACT_POINT_CHANGED, channel=channel)


#: Blocks about the recipient, which the planner judges again on every pass: a row
#: blocked for one of them gives back its occurrence key (see carebell.outbox), so
#: once the recipient may receive it again the occurrence is planned afresh.
RECIPIENT_BLOCKS = frozenset(
    {BlockReason.OPTED_OUT, BlockReason.NO_CONSENT, BlockReason.UNVERIFIED, BlockReason.INELIGIBLE}
)
_BLOCK_FOR_CODE = {
    **dict.fromkeys(OPTED_OUT_CODE.values(), BlockReason.OPTED_OUT),
    Code.NO_CONSENT: BlockReason.NO_CONSENT,
    Code.NOT_VERIFIED: BlockReason.UNVERIFIED,
    **dict.fromkeys(
        (
            Code.CONTACT_AUTHORITY_NONE, Code.CONTACT_END_DATED, Code.NO_PREFERENCE,
            Code.PREFERENCE_NONE, Code.NO_CONTACT_POINT, Code.CONTACT_POINT_UNPARSEABLE,
            Code.CHANNEL_DISABLED_FOR_KIND, Code.KIND_DISABLED, Code.DUPLICATE_CONTACT_POINT,
            Code.CONTACT_POINT_CHANGED, Code.PREFERENCE_CHANGED,
        ),
        BlockReason.INELIGIBLE,
    ),
}  # fmt: skip


def block_reason_for(reasons: Iterable[Reason]) -> BlockReason | None:
    """The block (SPEC §8) a message refused for `reasons` is stored with: opted_out,
    no_consent or unverified for those problems of its contact point, ineligible for
    any other problem of the contact; None when no reason is about the recipient."""
    for r in reasons:
        found = _BLOCK_FOR_CODE.get(r.code)
        if found is not None:
            return found
    return None
