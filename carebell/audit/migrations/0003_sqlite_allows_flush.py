from django.db import migrations

# On SQLite, emptying a database (tests, `carebell flush` of a demo) deletes rows one
# by one, which a DELETE trigger would refuse; SQLite is for the demo and tests.
# Rewriting history (UPDATE) stays refused there, and the models refuse deletes.
# PostgreSQL keeps both triggers: it empties tables with TRUNCATE, which row
# triggers do not see, and production runs there.
TABLES = ("audit_auditevent", "people_consentrecord")


def allow_delete_on_sqlite(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        for table in TABLES:
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")


def forbid_delete_on_sqlite(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        for table in TABLES:
            schema_editor.execute(
                f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
                "BEGIN SELECT RAISE(ABORT, 'append-only'); END;"
            )


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_append_only")]
    operations = [migrations.RunPython(allow_delete_on_sqlite, forbid_delete_on_sqlite)]
