"""Alerts become a partitioned table (alerts 0010): no foreign key constraint to them."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("alerts", "0009_alert_keys_and_partition_keys"),
        ("disposal", "0001_initial"),
    ]

    operations = [
        migrations.AlterField(
            model_name="handlingpolicy",
            name="source_alert",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="handling_policies",
                to="alerts.alert",
            ),
        ),
    ]
