"""`carebell plan`: once for real, or a dry run that writes nothing and says why."""

from __future__ import annotations

import datetime as dt
import io
import json
import threading

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from carebell.core.vocab import Kind
from carebell.messaging.models import OutboxMessage
from carebell.planning.runner import elected
from tests.messaging.engine_setup import enable, family

pytestmark = pytest.mark.django_db


def soon() -> str:
    """An ISO date ten days from the real today (the command plans from the clock)."""
    return (timezone.now() + dt.timedelta(days=10)).date().isoformat()


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("plan", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def clinic(site):
    enable(site, Kind.APPT_REMINDER, [{"days": 1}])
    # The command plans from the real clock, so the appointments follow it.
    family(site, now=timezone.now())  # planned: a reminder by SMS
    family(site, mobile="+12025550124", preference="", now=timezone.now())  # skipped
    return site


def test_a_dry_run_prints_one_json_line_per_decision_and_writes_nothing(clinic):
    lines = [json.loads(line) for line in run("--dry-run", "--json", "--to", soon()).splitlines()]
    assert OutboxMessage.objects.count() == 0
    planned = next(x for x in lines if x["status"] == "planned")
    skipped = next(x for x in lines if x["status"] == "skipped")
    for key in ("status", "kind", "channel", "site", "patient_id", "contact_id", "to",
                "entity_type", "entity_id", "event_at", "planned_at", "template", "segments",
                "reasons"):  # fmt: skip
        assert key in planned
    assert planned["to"] == "+1202****0123"
    assert planned["kind"] == "appt_reminder" and planned["segments"] >= 1
    planned_at = dt.datetime.fromisoformat(planned["planned_at"])
    assert planned_at.utcoffset() == planned_at.astimezone(clinic.zone).utcoffset()
    assert planned["template"].startswith("default appt_reminder/sms/en")
    assert skipped["reasons"] == ["no_preference"]


def test_a_dry_run_summary_counts_by_kind_channel_and_reason(clinic):
    text = run("--dry-run", "--to", soon())
    assert "would send 1 message(s)" in text
    assert "appt_reminder" in text and "no_preference" in text


def test_plan_stores_what_the_dry_run_showed(clinic):
    assert run().strip() == "stored 1 new message(s)"
    assert OutboxMessage.objects.get().kind == "appt_reminder"


def test_plan_counts_the_rows_it_stored_so_a_second_pass_says_it_added_none(clinic):
    run()
    assert run().strip() == "stored 0 new message(s) (1 already in the outbox)"
    assert OutboxMessage.objects.count() == 1


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("--dry-run", "--from", "next tuesday"), "not an ISO 8601"),
        (("--dry-run", "--from", "2027-01-02", "--to", "2027-01-01"), "must be after"),
        (("--site", "Nowhere"), "no site"),
    ],
)
def test_bad_arguments_get_a_clear_error(clinic, args, error):
    with pytest.raises(CommandError, match=error):
        run(*args)


@pytest.mark.parametrize(
    "args",
    [
        ("--dry-run", "--from", "2026-13-45"),
        ("--dry-run", "--from", "2026-02-30"),
        ("--dry-run", "--to", "2026-12-01T25:00"),
        ("--dry-run", "--to", "9999-12-31"),
        ("--dry-run", "--to", "9999-12-30"),
    ],
)
def test_impossible_dates_are_a_usage_error_not_a_traceback(clinic, args):
    with pytest.raises(CommandError, match=r"not a valid date|too far|at most 366 days") as raised:
        run(*args)
    assert raised.value.returncode == 2


def test_dates_without_dry_run_are_refused_rather_than_ignored(clinic):
    with pytest.raises(CommandError, match="go with --dry-run") as raised:
        run("--from", "2026-12-01")
    assert raised.value.returncode == 2
    assert OutboxMessage.objects.count() == 0


def test_only_one_planner_is_elected_at_a_time(db):
    with elected("first") as first:
        assert first
        if connection.vendor == "postgresql":
            # The advisory lock is per session: ask from another connection.
            results = []

            def other():
                from django.db import connections

                with elected("second") as won:
                    results.append(won)
                connections.close_all()

            thread = threading.Thread(target=other)
            thread.start()
            thread.join()
            assert results == [False]
        else:
            with elected("second") as second:
                assert not second


def test_the_continuous_planner_sweeps_appointments_only_now_and_then(db, monkeypatch):
    from carebell.planning import runner

    sweeps: list[bool] = []
    stop = threading.Event()

    def plan_once(appointments_too: bool = True, **_):
        sweeps.append(appointments_too)
        if len(sweeps) == 3:
            stop.set()
        return runner.PlanReport()

    monkeypatch.setattr(runner, "plan_once", plan_once)
    runner.run_forever(stop, holder="test", interval=0, sweep_every=3600)
    assert sweeps == [True, False, False]
