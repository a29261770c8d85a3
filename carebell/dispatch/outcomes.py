"""What a dispatched batch comes to: each attempt's result row and each message's
new state with the event that says why — sent, retried, failed, waiting on an
attempt whose outcome is unknown, or ended unconfirmed — for
`outbox.record_outcomes` to write in one statement per table."""

from __future__ import annotations

import datetime as dt
import json
import random

from carebell.core.reasons import Reason
from carebell.core.retry import RetryPolicy, Settle, SettleDecision, decide_retry, next_check
from carebell.core.vocab import AttemptStatus, OutboxStatus
from carebell.dispatch.rows import Claimed
from carebell.messaging.models import DeliveryAttempt
from carebell.outbox import AttemptResult, Outcome, reasons_json
from carebell.providers.base import SendResult


def first_due_at(message: Claimed) -> dt.datetime:
    # Age counts from when the message first could go, not from when it was planned
    # (days ahead): otherwise a reminder's first failure is "too old".
    return max(message.created_at, message.planned_at)


class Recorder:
    """Turns a batch's outcomes into rows: finished attempts, and each message's new
    state with the event that says why. `record_outcomes` applies the latter only to
    messages still `sending` (a status callback may have moved one on already)."""

    def __init__(self, now: dt.datetime, policy: RetryPolicy, rng: random.Random) -> None:
        self.now = now
        self.policy = policy
        self.rng = rng
        self.attempt_rows: list[AttemptResult] = []
        self.outcomes: list[Outcome] = []
        self.opt_outs: list[Claimed] = []

    def add(self, message: Claimed, attempt, result: SendResult) -> None:
        unknown = result.unknown and not result.accepted
        if unknown:
            status = AttemptStatus.UNKNOWN
        else:
            status = result.status if result.accepted else AttemptStatus.FAILED
        self.attempt_rows.append(
            AttemptResult(
                attempt.id,
                result.provider_message_id,
                status,
                result.error_code[:32],
                result.error_message[:300],
                result.permanent,
                not unknown,
            )
        )
        message.provider = attempt.provider
        if result.accepted:
            outcome = self._accepted(message, result)
        elif unknown:
            outcome = self._unknown(message, attempt, result)
        elif result.permanent:
            outcome = self._failed(message, result, [])
        else:
            outcome = self._retry(message, result)
        self.outcomes.append(outcome)

    def settle(self, message: Claimed, attempt: DeliveryAttempt, decision: SettleDecision) -> None:
        """An unsettled attempt the provider could not account for: ask again later,
        end the message unconfirmed (not resent), or failed (never received, and too
        late to resend)."""
        message.provider = attempt.provider
        finished = decision.action is not Settle.WAIT
        failed = decision.action is Settle.FAIL
        self.attempt_rows.append(
            AttemptResult(
                attempt.id,
                attempt.provider_message_id,
                AttemptStatus.FAILED if failed else AttemptStatus.UNKNOWN,
                "not_received" if failed else attempt.error_code,
                attempt.error_message,
                False,
                finished,
            )
        )
        if decision.action is Settle.WAIT:
            outcome = self._waiting(message, attempt.error_code, decision)
        elif failed:
            result = SendResult(attempt.id, False, error_code="not_received", status="failed")
            outcome = self._failed(message, result, list(decision.reasons))
        else:
            outcome = self._unconfirmed(message, decision)
        self.outcomes.append(outcome)

    def _unknown(self, message: Claimed, attempt, result: SendResult) -> Outcome:
        started_at = getattr(attempt, "started_at", None) or self.now
        number = getattr(attempt, "number", None) or message.attempts
        decision = next_check(
            now=self.now,
            started_at=started_at,
            number=number,
            policy=self.policy,
            rng=self.rng,
        )
        return self._waiting(message, result.error_code, decision, result.error_message)

    def _waiting(
        self, message: Claimed, code: str, decision: SettleDecision, text: str | None = None
    ) -> Outcome:
        reasons = json.dumps(reasons_json(decision.reasons))
        return Outcome(
            message.id, OutboxStatus.SENDING, message.provider, None, False, False,
            decision.at, code[:32], None if text is None else text[:300], None,
            OutboxStatus.SENDING, reasons, code[:300],
        )  # fmt: skip

    def _unconfirmed(self, message: Claimed, decision: SettleDecision) -> Outcome:
        # `sent`, not `failed`: the provider may have delivered it (a later delivery
        # report still moves it on), and it is not sent again.
        stored = reasons_json(decision.reasons)
        every = json.dumps([*message.reasons, *stored])
        return Outcome(
            message.id, OutboxStatus.SENT, message.provider, None, True, False, None,
            "unconfirmed", "the provider never confirmed it", every,
            OutboxStatus.SENT, json.dumps(stored), "unconfirmed",
        )  # fmt: skip

    def _accepted(self, message: Claimed, result: SendResult) -> Outcome:
        status = OutboxStatus.DELIVERED if result.status == "delivered" else OutboxStatus.SENT
        delivered = status == OutboxStatus.DELIVERED
        return Outcome(
            message.id, status, message.provider, result.provider_message_id, True, delivered,
            None, "", None, None, status, "[]", "",
        )  # fmt: skip

    def _failed(self, message: Claimed, result: SendResult, reasons: list[Reason]) -> Outcome:
        message.error_code = result.error_code[:32]
        stored = reasons_json(reasons)
        if result.opt_out:
            self.opt_outs.append(message)
        return Outcome(
            message.id, OutboxStatus.FAILED, message.provider, None, False, True, None,
            message.error_code, result.error_message[:300],
            json.dumps([*message.reasons, *stored]), OutboxStatus.FAILED, json.dumps(stored),
            result.error_code[:300],
        )  # fmt: skip

    def _retry(self, message: Claimed, result: SendResult) -> Outcome:
        decision = decide_retry(
            now=self.now,
            attempts=message.attempts,
            first_due_at=first_due_at(message),
            retry_after=result.retry_after,
            not_after=message.not_after,
            policy=self.policy,
            rng=self.rng,
        )
        if decision.gives_up:
            return self._failed(message, result, list(decision.reasons))
        reasons = json.dumps(reasons_json(decision.reasons))
        return Outcome(
            message.id, OutboxStatus.SENDING, message.provider, None, False, False,
            decision.retry_at, result.error_code[:32], result.error_message[:300], None,
            OutboxStatus.SENDING, reasons, result.error_code[:300],
        )  # fmt: skip
