from django.db import migrations, models


class Migration(migrations.Migration):
    """The queue of stored alert batches moves from events to alerts.

    The model changes app in the migration state only; its table and rows
    stay. 0007 then gives the table its new app's name.
    """

    dependencies = [
        ("alerts", "0005_alert_identity_per_account"),
        ("events", "0005_event_name_trigram_index"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="PendingAlertBatch",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("alert_ids", models.JSONField()),
                        ("created_at", models.DateTimeField(auto_now_add=True, db_index=True)),
                    ],
                    options={"db_table": "events_pendingalertbatch"},
                ),
            ],
        ),
    ]
