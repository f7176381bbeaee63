from django.db import migrations


class Migration(migrations.Migration):
    """The state half of moving PendingAlertBatch to alerts (see alerts 0006)."""

    dependencies = [
        ("events", "0005_event_name_trigram_index"),
        ("alerts", "0006_pending_alert_batch"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="PendingAlertBatch")],
        ),
    ]
