"""What pharmacy, greeting and recall messages are due when (SPEC §5.1, §5.4–§5.5).

Event messages (ready for pickup, pickup confirmation, welcome) go at the first allowed
instant after their event. Daily-batch messages (pickup reminders, refill reminders,
reviews, birthdays, recalls) go at the first allowed instant after the site's daily process
start on their day. Whether a message is on at all for a site is the rule's business;
these functions decide whether it is due for *this* fill, prescription or patient.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from carebell.core.reasons import Code, Reason, reason
from carebell.core.timing import Plan, skip
from carebell.core.vocab import (
    Channel,
    DeaSchedule,
    FillStep,
    Kind,
    PatientEvent,
    PrescriptionStatus,
    ReadyTrigger,
)
from carebell.core.windows import DeliveryPolicy

_END_OF_DAY = time(23, 59, 59)
_ONE_DAY = timedelta(days=1)
_CONTROLLED = frozenset({DeaSchedule.C3, DeaSchedule.C4, DeaSchedule.C5})


@dataclass(frozen=True)
class PharmacySettings:
    """A pharmacy site's message settings (SPEC §4), defaults as specified."""

    ready_trigger: ReadyTrigger = ReadyTrigger.LABEL_PRINTED
    pickup_reminder_days: tuple[int, ...] = (3, 7)
    refill_when_due: bool = True
    refill_when_past_due: bool = True
    refill_days_before: int = 3
    refill_days_after: int = 7
    refill_non_maintenance: bool = False
    refill_controlled: bool = False  # C3–C5
    refill_c2: bool = False
    refill_ask_prescriber: bool = False
    review_delay: timedelta = timedelta(days=1)
    review_resend_after_days: int = 7
    review_max_sends: int = 2
    welcome_on: PatientEvent = PatientEvent.ADDED


@dataclass(frozen=True, slots=True)
class FillFacts:
    """A fill and when it reached each workflow step (aware datetimes)."""

    fill_id: object
    prescription_id: object
    patient_id: object
    step: FillStep
    steps_at: Mapping[FillStep, datetime] = field(default_factory=dict)


def drug_classes(maintenance: bool, schedule: DeaSchedule) -> frozenset[str]:
    """The classes an automated message's drug filter names a drug by: maintenance or
    not, and its controlled class (C2, or C3–C5) when it has one."""
    classes = {"maintenance" if maintenance else "non_maintenance"}
    if schedule is DeaSchedule.C2:
        classes.add("c2")
    elif schedule is not DeaSchedule.NONE:
        classes.add("controlled")
    return frozenset(classes)


def in_drug_classes(chosen: frozenset[str], maintenance: bool, schedule: DeaSchedule) -> bool:
    """True when a rule that chose `chosen` drug classes (none = every drug) covers
    this drug: one of its classes was chosen. The site's own refill settings still
    decide first whether controlled and non-maintenance drugs are reminded at all."""
    return not chosen or bool(chosen & drug_classes(maintenance, schedule))


@dataclass(frozen=True, slots=True)
class PrescriptionFacts:
    """A prescription as refill reminders need it. `last_fill_date` is the date of the
    fill the reminder is about; `has_newer_fill` is True once a later fill exists."""

    prescription_id: object
    patient_id: object
    status: PrescriptionStatus
    refills_remaining: int
    last_fill_date: date | None
    days_supply: int
    maintenance: bool = True
    dea_schedule: DeaSchedule = DeaSchedule.NONE
    has_newer_fill: bool = False


@dataclass(frozen=True, slots=True)
class RefillDecision:
    """The refill kind due for a prescription on one day, or None, with reasons."""

    kind: Kind | None
    reasons: tuple[Reason, ...] = ()


def plan_event(
    policy: DeliveryPolicy,
    channel: Channel,
    event_at: datetime,
    now: datetime,
    recipient_zone: ZoneInfo | None = None,
) -> Plan:
    """The first allowed instant at or after both `event_at` and `now`."""
    wanted = max(event_at, now)
    at = policy.earliest_allowed(channel, wanted, None, recipient_zone)
    if at is None:
        return skip(Code.NO_ALLOWED_TIME, wanted, not_before=wanted, target=wanted)
    reasons = (reason(Code.MOVED_LATER_TO_WINDOW, at=at),) if at > wanted else ()
    return Plan(at, wanted, reasons)


def plan_daily(
    policy: DeliveryPolicy,
    channel: Channel,
    day: date,
    now: datetime,
    same_day_only: bool = False,
    recipient_zone: ZoneInfo | None = None,
) -> Plan:
    """The daily batch's instant for `day`: the first allowed instant after the site's
    daily process start that day (and after `now`). With `same_day_only` the message
    is skipped rather than carried to a later day."""
    start = policy.local_instant(day, policy.settings.daily_process_start)
    end = policy.local_instant(day, _END_OF_DAY)
    if now > end:
        return skip(Code.TARGET_PASSED, start, target=start)
    if not same_day_only:
        return plan_event(policy, channel, start, now, recipient_zone)
    at = policy.earliest_allowed(channel, max(start, now), end, recipient_zone)
    if at is None:
        return skip(Code.NO_ALLOWED_TIME, start, not_before=start, target=end)
    return Plan(at, start)


# Ready for pickup and pickup reminders -------------------------------------------------


def _stopped(fill: FillFacts) -> Reason | None:
    if fill.step is FillStep.PICKED_UP:
        return reason(Code.PICKED_UP)
    if fill.step is FillStep.RETURNED_TO_STOCK:
        return reason(Code.RETURNED_TO_STOCK)
    return None


def ready_at(fill: FillFacts, trigger: ReadyTrigger) -> datetime | None:
    """When the fill reached the site's trigger step (or a later step up to READY —
    a workflow may skip a step), else None."""
    first = FillStep(trigger.value).order
    times = [at for s, at in fill.steps_at.items() if first <= s.order <= FillStep.READY.order]
    return min(times) if times else None


def plan_ready_notice(
    policy: DeliveryPolicy,
    channel: Channel,
    fill: FillFacts,
    settings: PharmacySettings,
    now: datetime,
    recipient_zone: ZoneInfo | None = None,
) -> Plan:
    """The ready-for-pickup message: once the fill reaches the trigger step, unless it
    was already picked up or returned to stock."""
    stopped = _stopped(fill)
    if stopped is not None:
        return Plan(None, None, (stopped,))
    reached = ready_at(fill, settings.ready_trigger)
    if reached is None or FillStep(settings.ready_trigger.value).order > fill.step.order:
        return skip(Code.TRIGGER_NOT_REACHED, trigger=settings.ready_trigger)
    return plan_event(policy, channel, reached, now, recipient_zone)


def plan_pickup_reminders(
    policy: DeliveryPolicy,
    channel: Channel,
    fill: FillFacts,
    settings: PharmacySettings,
    now: datetime,
    recipient_zone: ZoneInfo | None = None,
) -> tuple[Plan, ...]:
    """One plan per configured day count after the ready notice, in the daily batch of
    that day; all skipped once the fill is picked up or returned to stock."""
    stopped = _stopped(fill)
    reached = ready_at(fill, settings.ready_trigger)
    out = []
    for days in sorted(settings.pickup_reminder_days):
        if stopped is not None or reached is None:
            out.append(
                Plan(
                    None,
                    None,
                    (stopped or reason(Code.TRIGGER_NOT_REACHED, trigger=settings.ready_trigger),),
                )
            )
            continue
        day = policy.local_date(reached) + timedelta(days=days)
        out.append(plan_daily(policy, channel, day, now, recipient_zone=recipient_zone))
    return tuple(out)


def plan_pickup_confirmation(
    policy: DeliveryPolicy,
    channel: Channel,
    fill: FillFacts,
    now: datetime,
    recipient_zone: ZoneInfo | None = None,
) -> Plan:
    """The pickup confirmation: after the fill was picked up, else not_picked_up."""
    picked = fill.steps_at.get(FillStep.PICKED_UP)
    if fill.step is not FillStep.PICKED_UP or picked is None:
        return skip(Code.NOT_PICKED_UP)
    return plan_event(policy, channel, picked, now, recipient_zone)


# Refill reminders ------------------------------------------------------------------------


def refill_due_date(rx: PrescriptionFacts) -> date | None:
    """Last fill date + days supply, or None without a fill."""
    if rx.last_fill_date is None:
        return None
    return rx.last_fill_date + timedelta(days=rx.days_supply)


def refill_problem(rx: PrescriptionFacts, settings: PharmacySettings) -> Reason | None:
    """None when the prescription passes the status, newer-fill and drug filters."""
    if rx.status is not PrescriptionStatus.ACTIVE:
        return reason(Code.RX_NOT_ACTIVE, status=rx.status)
    if rx.has_newer_fill:
        return reason(Code.REFILLED)
    # Schedule II drugs cannot be refilled (21 CFR 1306.12), so they have their own switch.
    if rx.dea_schedule is DeaSchedule.C2 and not settings.refill_c2:
        return reason(Code.C2_EXCLUDED)
    if rx.dea_schedule in _CONTROLLED and not settings.refill_controlled:
        return reason(Code.CONTROLLED_EXCLUDED, schedule=rx.dea_schedule)
    if not rx.maintenance and not settings.refill_non_maintenance:
        return reason(Code.NOT_MAINTENANCE)
    return None


def refill_kind_on(rx: PrescriptionFacts, settings: PharmacySettings, day: date) -> RefillDecision:
    """The refill reminder due for `rx` on the site's date `day`: refill_due N days
    before the due date, refill_past_due M days after it, or the ask-your-prescriber
    variant when no refills remain and the site sends it."""
    problem = refill_problem(rx, settings)
    due = refill_due_date(rx)
    if problem is not None or due is None:
        return RefillDecision(None, (problem or reason(Code.NOT_DUE_TODAY, day=day),))
    if settings.refill_when_due and day == due - timedelta(days=settings.refill_days_before):
        kind = Kind.REFILL_DUE
    elif settings.refill_when_past_due and day == due + timedelta(days=settings.refill_days_after):
        kind = Kind.REFILL_PAST_DUE
    else:
        return RefillDecision(None, (reason(Code.NOT_DUE_TODAY, day=day),))
    if rx.refills_remaining > 0:
        return RefillDecision(kind)
    if settings.refill_ask_prescriber:
        return RefillDecision(Kind.REFILL_ASK_PRESCRIBER, (reason(Code.ASK_PRESCRIBER),))
    return RefillDecision(None, (reason(Code.NO_REFILLS_REMAINING),))


# Review requests --------------------------------------------------------------------------


def plan_review_request(
    policy: DeliveryPolicy,
    channel: Channel,
    picked_up_at: datetime,
    sent_at: Sequence[datetime],
    link_opened: bool,
    settings: PharmacySettings,
    now: datetime,
    recipient_zone: ZoneInfo | None = None,
) -> Plan:
    """The next review request: `review_delay` after pickup, then every
    `review_resend_after_days` after the last send while the link is unopened, up to
    `review_max_sends` sends in all; in the daily batch, never before `now`."""
    if link_opened:
        return skip(Code.REVIEW_LINK_OPENED)
    limit = settings.review_max_sends if settings.review_resend_after_days > 0 else 1
    if len(sent_at) >= limit:
        return skip(Code.REVIEW_MAX_SENDS, count=len(sent_at))
    if sent_at:
        due = max(sent_at) + timedelta(days=settings.review_resend_after_days)
    else:
        due = picked_up_at + settings.review_delay
    batch = policy.local_instant(policy.local_date(due), policy.settings.daily_process_start)
    return plan_event(policy, channel, max(due, batch), now, recipient_zone)


# Greetings ----------------------------------------------------------------------------------


def birthday_in(year: int, born: date) -> date:
    """The day `born`'s birthday is celebrated in `year`: 29 February becomes
    28 February in a common year."""
    if (born.month, born.day) == (2, 29) and not _is_leap(year):
        return date(year, 2, 28)
    return born.replace(year=year)


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def birthday_problem(born: date, day: date) -> Reason | None:
    """None when `day` is the birthday of someone born on `born`, else not_birthday."""
    if day <= born or birthday_in(day.year, born) != day:
        return reason(Code.NOT_BIRTHDAY, day=day)
    return None


def plan_birthday(
    policy: DeliveryPolicy,
    channel: Channel,
    born: date,
    day: date,
    now: datetime,
    recipient_zone: ZoneInfo | None = None,
) -> Plan:
    """The birthday greeting in the daily batch of the site's date `day`, if it is the
    birthday; kept on the day (a greeting a day late is skipped instead)."""
    problem = birthday_problem(born, day)
    if problem is not None:
        return Plan(None, None, (problem,))
    plan = plan_daily(policy, channel, day, now, same_day_only=True, recipient_zone=recipient_zone)
    if plan.planned and (born.month, born.day) != (day.month, day.day):
        return Plan(plan.at, plan.target, (*plan.reasons, reason(Code.BIRTHDAY_LEAP_DAY_MOVED)))
    return plan


def plan_welcome(
    policy: DeliveryPolicy,
    channel: Channel,
    event: PatientEvent,
    event_at: datetime,
    settings: PharmacySettings,
    now: datetime,
    recipient_zone: ZoneInfo | None = None,
) -> Plan:
    """The welcome message after the site's chosen event (patient added, or consent)."""
    if event is not settings.welcome_on:
        return skip(Code.WELCOME_ON_OTHER_EVENT, event=settings.welcome_on)
    return plan_event(policy, channel, event_at, now, recipient_zone)


# Recalls (SPEC §5.1) ------------------------------------------------------------------------

#: A recall whose message day's batch missed it (imported late, the planner down) is
#: still announced this many days after; older ones are not, so enabling a recall rule
#: does not message every patient overdue for years at once.
RECALL_GRACE_DAYS = 30


@dataclass(frozen=True, slots=True)
class RecallFacts:
    """A visit the patient is due for on the site's date `due_on`, and what may have
    satisfied it: the recall closed (completed), the patient's last visit, the start of
    the first open appointment booked ahead."""

    patient_id: object
    due_on: date
    closed: bool = False
    last_visit_on: date | None = None
    booked_at: datetime | None = None


def recall_due_at_age(born: date, years: int) -> date:
    """When someone born on `born` is due for the visit at age `years`: that birthday
    (29 February on 28 February in a common year)."""
    return birthday_in(born.year + years, born)


def recall_due_after_visit(last_visit: date, months: int) -> date:
    """`months` after `last_visit`: the same day of the month, or the month's last day
    when it is shorter (31 August + 6 months = 28 or 29 February)."""
    index = last_visit.month - 1 + months
    year, month = last_visit.year + index // 12, index % 12 + 1
    return date(year, month, min(last_visit.day, _days_in(year, month)))


def _days_in(year: int, month: int) -> int:
    following = date(year + month // 12, month % 12 + 1, 1)
    return (following - timedelta(days=1)).day


def recall_problem(recall: RecallFacts, day: date, lead_days: int = 0) -> Reason | None:
    """None when the recall's message is due on the site's date `day`: from `lead_days`
    before the due date to RECALL_GRACE_DAYS after that, while the recall is open, no
    visit is booked and the patient has not been seen since that day."""
    if recall.closed:
        return reason(Code.RECALL_CLOSED)
    if recall.booked_at is not None:
        return reason(Code.RECALL_BOOKED, start=recall.booked_at)
    first = recall.due_on - timedelta(days=lead_days)
    if recall.last_visit_on is not None and recall.last_visit_on >= first:
        return reason(Code.RECALL_VISITED, visit=recall.last_visit_on)
    if day < first:
        return reason(Code.RECALL_NOT_DUE, due=recall.due_on, day=first)
    if (day - first).days > RECALL_GRACE_DAYS:
        return reason(Code.RECALL_TOO_LATE, due=recall.due_on, days=RECALL_GRACE_DAYS)
    return None


def plan_recall(
    policy: DeliveryPolicy,
    channel: Channel,
    recall: RecallFacts,
    day: date,
    now: datetime,
    lead_days: int = 0,
    recipient_zone: ZoneInfo | None = None,
) -> Plan:
    """The recall message in the daily batch of the site's date `day`, if it is due then
    (`recall_problem`); kept on that day (a later batch may still catch it up)."""
    problem = recall_problem(recall, day, lead_days)
    if problem is not None:
        return Plan(None, None, (problem,))
    return plan_daily(policy, channel, day, now, same_day_only=True, recipient_zone=recipient_zone)
