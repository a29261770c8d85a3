"""Idempotency-Key on POST (as Stripe's API has it): the first answer to a key is
stored and replayed for 24 hours; the same key with another body is refused (422);
a retry while the first request is still being answered is told so (409).

The claim on the key, the request's work and the stored answer are one
transaction (the door's, which holds the call's audit entry too): the claim is
inserted first, so the unique (token, key) constraint makes a concurrent request
with the same key wait for the first to commit and then replay its answer (or,
had it failed, take the key itself). An answer not worth keeping gives the key back
in the same transaction; a request that raises rolls everything back, its claim
included. One commit per POST instead of three.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse

from carebell.api import problems
from carebell.api.models import ApiToken, IdempotentRequest
from carebell.audit import trail
from carebell.prepared import execute_prepared

HEADER = "Idempotency-Key"
KEPT_FOR = dt.timedelta(hours=24)
#: Expired keys are deleted by a POST at most this often per process (not by each:
#: a key is refused or replayed by its age, whether or not its row is gone yet).
PURGE_EVERY = dt.timedelta(minutes=1)
_purged_at: dict[str, dt.datetime] = {}
#: Headers replayed with a stored answer.
KEPT_HEADERS = ("ETag", "Location")
REPLAYED = "Idempotent-Replayed"


def fingerprint(request: HttpRequest) -> str:
    digest = hashlib.sha256()
    for part in (request.method, request.get_full_path(), request.content_type or ""):
        digest.update(part.encode("utf-8", "surrogatepass") + b"\0")
    digest.update(request.body)
    return digest.hexdigest()


def valid_key(key: str) -> bool:
    return 0 < len(key) <= 255 and key.isascii() and key.isprintable()


def handle(
    request: HttpRequest, token: ApiToken, key: str, now: dt.datetime, answer
) -> HttpResponse:
    """Answer the POST through `answer(request)` at most once per key, in one
    transaction (the caller's, when it opened one)."""
    if not valid_key(key):
        return problems.response(
            request,
            400,
            "bad-idempotency-key",
            "An Idempotency-Key is 1 to 255 printable ASCII characters.",
        )
    prints = fingerprint(request)
    with transaction.atomic(savepoint=False):
        claim, replay = _claim(request, token, key, prints, now)
        if replay is not None:
            return replay
        # A savepoint: a request that fails inside (a ValidationError turned into a
        # 4xx) is undone, and its answer stored, in the transaction that holds the
        # claim; one that answers 5xx is undone whole. Its audit entries, waiting in
        # the door's batch, go with what it undid (_Undone leaves their block).
        try:
            with transaction.atomic(), trail.batched():
                response = answer(request)
                if response.status_code >= 500 or transaction.get_rollback():
                    raise _Undone(response)
        except _Undone as undone:
            response = undone.response
        if response.status_code >= 500 or response.status_code in (409, 429):
            _give_back(claim)  # not an answer worth keeping: the client may try again
            return response
        _store(claim, response)
    return response


def _purge(now: dt.datetime) -> None:
    last = _purged_at.get("all")
    if last is None or not last <= now < last + PURGE_EVERY:
        IdempotentRequest.objects.filter(created_at__lt=now - KEPT_FOR).delete()
        _purged_at["all"] = now


class _Undone(Exception):
    """Rolls back the savepoint of an answer that failed (5xx)."""

    def __init__(self, response: HttpResponse):
        super().__init__(response.status_code)
        self.response = response


_CLAIM = (
    "INSERT INTO api_idempotentrequest"
    " (token_id, key, fingerprint, created_at, status_code, content_type, headers, body)"
    " VALUES (%s, %s, %s, %s, NULL, '', %s, %s)"
    " ON CONFLICT (token_id, key) DO NOTHING RETURNING id"
)


def _claim(request, token, key, prints, now):
    """(the claim's id, None) when the key is this request's now, else (None, the
    answer): a replay, or a problem. Waits for a first request still running."""
    _purge(now)
    params = [token.pk, key, prints, connection.ops.adapt_datetimefield_value(now), "{}", b""]
    with execute_prepared(_CLAIM, params) as cursor:
        row = cursor.fetchone()
    if row is not None:
        return row[0], None
    first = IdempotentRequest.objects.filter(token=token, key=key).first()
    if first is not None and first.created_at < now - KEPT_FOR:
        # Expired but not purged yet: the key is free again (of two retries, one
        # deletes it; the other finds the first's new row).
        IdempotentRequest.objects.filter(pk=first.pk, created_at=first.created_at).delete()
        first = None
    if first is None:  # the first request failed and gave its key back meanwhile
        return _claim(request, token, key, prints, now)
    if first.fingerprint != prints:
        return None, problems.response(
            request, 422, "idempotency-key-reused",
            "This Idempotency-Key was used with another request; use a new key.",
        )  # fmt: skip
    if first.status_code is None:
        return None, problems.response(
            request, 409, "idempotency-in-progress",
            "The first request with this Idempotency-Key is still being answered; retry shortly.",
            headers={"Retry-After": "1"},
        )  # fmt: skip
    return None, _replay(first)


def _give_back(claim: int) -> None:
    IdempotentRequest.objects.filter(pk=claim).delete()


#: The answer stored on its claim, a prepared statement (each field's value prepared
#: as the ORM's update prepares it): every such POST writes one, and the ORM's
#: update compiled it anew each time. It goes with the call's audit entries, in the
#: door's batch (trail.alongside): nothing reads the row before the commit.
_STORE = (
    "UPDATE api_idempotentrequest SET status_code = %s, content_type = %s, headers = %s,"
    " body = %s WHERE id = %s"
)
_STORED = [IdempotentRequest._meta.get_field(name) for name in ("headers", "body")]


def _store(claim: int, response: HttpResponse) -> None:
    headers = {h: response[h] for h in KEPT_HEADERS if response.has_header(h)}
    values = [
        f.get_db_prep_save(v, connection)
        for f, v in zip(_STORED, (headers, bytes(response.content)), strict=True)
    ]
    params = [response.status_code, response.get("Content-Type", ""), *values, claim]
    trail.alongside(_STORE, params)


def _replay(first: IdempotentRequest) -> HttpResponse:
    response = HttpResponse(
        bytes(first.body), status=first.status_code, content_type=first.content_type
    )
    for name, value in first.headers.items():
        response[name] = value
    response[REPLAYED] = "true"
    return response
