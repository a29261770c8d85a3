"""Sessions that a page's background polling does not keep alive.

Staff sessions end SESSION_IDLE_SECONDS after the last request (SPEC §10, idle
logoff), which is why every request saves the session and renews its cookie. An open
inbox asks for news every few seconds on its own; if those polls counted, a screen
left open at the front desk would never sign out. A view marked `passive` therefore
neither saves the session nor renews the cookie, which also spares each poll the
session write and its commit.

Also the session engine (SESSION_ENGINE = "carebell.web.sessions"): Django's
database sessions, whose one read a request makes is written by hand, since the
ORM's building of that query cost more CPU than an idle poll's own work.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib.sessions.backends import db
from django.contrib.sessions.middleware import SessionMiddleware as DjangoSessionMiddleware
from django.db import connections, router
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from carebell.sql import utc

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


class SessionStore(db.SessionStore):
    """Django's database sessions; the read by key, unexpired, in one raw statement."""

    def _get_session_from_db(self):
        model = self.model
        connection = connections[router.db_for_read(model)]
        table = connection.ops.quote_name(model._meta.db_table)
        sql = f"SELECT session_data FROM {table} WHERE session_key = %s AND expire_date > %s"
        with connection.cursor() as cursor:
            cursor.execute(sql, [self.session_key, utc(timezone.now())])
            row = cursor.fetchone()
        if row is None:
            self._session_key = None
            return None
        return model(session_key=self.session_key, session_data=row[0])
