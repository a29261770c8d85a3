"""`carebell plan`: run the planner once, or show what it would do (--dry-run)."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from carebell.cli import usage_error
from carebell.planning.dry_run import plan_period
from carebell.planning.runner import plan_once
from carebell.sites.models import Site


def parse_instant(value: str, *, end: bool = False) -> dt.datetime:
    """An ISO 8601 date or datetime; a date means its start (or, for --to, its end)."""
    try:
        moment = parse_datetime(value)
        day = parse_date(value) if moment is None else None
    except ValueError as error:  # well-formed but impossible, e.g. 2026-13-45
        raise usage_error(f"{value!r} is not a valid date or datetime: {error}") from None
    if moment is None:
        if day is None:
            raise usage_error(f"{value!r} is not an ISO 8601 date or datetime")
        try:
            moment = dt.datetime.combine(day + dt.timedelta(days=1 if end else 0), dt.time(0))
        except OverflowError:  # the end of 9999-12-31
            raise usage_error(f"{value!r} is too far in the future") from None
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, dt.UTC)
    return moment


MAX_AHEAD = dt.timedelta(days=366)


class Command(BaseCommand):
    help = "Plan messages once, or with --dry-run print what would be sent or skipped."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Write nothing.")
        parser.add_argument("--site", help="Site id or exact name (default: every site).")
        parser.add_argument("--from", dest="start", help="ISO date or datetime (default: now).")
        parser.add_argument(
            "--to",
            dest="end",
            help="ISO date or datetime (default: +7 days; at most a year ahead).",
        )
        parser.add_argument(
            "--json", dest="as_json", action="store_true", help="One JSON object per line."
        )

    def handle(self, *args, dry_run: bool, site, start, end, as_json: bool, **opts):
        if not dry_run:
            if start or end or as_json:
                raise usage_error("--from, --to and --json go with --dry-run (a pass plans now)")
            report = plan_once(site_ids=[s.id for s in self._sites(site)])
            self.stdout.write(_stored(report))
            return
        now = timezone.now()
        start_at = parse_instant(start) if start else now
        end_at = parse_instant(end, end=True) if end else start_at + dt.timedelta(days=7)
        if end_at <= start_at:
            raise usage_error("--to must be after --from")
        if end_at > now + MAX_AHEAD:
            # The dry run plans every day from now up to --to.
            raise usage_error(
                f"--to (default: --from + 7 days) may be at most {MAX_AHEAD.days} days from now"
            )
        lines = plan_period(self._sites(site), now, start_at, end_at)
        if as_json:
            for line in lines:
                self.stdout.write(_dumps(line))
        else:
            self._summary(list(lines))

    def _sites(self, site: str | None) -> list[Site]:
        sites = Site.objects.select_related("delivery").order_by("id")
        if site:
            sites = sites.filter(id=int(site)) if site.isdigit() else sites.filter(name=site)
            if not sites:
                raise CommandError(f"no site {site!r}")
        return list(sites)

    def _summary(self, lines: list[dict]) -> None:
        planned = Counter((x["kind"], x["channel"]) for x in lines if x["status"] == "planned")
        skipped = Counter(r for x in lines if x["status"] == "skipped" for r in x["reasons"][-1:])
        segments = sum(x.get("segments") or 0 for x in lines if x["status"] == "planned")
        self.stdout.write(
            f"would send {sum(planned.values())} message(s), {segments} SMS segment(s)"
        )
        for (kind, channel), n in sorted(planned.items()):
            self.stdout.write(f"  {kind:<24} {channel:<6} {n}")
        self.stdout.write(f"would skip {sum(skipped.values())}")
        for code, n in skipped.most_common():
            self.stdout.write(f"  {code:<32} {n}")


def _stored(report) -> str:
    """The rows this pass added to the outbox; decisions whose message was stored by
    an earlier pass are counted apart, so a second run says it added nothing."""
    already = report.offered - report.stored
    return f"stored {report.stored} new message(s)" + (
        f" ({already} already in the outbox)" if already else ""
    )


def _dumps(line: dict) -> str:
    return json.dumps(line, default=str, ensure_ascii=False)
