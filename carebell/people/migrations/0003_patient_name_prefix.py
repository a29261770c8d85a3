from django.db import migrations

# The staff app finds patients by the start of their last name, in any case
# (`last_name__istartswith`, which PostgreSQL runs as UPPER(last_name) LIKE 'X%').
# Only an index on that expression with the pattern operator class serves it; SQLite
# compares case-insensitively in its LIKE already and has no such operator class.
CREATE = """
CREATE INDEX IF NOT EXISTS patient_last_name_prefix
    ON people_patient (site_id, UPPER(last_name::text) text_pattern_ops)
"""
DROP = "DROP INDEX IF EXISTS patient_last_name_prefix"


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):

    dependencies = [
        ("people", "0002_planner_indexes"),
    ]

    operations = [migrations.RunPython(create, drop)]
