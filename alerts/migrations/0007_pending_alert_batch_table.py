from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("alerts", "0006_pending_alert_batch"),
        ("events", "0006_pending_alert_batch_moves_to_alerts"),
    ]

    operations = [
        migrations.AlterModelTable(name="pendingalertbatch", table=None),
    ]
