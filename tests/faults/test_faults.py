"""The fault suite, short form: under 500s, 429s, permanent errors, answers lost
after the provider kept the message and workers killed mid-send, every message is
sent once or refused, none is lost or duplicated at the sink, and none that was
delivered is recorded failed. The long form: `python -m tests.faults`."""

from __future__ import annotations

import pytest

from tests.faults.suite import Run, run

pytestmark = [
    pytest.mark.postgres_only,
    pytest.mark.django_db(transaction=True),
    pytest.mark.real_clock,
]


def test_faults_and_killed_workers_lose_nothing_and_duplicate_nothing(site):
    tally, kills, _ = run(site, Run(messages=600, kills=6, deadline=150))
    report = "\n".join(tally.lines())
    assert kills >= 3, "the workers finished before they could be killed enough"
    assert (tally.lost, tally.duplicated, tally.failed_but_delivered) == (0, 0, 0), report
    assert tally.wrong_sid == 0, report
    assert tally.at_sink + tally.refused == 600, report
    assert tally.sink_counts.get("fault_timeout", 0) > 0, report  # answers were lost
    assert tally.sink_counts.get("fault_20500", 0) > 0, report
