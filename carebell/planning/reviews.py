"""Review requests after a pickup, resent while the review link stays unopened.

Each send n of a patient's pickups of one day is its own occurrence (`…#n` in the
dedupe key), so what was sent and whether its link was opened is read back from the
outbox and its events, a chunk of patients at a time.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator

from carebell.core.channels import Delivery
from carebell.core.schedule import plan_review_request
from carebell.core.vocab import Kind
from carebell.messaging.models import PENDING, MessageEvent, OutboxMessage
from carebell.planning.decisions import Decision, dedupe_key
from carebell.planning.pharmacy import Only, contacts_of, fill_groups, fill_subject, picked_up_fills
from carebell.planning.subjects import PlanFor, SitePass, Subject, chunks, decide

#: The note on a MessageEvent that records a patient opening a review link.
REVIEW_LINK_OPENED = "review_link_opened"
_DAY = dt.timedelta(days=1)


@dataclasses.dataclass(slots=True)
class _Sent:
    message_id: int
    status: str
    at: dt.datetime


def plan_reviews(p: SitePass, rule, only: Only | None = None) -> Iterator[Decision]:
    """Review requests for the patients' pickups of one day (of `only`'s patients, if
    given): `review_delay` after the pickup, resent every `review_resend_after_days`
    while the link stays unopened, up to `review_max_sends`; each send n is its own
    occurrence."""
    rx = p.rx
    span = rx.review_delay + dt.timedelta(days=rx.review_resend_after_days * rx.review_max_sends)
    since = p.now - span - 2 * _DAY
    subjects = _review_subjects(p, rule, since, only)
    yield from decide(p, rule, Kind.REVIEW_REQUEST, subjects, contacts_of(only))


def _review_subjects(p: SitePass, rule, since: dt.datetime, only: Only | None) -> Iterator[Subject]:
    """A subject per patient and day of pickups since `since`, with its send history."""
    day_of = lambda r: p.policy.local_date(r.at)  # noqa: E731
    if only is None:
        picked = picked_up_fills(p, since)
    else:  # read on the first day, since its earliest `since`
        picked = only.read("picked up", lambda: picked_up_fills(p, since, only.patient_ids))
        picked = [r for r in picked if r.at >= since]
    # Group first, then chunk the groups: a patient's pickups never straddle two chunks.
    groups = list(fill_groups(p, Kind.REVIEW_REQUEST, picked, day_of))
    for chunk in chunks(groups):
        ids = {members[0].facts.patient_id for _, members in chunk}
        if only is None:
            history, opened = _review_history(p, rule, ids, since)
        else:
            # Nothing is stored between the batches of a forecast: one read serves all
            # (a day's pickups are at or after its `since`, so are their messages).
            read = lambda: _review_history(p, rule, set(only.patient_ids), since)  # noqa: E731
            history, opened = only.read(("review history", rule.id), read)
        for group, members in chunk:
            base = f"p{members[0].facts.patient_id}@{day_of(members[0]).isoformat()}"
            plan_for = _review_plan(p, rule, base, members[-1].at, history, opened)
            yield fill_subject(group, members, plan_for)


def _review_key(rule, occurrence: str, delivery: Delivery) -> str:
    kind = Kind.REVIEW_REQUEST.value
    return dedupe_key(f"r{rule.id}:{kind}:{occurrence}:{delivery.channel.value}:{delivery.address}")


def _review_plan(p: SitePass, rule, base: str, picked_up_at, history, opened) -> PlanFor:
    limit = max(p.rx.review_max_sends, 1)

    def plan_for(delivery: Delivery, zone):
        keys = [_review_key(rule, f"{base}#{n}", delivery) for n in range(1, limit + 1)]
        sent = [history[k] for k in keys if k in history]
        if sent and sent[-1].status in PENDING:
            return None  # already planned; nothing new until it goes
        was_opened = _opened_for(base, opened) or any(k in opened for k in keys)
        plan = plan_review_request(
            p.policy, delivery.channel, picked_up_at, [s.at for s in sent], was_opened, p.rx,
            p.now, zone,
        )  # fmt: skip
        if plan.planned and p.policy.local_date(plan.at) > p.today:
            return None  # not due yet: a later daily batch plans it
        return plan, f"{base}#{len(sent) + 1}"

    return plan_for


def _opened_for(base: str, opened: set[str]) -> bool:
    return any(f":{base}#" in key for key in opened)


def _review_history(p: SitePass, rule, patient_ids: set[int], since: dt.datetime):
    """This rule's review messages since `since` to these patients (by dedupe key) and
    the keys of those whose link was opened."""
    rows = OutboxMessage.objects.filter(
        site_id=p.site.id, kind=Kind.REVIEW_REQUEST.value, rule_id=rule.id,
        patient_id__in=sorted(patient_ids), planned_at__gte=since,
    ).values_list("id", "dedupe_key", "status", "sent_at", "planned_at")  # fmt: skip
    history = {key: _Sent(i, status, sent or planned) for i, key, status, sent, planned in rows}
    by_id = {s.message_id: key for key, s in history.items()}
    opened_ids = MessageEvent.objects.filter(
        message_id__in=list(by_id), note=REVIEW_LINK_OPENED
    ).values_list("message_id", flat=True)
    return history, {by_id[i] for i in opened_ids}
