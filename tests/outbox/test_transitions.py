"""The outbox keeps one transition rule (`core.vocab.can_move`) for its bulk
statements as for its row-by-row verbs."""

from __future__ import annotations

import pytest

from carebell import outbox
from carebell.core.vocab import PENDING_STATUSES, OutboxStatus
from tests.messaging.engine_setup import NOW


def test_a_pending_row_may_be_cancelled_but_a_sent_one_may_not():
    assert set(outbox.moves_from(OutboxStatus.CANCELLED)) == {"scheduled", "queued", "sending"}
    assert set(outbox.moves_from(OutboxStatus.CANCELLED, PENDING_STATUSES)) == {
        "scheduled",
        "queued",
    }


def test_only_rows_not_yet_sending_may_start_sending():
    assert set(outbox.moves_from(OutboxStatus.SENDING)) == {"scheduled", "queued"}


def test_it_refuses_an_outcome_that_moves_a_sending_message_backwards():
    backwards = outbox.Outcome(
        1, OutboxStatus.SCHEDULED, "sim", None, False, False, None, "", None, None,
        OutboxStatus.SCHEDULED, "[]", "",
    )  # fmt: skip
    with pytest.raises(ValueError, match="may not go"):
        outbox.record_outcomes(NOW, [], [backwards])
