"""The staff app's one adapter to the messaging engine.

Everything the staff pages need from carebell.messaging beyond its models — the dry
run, replanning after a rule changed, choosing the formats a rule uses — is reached
through here, so that when the engine's rooms move only this module follows.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from carebell.audit import trail
from carebell.core.reasons import CATALOGUE, Code, reason
from carebell.messaging.models import AutomatedMessage, MessageTemplate, OutboxMessage
from carebell.sites.models import Site

FORECAST_DAYS = 7


@dataclass
class Forecast:
    """What a rule would send in the coming days, and what it would hold back."""

    days: int
    lines: list[dict] = field(default_factory=list)

    @property
    def planned(self) -> list[dict]:
        """The messages that would go, soonest first, each with `when` as a datetime."""
        lines = [
            {**line, "when": dt.datetime.fromisoformat(line["planned_at"])}
            for line in self.lines
            if line["planned_at"] and _is_planned(line)
        ]
        return sorted(lines, key=lambda line: line["when"])

    @property
    def not_sent(self) -> list[tuple[str, int]]:
        """(why, how many) for the decisions that would not send, most frequent first."""
        held = [line for line in self.lines if not _is_planned(line)]
        counts = Counter((line["reasons"] or [""])[-1] for line in held)
        return [(reason_text(code), count) for code, count in counts.most_common()]

    @property
    def segments(self) -> int:
        return sum(line["segments"] or 0 for line in self.planned)


def reason_text(code: str) -> str:
    """The catalogue's sentence for a reason code; the code itself where the sentence
    needs details the dry run's lines do not carry."""
    try:
        sentence = CATALOGUE[Code(code)].sentence
    except ValueError:
        return code or "—"
    return sentence if "{" not in sentence else code.replace("_", " ").capitalize()


def _is_planned(line: dict) -> bool:
    return line["status"] == "planned"  # a Decision's status: "planned" | "skipped"


def forecast(rule: AutomatedMessage, *, now: dt.datetime | None = None) -> Forecast:
    """The dry run of `rule` as it stands (saved or not, enabled or not) over the next
    FORECAST_DAYS days. The rule is written only inside a transaction that is rolled
    back, so nothing of it remains, and the dry run itself writes nothing."""
    from carebell.planning.dry_run import plan_period

    now = now or timezone.now()
    end = now + dt.timedelta(days=FORECAST_DAYS)
    result = Forecast(days=FORECAST_DAYS)
    with transaction.atomic():
        others = AutomatedMessage.objects.filter(site_id=rule.site_id).exclude(pk=rule.pk)
        enabled_others = list(others.filter(enabled=True).values_list("pk", flat=True))
        others.filter(pk__in=enabled_others).update(enabled=False)
        trial = AutomatedMessage.objects.get(pk=rule.pk) if rule.pk else AutomatedMessage()
        for name in ("site_id", "kind", "name", "offsets", "channels", "filters"):
            setattr(trial, name, getattr(rule, name))
        trial.settings_override = rule.settings_override
        trial.enabled = True
        trial.save()
        site = Site.objects.select_related("delivery").get(pk=rule.site_id)
        result.lines = [
            line for line in plan_period([site], now, now, end) if line["kind"] == rule.kind
        ]
        transaction.set_rollback(True)
    return result


def save_rule(rule: AutomatedMessage, *, by, now: dt.datetime | None = None) -> int:
    """Create or change an automated message and plan the site's pending messages
    again in the same transaction (as carebell.sites.actions does for delivery
    settings). Returns how many pending messages the replan moved or closed."""
    from carebell.planning.replan import replan_site

    now = now or timezone.now()
    rule.full_clean()
    with transaction.atomic():
        created = rule.pk is None
        rule.save()
        done = replan_site(rule.site, now=now, why=reason(Code.SETTINGS_CHANGED))
        trail.record(by, "create" if created else "change", rule, at=now)
    return done.moved + done.closed + done.stored


def use_formats(rule: AutomatedMessage, chosen: dict[tuple[str, str], int], *, by) -> None:
    """Make each chosen message format the one in use for the rule's kind, over its
    channel and in its language (one format in use per kind, channel and language)."""
    with transaction.atomic():
        for (channel, language), template_id in chosen.items():
            formats = MessageTemplate.objects.filter(
                site_id=rule.site_id, kind=rule.kind, channel=channel, language=language
            )
            if not formats.filter(pk=template_id).exists():
                continue
            if formats.filter(pk=template_id, in_use=True).exists():
                continue
            formats.filter(in_use=True).update(in_use=False, updated_at=timezone.now())
            formats.filter(pk=template_id).update(in_use=True, updated_at=timezone.now())
            trail.record(
                by, "change", object_type="messaging.messagetemplate",
                object_id=str(template_id), site_id=rule.site_id, detail={"fields": ["in_use"]},
            )  # fmt: skip


def replanned_since(site: Site, since: dt.datetime) -> int:
    """How many of the site's messages a replan touched at or after `since`."""
    return OutboxMessage.objects.filter(site=site, updated_at__gte=since).count()


# The queue and the patient panel (SPEC §8, §11).

PLAN_DAYS = 30


def reason_sentences(stored: list[dict]) -> list[str]:
    """Stored reasons (code plus parameters) as the catalogue's sentences."""
    from carebell.planning.explain import sentences

    return sentences(stored or [])


def cancel_queued(site: Site, message_ids, *, by, now: dt.datetime | None = None) -> int:
    """Delete (cancel) the site's pending messages among `message_ids` through the
    outbox; sent or ended ones are kept untouched. Each cancelled one is audited.
    Returns how many were cancelled."""
    from carebell import outbox

    now = now or timezone.now()
    ids = list(
        OutboxMessage.objects.filter(site=site, id__in=list(message_ids)).values_list(
            "id", flat=True
        )
    )
    if not ids:
        return 0
    why = [reason(Code.CANCELLED_BY_STAFF, user=by.get_username())]
    with transaction.atomic():
        cancelled = outbox.cancel_messages(ids, why, now)
        done = OutboxMessage.objects.filter(id__in=ids, status="cancelled", updated_at=now)
        for message_id in done.values_list("id", flat=True):
            trail.record(by, "cancel", object_type="messaging.outboxmessage",
                         object_id=str(message_id), site_id=site.pk, at=now)  # fmt: skip
    return cancelled


def planned_for_patient(patient, *, now: dt.datetime | None = None, days: int = PLAN_DAYS):
    """What planning would decide for `patient` within `days` (the forecast the
    patient panel and `carebell explain --patient` show): every kind's messages it
    would plan, and those it would not send. Writes nothing."""
    from carebell.planning.forecast import forecast_patient

    return [line.decision for line in forecast_patient(patient, now or timezone.now(), days)]
