"""Sessions that a page's background polling does not keep alive.

Staff sessions end SESSION_IDLE_SECONDS after the last request (SPEC §10, idle
logoff), which is why every request saves the session and renews its cookie. An open
inbox asks for news every few seconds on its own; if those polls counted, a screen
left open at the front desk would never sign out. A view marked `passive` therefore
neither saves the session nor renews the cookie, which also spares each poll the
session write and its commit.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib.sessions.middleware import SessionMiddleware as DjangoSessionMiddleware
from django.http import HttpRequest, HttpResponse

_PASSIVE = "_carebell_passive"


def passive(view: Callable) -> Callable:
    """Mark a view whose requests are not the person's activity (background polls)."""

    @wraps(view)
    def marked(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        setattr(request, _PASSIVE, True)
        return view(request, *args, **kwargs)

    return marked


class SessionMiddleware(DjangoSessionMiddleware):
    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if getattr(request, _PASSIVE, False) and not request.session.modified:
            return response
        return super().process_response(request, response)
