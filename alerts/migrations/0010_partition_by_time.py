"""On PostgreSQL, alerts, alert-entity links and logs become tables
partitioned by week of their time column, rows, indexes and constraints
included (alerts.partitions). Reversible. On SQLite nothing changes."""

from django.db import migrations

TABLES = ("alerts_alert", "alerts_alertentity", "alerts_logrecord")


def partition(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    from alerts import partitions

    with schema_editor.connection.cursor() as cursor:
        for table in TABLES:
            partitions.rebuild(cursor, table, partitioned=True)


def unpartition(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    from alerts import partitions

    with schema_editor.connection.cursor() as cursor:
        for table in TABLES:
            partitions.rebuild(cursor, table, partitioned=False)


class Migration(migrations.Migration):
    dependencies = [
        ("alerts", "0009_alert_keys_and_partition_keys"),
        # Its foreign key to alerts is gone: a partitioned table cannot be
        # referenced by id alone.
        ("events", "0011_event_alert_without_db_constraint"),
        ("whitelist", "0003_match_alert_without_db_constraint"),
        ("disposal", "0002_source_alert_without_db_constraint"),
    ]

    operations = [migrations.RunPython(partition, unpartition)]
