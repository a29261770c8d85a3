"""The machine lane: a machine's call skips the middleware that serves people.

Two kinds of caller are machines: a provider's signed webhook (a status callback, an
inbound text: a signature over its form) and an integrator's system calling the REST
API or FHIR with an API token (`Authorization: Bearer cb_…`). Neither carries a
session, a sign-in or a CSRF token (their views are exempt and authenticate the call
themselves), and their answers (empty, TwiML, JSON) are never pages in a browser;
yet sessions, sign-in and its second factor, CSRF, messages, django-axes and
django-csp's per-response policy cost such a call about as much CPU as a status
callback's own work (profiled: 0.35 ms of about 2 ms on a slow machine), and a
sixth to a fifth of an API read's. So a view marked `@machine_hook` (under /hooks/)
or `@token_door` (under /api/ or /fhir/, and only when the request presents a bearer
token) is called here directly, after Django's SecurityMiddleware (the HTTPS
redirect, HSTS, nosniff) and carebell's own security headers, which still apply to
it. The lane still refuses a Host outside ALLOWED_HOSTS, as CommonMiddleware would,
and its answers, an error's included, carry the headers the skipped middleware would
have added (the Content-Security-Policy and X-Frame-Options: fixed strings, built
once; the Content-Length).

Anything else goes through the whole stack, as before: a path the lane does not
resolve to a view marked for it (a page, the email service's webhook, a mistyped
hook), and a token door called without a bearer token — the API's own description,
which signed-in staff read with their session, and every refusal for a missing token,
which is then answered as for anyone.
"""

from __future__ import annotations

from collections.abc import Callable

from csp.constants import HEADER, HEADER_REPORT_ONLY
from csp.utils import build_policy
from django.conf import settings
from django.core.handlers.exception import response_for_exception
from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, get_resolver

HOOKS_PREFIX = "/hooks/"
#: The doors an integrator's system calls with an API token.
TOKEN_PREFIXES = ("/api/", "/fhir/")
_MARK = "carebell_machine_hook"
_DOOR_MARK = "carebell_token_door"


def machine_hook(view: Callable) -> Callable:
    """Mark a webhook view that needs none of the page middleware: it reads no
    session, user or message, is exempt from CSRF, and checks its caller's signature
    before anything else."""
    setattr(view, _MARK, True)
    return view


def is_machine_hook(view: Callable) -> bool:
    return getattr(view, _MARK, False)


def token_door(view: Callable) -> Callable:
    """Mark a view that authenticates its caller by API token alone and reads no
    session, user or message: with a bearer token it needs none of the page
    middleware."""
    setattr(view, _DOOR_MARK, True)
    return view


def is_token_door(view: Callable) -> bool:
    return getattr(view, _DOOR_MARK, False)


class MachineLaneMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        policies = {HEADER: build_policy(), HEADER_REPORT_ONLY: build_policy(report_only=True)}
        #: What CSPMiddleware and XFrameOptionsMiddleware would have added.
        self.headers = {name: value for name, value in policies.items() if value}
        self.headers["X-Frame-Options"] = settings.X_FRAME_OPTIONS.upper()
        # Django wraps a view in a transaction per request only with ATOMIC_REQUESTS,
        # which the lane does not do: with it on, every request takes the whole stack.
        self.open = not any(db.get("ATOMIC_REQUESTS") for db in settings.DATABASES.values())

    def __call__(self, request: HttpRequest) -> HttpResponse:
        match = self._hook_for(request)
        if match is None:
            return self.get_response(request)
        try:
            request.get_host()  # DisallowedHost (400) for a Host outside ALLOWED_HOSTS
            request.resolver_match = match
            response = match.func(request, *match.args, **match.kwargs)
        except Exception as exc:  # answered here, as the handler would, so it gets the headers
            response = response_for_exception(request, exc)
        for name, value in self.headers.items():
            response.headers.setdefault(name, value)
        if not response.streaming and not response.has_header("Content-Length"):
            response.headers["Content-Length"] = str(len(response.content))  # as CommonMiddleware
        return response

    def _hook_for(self, request: HttpRequest):
        """The URL match of a view marked for the lane, or None for the whole stack."""
        if not self.open or hasattr(request, "urlconf"):  # a per-request URLconf: the handler's
            return None
        path = request.path_info
        if path.startswith(HOOKS_PREFIX):
            marked = is_machine_hook
        elif path.startswith(TOKEN_PREFIXES) and _bearer(request):
            marked = is_token_door
        else:
            return None
        try:
            match = get_resolver().resolve(path)
        except Resolver404:
            return None
        return match if marked(match.func) else None


def _bearer(request: HttpRequest) -> bool:
    """Whether the request presents a bearer token (whether it is a valid one is the
    door's to say)."""
    return request.headers.get("Authorization", "")[:7].lower() == "bearer "
