from django.db import migrations, models


class Migration(migrations.Migration):
    """Alerts are unique per account, not across the installation.

    Every existing row stays: a set unique on (source, source_uuid) is also
    unique on (account, source, source_uuid). The new constraint is created
    before the old one is dropped, so no moment is without one.
    """

    dependencies = [
        ("alerts", "0004_alert_entity_attributes"),
        ("secops", "0001_initial"),
    ]

    operations = [
        migrations.AddConstraint(
            model_name="alert",
            constraint=models.UniqueConstraint(
                fields=("account", "source", "source_uuid"),
                name="alert_unique_source_uuid_per_account",
            ),
        ),
        migrations.RemoveConstraint(
            model_name="alert",
            name="alert_unique_source_uuid",
        ),
    ]
