"""Alerts become a partitioned table (alerts 0010): no foreign key constraint to them."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("alerts", "0009_alert_keys_and_partition_keys"),
        ("events", "0010_export_job_api_key"),
    ]

    operations = [
        migrations.AlterField(
            model_name="eventalert",
            name="alert",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="event_links",
                to="alerts.alert",
            ),
        ),
    ]
