"""The event list's overview index leads with the organisation, which every
scoped query compares, so that the counts and pages stay index-only scans."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("alerts", "0013_tenant_keys"),
        ("events", "0014_tenant_keys"),
        ("secops", "0001_initial"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="securityevent",
            name="event_scope_overview_idx",
        ),
        migrations.AddIndex(
            model_name="securityevent",
            index=models.Index(
                fields=[
                    "organisation",
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
