"""What every API request passes through before and after its route: the per-token
rate limit, Idempotency-Key on POST, one error shape, and the audit log.

carebell's middleware list is the whole site's; these steps belong to the API only,
so they wrap the API's own URL patterns (CarebellApi.urls) instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import wraps

from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from carebell.api import idempotency, problems, ratelimit, tokens
from carebell.audit import trail
from carebell.web.lane import token_door

#: The API's own description: read with a token, or by signed-in staff (the
#: reference page in the staff app loads it with the session).
DOCUMENT_NAMES = frozenset({"openapi-json"})
#: What guards every API view (the test that each view names its guard reads this):
#: a token, then each route's permission at the object's site.
GUARD = "api_token"


def guarded(view, name: str = ""):
    """`view` wrapped in the API's door."""

    @wraps(view)
    def door(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        now = timezone.now()
        token = tokens.authenticate(request, now=now)
        with _one_transaction(request, token):
            return _through(request, token, now, name, lambda r: view(r, *args, **kwargs))

    door = csrf_exempt(door)
    door.staff_permission = GUARD
    # The description is also read with a session (the staff app's reference page);
    # every other route answers to a token alone.
    return door if name in DOCUMENT_NAMES else token_door(door)


@contextmanager
def _one_transaction(request: HttpRequest, token) -> Iterator[None]:
    """A POST with an Idempotency-Key is one transaction: its claim on the key, its
    work, its stored answer and its audit entries commit together (one commit instead
    of four), the entries in one INSERT at its end — the call's and its change's
    (an answer undone by its savepoint takes its entries back: idempotency.handle).
    Other calls write at most their audit entry."""
    if token is not None and request.method == "POST" and idempotency.HEADER in request.headers:
        with transaction.atomic(), trail.batched():
            yield
    else:
        yield


def _through(request: HttpRequest, token, now, name: str, view) -> HttpResponse:
    if name in DOCUMENT_NAMES and token is None and _signed_in_staff(request):
        response = view(request)
    elif name in DOCUMENT_NAMES and token is None:
        response = problems.response(request, 401, "unauthorized", "A valid API token is needed.")
    else:
        response = _answer(request, token, now, view)
    if response.status_code >= 400 and not problems.is_problem(response):
        response = problems.from_plain(request, response)
    _audit(request, token, name, response)
    return response


def _signed_in_staff(request: HttpRequest) -> bool:
    from carebell.web.staff.guard import needs_code

    user = getattr(request, "user", None)
    return bool(user and user.is_authenticated and user.is_active and not needs_code(user))


def _answer(request, token, now, answer) -> HttpResponse:
    if token is None:
        return answer(request)  # the route's auth answers 401
    wait = ratelimit.take(token, now)
    if wait is not None:
        return problems.response(
            request, 429, "too-many-requests",
            f"This token made more than {ratelimit.per_minute()} requests this minute.",
            headers={"Retry-After": str(wait)},
        )  # fmt: skip
    key = request.headers.get(idempotency.HEADER)
    if request.method == "POST" and key is not None:
        return idempotency.handle(request, token, key, now, answer)
    return answer(request)


def _audit(request: HttpRequest, token, name: str, response: HttpResponse) -> None:
    detail = {
        "method": request.method,
        "path": request.path,  # ids only: the query string (a search) is left out
        "status": response.status_code,
    }
    if token is not None:
        detail["token"] = token.pk
    trail.record(
        token.user if token is not None else None,
        "api_call",
        object_type=getattr(request, "api_object_type", "") or f"api.{name or 'unknown'}"[:48],
        object_id=str(getattr(request, "api_object_id", ""))[:64],
        site_id=getattr(request, "api_site_id", None),
        detail=detail,
        actor_label="" if token is not None else "api:anonymous",
    )


def not_found(request: HttpRequest, *args, **kwargs) -> HttpResponse:
    """Any path under /api/v1/ that names no route."""
    return problems.response(request, 404, "not-found", "No such API route.")
