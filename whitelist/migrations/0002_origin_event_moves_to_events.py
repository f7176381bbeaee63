from django.db import migrations


class Migration(migrations.Migration):
    """The origin event now lives in events (its 0007 copied the values)."""

    dependencies = [
        ("whitelist", "0001_initial"),
        ("events", "0007_whitelist_group_origin"),
    ]

    operations = [
        migrations.RemoveField(model_name="rulegroup", name="source_event"),
    ]
