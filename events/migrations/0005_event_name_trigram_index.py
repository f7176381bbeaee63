"""A trigram index for the "Name contains" filter of the Security Event Handling list.

The filter is ``name__icontains``: ``UPPER(name) LIKE UPPER('%text%')``, which
no B-tree index can serve. Over the last 7 days the scope index leaves few rows
to test; over 180 days a name seen on a few hundred events of 100,000 would
otherwise be found by reading every event of the range. A GIN index of the
trigrams of ``UPPER(name)`` finds them directly.

The index and the ``pg_trgm`` extension are PostgreSQL's, so they are made
here and not in ``SecurityEvent.Meta``: on SQLite (the embedded default) this
migration does nothing and the filter scans, which is fine at that size.
``pg_trgm`` is a trusted extension: the database owner may create it.
"""

from django.db import migrations

INDEX = "event_name_trigram_idx"


def create_trigram_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    table = schema_editor.quote_name(apps.get_model("events", "SecurityEvent")._meta.db_table)
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    # The expression must be the one Django writes for icontains, so that the
    # planner can match the index to the filter.
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {INDEX} ON {table} USING gin (UPPER(name::text) gin_trgm_ops)"
    )
    # Statistics of the new expression let the planner tell a rare name (use
    # this index) from a common one (read the date range instead). Without them
    # it guesses that every name is rare until autovacuum next analyses the
    # table, and a common name over 7 days gets slower than with no index.
    schema_editor.execute(f"ANALYZE {table}")


def drop_trigram_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    # The extension stays: other objects of the database may use it.
    schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0004_event_list_overview_index"),
    ]

    operations = [
        migrations.RunPython(create_trigram_index, drop_trigram_index, elidable=False),
    ]
