"""A function the engine's guarded run write calls to abort its transaction (engine.locks):
a statement can only stop a COMMIT sent in the same message by raising."""

from django.db import migrations

CREATE = """
CREATE FUNCTION chameleon_run_moved_on(run_id uuid) RETURNS integer LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'run % moved on since it was read', run_id USING ERRCODE = 'CH001';
END
$$
"""
DROP = "DROP FUNCTION chameleon_run_moved_on(uuid)"


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("workflows", "0003_run_steps_busy"),
    ]

    operations = [migrations.RunPython(create, drop)]
