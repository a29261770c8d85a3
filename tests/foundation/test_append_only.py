"""History that must never be rewritten is protected by the database itself."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from carebell.audit.models import AuditEvent

pytestmark = pytest.mark.django_db


def event() -> AuditEvent:
    return AuditEvent.objects.create(
        at=timezone.now(), actor_label="system", action="view", object_type="x"
    )


def test_an_audit_entry_cannot_be_changed_even_with_raw_sql():
    entry = event()
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE audit_auditevent SET action = 'nothing' WHERE id = %s", [entry.id])
    entry.refresh_from_db()
    assert entry.action == "view"


def test_the_model_refuses_to_change_or_delete_an_entry():
    entry = event()
    with pytest.raises(PermissionError):
        entry.save()
    with pytest.raises(PermissionError):
        entry.delete()


@pytest.mark.postgres_only  # SQLite allows deletes so that tests can empty it
def test_postgresql_refuses_to_delete_an_entry():
    entry = event()
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE id = %s", [entry.id])
    assert AuditEvent.objects.filter(id=entry.id).exists()
