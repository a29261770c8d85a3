"""Django's PostgreSQL backend with a health check that needs no round trip.

With CONN_HEALTH_CHECKS (on, so that a restarted database costs no request), Django
asks each reused connection `SELECT 1` before a request's first statement. For a
delivery report, whose own work is one statement, that is half its round trips, and
on a small virtual machine a round trip costs both processes more CPU than a short
statement does.

Between requests nothing is in flight on a connection, so the server has nothing to
send. When PostgreSQL ends a session (a restart, `pg_terminate_backend`, an idle
timeout) it says so and closes its end: the socket becomes readable. So a quiet
socket on an idle connection means the connection is as the last request left it,
and only a socket with something to read (that, or a notice, or TLS housekeeping)
is asked `SELECT 1`, as Django asks it. A server that vanished without a word (its
host powered off) is found by the request's first statement instead, as it would be
between the check and that statement anyway.
"""

from __future__ import annotations

import select

from django.db.backends.postgresql import base
from psycopg import pq

__all__ = ["DatabaseWrapper"]


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self) -> bool:
        if self.connection is None or self.connection.closed or self.connection.broken:
            return False
        if self.connection.pgconn.transaction_status == pq.TransactionStatus.IDLE:
            poller = select.poll()
            poller.register(self.connection.pgconn.socket, select.POLLIN | select.POLLPRI)
            if not poller.poll(0):  # nothing said: no round trip needed
                return True
        return super().is_usable()
