"""The words carebell speaks: channels, kinds, categories and states, defined once.

Every other module (models, rules, providers, API) imports these rather than
spelling the strings again, so a typo is an AttributeError, not a silent mismatch.
"""

from __future__ import annotations

from enum import StrEnum


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"
    CALL = "call"

    @property
    def cost_rank(self) -> int:
        """Cheapest first: a ladder preference tries channels in this order."""
        return _CHANNEL_COST[self]


_CHANNEL_COST = {Channel.EMAIL: 0, Channel.SMS: 1, Channel.CALL: 2}

#: Channels that are phone-based, and so fall under quiet hours, consent and SMS caps.
PHONE_CHANNELS = frozenset({Channel.SMS, Channel.CALL})


class SiteKind(StrEnum):
    CLINIC = "clinic"
    PHARMACY = "pharmacy"


class Category(StrEnum):
    """What a contact sets a preference for (SPEC §3.3)."""

    REMINDERS = "reminders"
    RECALLS = "recalls"
    GENERAL = "general"
    PORTAL = "portal"
    REFILL_REMINDER = "refill_reminder"
    RX_READY = "rx_ready"
    BIRTHDAY = "birthday"
    WELCOME = "welcome"
    REVIEW = "review"


class Kind(StrEnum):
    """What a message is about. Each kind belongs to one preference category."""

    APPT_CONFIRMATION = "appt_confirmation"
    APPT_REMINDER = "appt_reminder"
    APPT_CANCEL_ACK = "appt_cancel_ack"
    APPT_CANCEL_REFUSED = "appt_cancel_refused"
    APPT_RESCHEDULED = "appt_rescheduled"
    APPT_NO_SHOW = "appt_no_show"
    RECALL = "recall"
    RX_READY = "rx_ready"
    RX_PICKUP_REMINDER = "rx_pickup_reminder"
    RX_PICKUP_CONFIRMATION = "rx_pickup_confirmation"
    REFILL_DUE = "refill_due"
    REFILL_PAST_DUE = "refill_past_due"
    REFILL_ASK_PRESCRIBER = "refill_ask_prescriber"
    REVIEW_REQUEST = "review_request"
    BIRTHDAY = "birthday"
    WELCOME = "welcome"
    GENERAL = "general"
    VERIFICATION = "verification"
    INBOX_REPLY = "inbox_reply"
    KEYWORD_REPLY = "keyword_reply"
    STAFF_NOTICE = "staff_notice"

    @property
    def category(self) -> Category | None:
        """The preference category that governs this kind; None for transactional
        messages (verification codes, replies) that answer the contact directly."""
        return KIND_CATEGORY.get(self)

    @property
    def is_appointment(self) -> bool:
        return self.value.startswith("appt_")


KIND_CATEGORY: dict[Kind, Category] = {
    Kind.APPT_CONFIRMATION: Category.REMINDERS,
    Kind.APPT_REMINDER: Category.REMINDERS,
    Kind.APPT_CANCEL_ACK: Category.REMINDERS,
    Kind.APPT_CANCEL_REFUSED: Category.REMINDERS,
    Kind.APPT_RESCHEDULED: Category.REMINDERS,
    Kind.APPT_NO_SHOW: Category.REMINDERS,
    Kind.RECALL: Category.RECALLS,
    Kind.RX_READY: Category.RX_READY,
    Kind.RX_PICKUP_REMINDER: Category.RX_READY,
    Kind.RX_PICKUP_CONFIRMATION: Category.RX_READY,
    Kind.REFILL_DUE: Category.REFILL_REMINDER,
    Kind.REFILL_PAST_DUE: Category.REFILL_REMINDER,
    Kind.REFILL_ASK_PRESCRIBER: Category.REFILL_REMINDER,
    Kind.REVIEW_REQUEST: Category.REVIEW,
    Kind.BIRTHDAY: Category.BIRTHDAY,
    Kind.WELCOME: Category.WELCOME,
    Kind.GENERAL: Category.GENERAL,
}

#: Kinds addressed to staff, not to patients or their contacts (a department's email
#: about a cancellation or a possible opt-out): no preference, consent, template,
#: delivery window or quiet hours applies — those protect patients — and the words
#: arrive written.
STAFF_KINDS = frozenset({Kind.STAFF_NOTICE})
#: The kinds a message format (template) exists for.
FORMAT_KINDS = tuple(k for k in Kind if k not in STAFF_KINDS)

#: Kinds that count toward the healthcare-exemption SMS frequency caps (SPEC §4):
#: automated appointment and treatment messages. Replies and codes are exempt.
CAPPED_KINDS = frozenset(
    {
        Kind.APPT_CONFIRMATION,
        Kind.APPT_REMINDER,
        Kind.APPT_RESCHEDULED,
        Kind.APPT_NO_SHOW,
        Kind.RECALL,
        Kind.RX_READY,
        Kind.RX_PICKUP_REMINDER,
        Kind.RX_PICKUP_CONFIRMATION,
        Kind.REFILL_DUE,
        Kind.REFILL_PAST_DUE,
        Kind.REFILL_ASK_PRESCRIBER,
    }
)


class Relationship(StrEnum):
    SELF = "self"
    MOTHER = "mother"
    FATHER = "father"
    GUARDIAN = "guardian"
    CAREGIVER = "caregiver"
    OTHER = "other"


class Authority(StrEnum):
    """A family contact's authority over the patient. Blank means not recorded,
    which the practice seed treats as allowed."""

    BLANK = ""
    JOINT = "joint"
    EXCLUSIVE = "exclusive"
    NONE = "none"


class ConsentSource(StrEnum):
    SIGNATURE_PAD = "signature_pad"
    WEB_FORM = "web_form"
    PAPER = "paper"
    VERBAL = "verbal"
    SMS_KEYWORD = "sms_keyword"
    IMPORT = "import"


class ContactPointKind(StrEnum):
    MOBILE = "mobile"
    HOME = "home"
    EMAIL = "email"


class OutboxStatus(StrEnum):
    """An outbox row's state. Only moves forward (see `can_move`)."""

    SCHEDULED = "scheduled"
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    CANCELLED = "cancelled"
    BLOCKED = "blocked"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATUSES

    @property
    def is_pending(self) -> bool:
        return self in PENDING_STATUSES


PENDING_STATUSES = frozenset({OutboxStatus.SCHEDULED, OutboxStatus.QUEUED})
FINAL_STATUSES = frozenset(
    {
        OutboxStatus.DELIVERED,
        OutboxStatus.UNDELIVERED,
        OutboxStatus.FAILED,
        OutboxStatus.CANCELLED,
        OutboxStatus.BLOCKED,
    }
)

# The rank of each status along the one road a message travels. A move is allowed
# only to a higher rank; the four endings share the top rank but a `sent` message
# may still end as delivered or undelivered.
_STATUS_RANK = {
    OutboxStatus.SCHEDULED: 0,
    OutboxStatus.QUEUED: 1,
    OutboxStatus.SENDING: 2,
    OutboxStatus.SENT: 3,
    OutboxStatus.DELIVERED: 4,
    OutboxStatus.UNDELIVERED: 4,
    OutboxStatus.FAILED: 4,
    OutboxStatus.CANCELLED: 4,
    OutboxStatus.BLOCKED: 4,
}


def can_move(current: OutboxStatus, new: OutboxStatus) -> bool:
    """True when an outbox row in `current` may move to `new`.

    Status only moves forward: a late "sent" callback never undoes "delivered", and a
    message a provider accepted (`sent`) can no longer be cancelled or blocked. A
    `sending` message may still be: between attempts nothing is in flight, and the
    dispatcher re-checks it before every try.
    """
    if current.is_final:
        return False
    if current is OutboxStatus.SENT and new in (OutboxStatus.CANCELLED, OutboxStatus.BLOCKED):
        return False
    return _STATUS_RANK[new] > _STATUS_RANK[current]


class EntityType(StrEnum):
    """What an outbox row is about (its `entity_type`, with `entity_id`; a combined
    message lists several of one type in `entity_ids` and its subjects)."""

    APPOINTMENT = "appointment"
    PRESCRIPTION = "prescription"
    FILL = "fill"
    RECALL = "recall"
    PATIENT = "patient"
    STAFF_NOTIFICATION = "staff_notification"


class AttemptStatus(StrEnum):
    """A delivery attempt's state. `started` until the provider answers; then its
    answer (`queued`, `sent`, `delivered`) or `failed` (a definite refusal: an error
    reply, or a request that never left). `unknown` when the request may have
    reached the provider but no answer came back (a read timeout, a connection
    dropped after the request was written): such an attempt is settled by asking the
    provider (lookup, or a resend under its own idempotency key) or by its status
    callback, never by sending a new attempt beside it."""

    STARTED = "started"
    UNKNOWN = "unknown"
    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"


class BlockReason(StrEnum):
    OPTED_OUT = "opted_out"
    NO_CONSENT = "no_consent"
    UNVERIFIED = "unverified"
    WORD_RESTRICTED = "word_restricted"
    INELIGIBLE = "ineligible"
    CAP = "cap"


class AppointmentStatus(StrEnum):
    BOOKED = "booked"
    CONFIRMED = "confirmed"
    CANCEL_REQUESTED = "cancel_requested"
    CANCELLED = "cancelled"
    NO_SHOW = "no_show"
    ARRIVED = "arrived"
    COMPLETED = "completed"
    DELETED = "deleted"

    @property
    def is_open(self) -> bool:
        """Still expected to happen, so reminders for it may go out."""
        return self in (
            AppointmentStatus.BOOKED,
            AppointmentStatus.CONFIRMED,
            AppointmentStatus.CANCEL_REQUESTED,
        )


class CancellationMode(StrEnum):
    BY_REQUEST = "by_request"
    AUTOMATIC = "automatic"


class DeaSchedule(StrEnum):
    NONE = ""
    C2 = "C2"
    C3 = "C3"
    C4 = "C4"
    C5 = "C5"


class PrescriptionStatus(StrEnum):
    ACTIVE = "active"
    INACTIVE = "inactive"
    TRANSFERRED = "transferred"
    EXPIRED = "expired"


class FillStep(StrEnum):
    """A fill's workflow, in order (SPEC §5.4)."""

    RECEIVED = "received"
    INSURANCE_APPROVED = "insurance_approved"
    VERIFIED_FOR_FILL = "verified_for_fill"
    LABEL_PRINTED = "label_printed"
    READY = "ready"
    PICKED_UP = "picked_up"
    RETURNED_TO_STOCK = "returned_to_stock"

    @property
    def order(self) -> int:
        return list(FillStep).index(self)


class ReadyTrigger(StrEnum):
    """The fill step at which a pharmacy tells the patient the order is ready."""

    INSURANCE_APPROVED = "insurance_approved"
    VERIFIED_FOR_FILL = "verified_for_fill"
    LABEL_PRINTED = "label_printed"


class Weekday(StrEnum):
    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"

    @property
    def iso(self) -> int:
        """1 = Monday … 7 = Sunday, as `date.isoweekday()`."""
        return list(Weekday).index(self) + 1


class Preference(StrEnum):
    """A contact's choice for one category (SPEC §3.3).

    `+` joins channels that are all used ("both"); `|` joins a ladder, cheapest first,
    of which only the first usable channel is used. Blank means "not set".
    """

    BLANK = ""
    NONE = "none"
    EMAIL = "email"
    SMS = "sms"
    CALL = "call"
    EMAIL_AND_SMS = "email+sms"
    ALL = "email+sms+call"
    EMAIL_OR_SMS = "email|sms"
    SMS_OR_CALL = "sms|call"
    EMAIL_OR_SMS_OR_CALL = "email|sms|call"

    @property
    def is_ladder(self) -> bool:
        return "|" in self.value

    @property
    def channels(self) -> tuple[Channel, ...]:
        """The channels named, cheapest first; empty for blank and none."""
        if self in (Preference.BLANK, Preference.NONE):
            return ()
        parts = self.value.replace("|", "+").split("+")
        return tuple(sorted((Channel(p) for p in parts), key=lambda c: c.cost_rank))


class OffsetUnit(StrEnum):
    """How an appointment message's timing is counted back from the start (SPEC §5.1)."""

    DAYS = "days"
    HOURS = "hours"


class PatientEvent(StrEnum):
    """When a pharmacy applies patient defaults and sends the welcome (SPEC §3.4, §5.5)."""

    ADDED = "added"
    CONSENTED = "consented"
