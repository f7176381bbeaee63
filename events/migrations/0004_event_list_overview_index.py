from django.db import migrations, models


class Migration(migrations.Migration):
    """The list's scope index also holds what the counts, the chart and the
    sort orders read; the name index goes: no query of the list can use a
    B-tree index for "Name contains" (migration 0005 adds one that can, on
    PostgreSQL)."""

    dependencies = [
        ("events", "0003_pending_alert_batch"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="securityevent",
            name="event_scope_time_idx",
        ),
        migrations.RemoveIndex(
            model_name="securityevent",
            name="event_name_idx",
        ),
        migrations.AddIndex(
            model_name="securityevent",
            index=models.Index(
                fields=[
                    "account",
                    "region",
                    "-last_occurred_at",
                    "first_occurred_at",
                    "risk",
                    "status",
                    "alert_count",
                    "id",
                ],
                name="event_scope_overview_idx",
            ),
        ),
    ]
