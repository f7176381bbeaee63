import django.db.models.deletion
from django.db import migrations, models


def copy_origins(apps, schema_editor):
    RuleGroup = apps.get_model("whitelist", "RuleGroup")
    Origin = apps.get_model("events", "WhitelistGroupOrigin")
    Origin.objects.bulk_create(
        Origin(group_id=group_id, event_id=event_id)
        for group_id, event_id in RuleGroup.objects.filter(source_event__isnull=False)
        .values_list("id", "source_event_id")
        .iterator()
    )


def restore_origins(apps, schema_editor):
    RuleGroup = apps.get_model("whitelist", "RuleGroup")
    Origin = apps.get_model("events", "WhitelistGroupOrigin")
    for group_id, event_id in Origin.objects.values_list("group_id", "event_id").iterator():
        RuleGroup.objects.filter(id=group_id).update(source_event_id=event_id)


class Migration(migrations.Migration):
    """A whitelist group's origin event becomes a link owned by events.

    The rows are copied here, before whitelist 0002 drops its column.
    """

    dependencies = [
        ("events", "0006_pending_alert_batch_moves_to_alerts"),
        ("whitelist", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="WhitelistGroupOrigin",
            fields=[
                (
                    "group",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="+",
                        serialize=False,
                        to="whitelist.rulegroup",
                    ),
                ),
                (
                    "event",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="whitelist_group_origins",
                        to="events.securityevent",
                    ),
                ),
            ],
        ),
        migrations.RunPython(copy_origins, restore_origins),
    ]
