"""Alerts become a partitioned table (alerts 0010): no foreign key constraint to them."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("alerts", "0009_alert_keys_and_partition_keys"),
        ("whitelist", "0002_origin_event_moves_to_events"),
    ]

    operations = [
        migrations.AlterField(
            model_name="match",
            name="alert",
            field=models.OneToOneField(
                db_constraint=False,
                on_delete=django.db.models.deletion.CASCADE,
                primary_key=True,
                related_name="whitelist_match",
                serialize=False,
                to="alerts.alert",
            ),
        ),
    ]
