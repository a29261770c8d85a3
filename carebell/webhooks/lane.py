"""The machine lane: a provider's signed webhook skips the middleware that serves people.

A status callback or an inbound text is a machine calling with a signature over its
form. It carries no session, no sign-in and no CSRF token (the hooks are exempt), and
its answer (empty, or TwiML) is never shown in a browser; yet sessions, sign-in and
its second factor, CSRF, messages, django-axes and django-csp's per-response policy
cost a callback about as much CPU as its own work (profiled: 0.35 ms of about 2 ms
on this machine, at up to 1,500 callbacks a second). So a view marked
`@machine_hook` is called here directly, after Django's SecurityMiddleware (the HTTPS
redirect, HSTS, nosniff) and carebell's own security headers, which still apply to
it. The lane still refuses a Host outside ALLOWED_HOSTS, as CommonMiddleware would,
and its answers, an error's included, carry the headers the skipped middleware would
have added (the Content-Security-Policy and X-Frame-Options: fixed strings, built
once).

A path the lane does not resolve to a marked view (anything outside /hooks/, the
email service's webhook, a mistyped hook) goes through the whole stack, as before.
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
_MARK = "carebell_machine_hook"


def machine_hook(view: Callable) -> Callable:
    """Mark a webhook view that needs none of the page middleware: it reads no
    session, user or message, is exempt from CSRF, and checks its caller's signature
    before anything else."""
    setattr(view, _MARK, True)
    return view


def is_machine_hook(view: Callable) -> bool:
    return getattr(view, _MARK, False)


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
        return response

    def _hook_for(self, request: HttpRequest):
        """The URL match of a marked hook, or None for the whole stack."""
        if not self.open or not request.path_info.startswith(HOOKS_PREFIX):
            return None
        if hasattr(request, "urlconf"):  # a per-request URLconf: Django's handler's case
            return None
        try:
            match = get_resolver().resolve(request.path_info)
        except Resolver404:
            return None
        return match if is_machine_hook(match.func) else None
