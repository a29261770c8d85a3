from django.db import migrations

# On PostgreSQL the database itself refuses to change or remove audit rows, so no
# code path (raw SQL, bulk update, a bug) can rewrite history.
FORBID = """
CREATE OR REPLACE FUNCTION carebell_audit_append_only() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION 'the audit log is append-only';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_event_append_only BEFORE UPDATE OR DELETE ON audit_auditevent
  FOR EACH ROW EXECUTE FUNCTION carebell_audit_append_only();
CREATE TRIGGER consent_record_append_only BEFORE UPDATE OR DELETE ON people_consentrecord
  FOR EACH ROW EXECUTE FUNCTION carebell_audit_append_only();
"""
ALLOW = """
DROP TRIGGER IF EXISTS audit_event_append_only ON audit_auditevent;
DROP TRIGGER IF EXISTS consent_record_append_only ON people_consentrecord;
DROP FUNCTION IF EXISTS carebell_audit_append_only();
"""

SQLITE_FORBID = [
    f"""CREATE TRIGGER {table}_no_{op.lower()} BEFORE {op} ON {table}
        BEGIN SELECT RAISE(ABORT, 'append-only'); END;"""
    for table in ("audit_auditevent", "people_consentrecord")
    for op in ("UPDATE", "DELETE")
]


def forbid(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORBID)
    elif schema_editor.connection.vendor == "sqlite":
        for statement in SQLITE_FORBID:
            schema_editor.execute(statement)


def allow(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(ALLOW)
    elif schema_editor.connection.vendor == "sqlite":
        for table in ("audit_auditevent", "people_consentrecord"):
            for op in ("update", "delete"):
                schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_no_{op}")


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial"), ("people", "0001_initial")]
    operations = [migrations.RunPython(forbid, allow)]
