"""carebell's PostgreSQL backend: a reused connection's health check sends nothing
when the server has said nothing, and still finds a session the server ended."""

from __future__ import annotations

import select

import psycopg
import pytest
from django.db import close_old_connections, connection, connections

from carebell.people.models import Patient

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres_only]


def other_connection() -> psycopg.Connection:
    params = connection.get_connection_params()
    return psycopg.connect(**params, autocommit=True)


def last_statement(pid: int) -> str:
    with other_connection() as other:
        found = other.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", [pid])
        return found.fetchone()[0]


def backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def wait_until_readable() -> None:
    poller = select.poll()
    poller.register(connection.connection.pgconn.socket, select.POLLIN)
    assert poller.poll(5000), "the server said nothing within 5 s"


def test_the_engine_is_carebells():
    assert type(connections["default"]).__module__ == "carebell.postgresql.base"
    assert connection.settings_dict["CONN_HEALTH_CHECKS"] is True


def test_a_quiet_idle_connection_is_usable_without_a_statement():
    pid = backend_pid()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 'the request before'")
    assert connection.is_usable()
    assert last_statement(pid) == "SELECT 'the request before'"


def test_a_session_the_server_ended_is_replaced_before_the_next_request_uses_it():
    pid = backend_pid()
    with other_connection() as other:
        assert other.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone()[0]
    wait_until_readable()
    assert not connection.is_usable()
    close_old_connections()  # what Django does as the next request starts
    assert Patient.objects.count() == 0  # on a new session, not an error
    assert backend_pid() != pid


def test_a_connection_the_server_wrote_to_is_asked_as_django_asks():
    pid = backend_pid()
    with connection.cursor() as cursor:
        cursor.execute("LISTEN carebell_backend_test")
    with other_connection() as other:
        other.execute("NOTIFY carebell_backend_test")
    wait_until_readable()
    assert connection.is_usable()
    assert last_statement(pid) == "SELECT 1"


def test_inside_a_transaction_it_is_asked_as_django_asks():
    pid = backend_pid()
    connection.set_autocommit(False)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 'in a transaction'")
        assert connection.is_usable()
        assert last_statement(pid) == "SELECT 1"
    finally:
        connection.rollback()
        connection.set_autocommit(True)
