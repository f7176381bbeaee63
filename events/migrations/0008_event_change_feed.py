import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models
from django.db.models import Value
from django.db.models.functions import Cast, Concat


def causes_of_past_transitions(apps, schema_editor):
    """What history already says: a transition from nothing was the pipeline
    opening the event; one with a user was that user; the rest, the system."""
    EventStatusChange = apps.get_model("events", "EventStatusChange")
    EventStatusChange.objects.filter(from_status="").update(cause="pipeline")
    EventStatusChange.objects.filter(changed_by__isnull=False).update(
        cause="user",
        cause_ref=Concat(Value("user:"), Cast("changed_by_id", models.CharField())),
    )


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0007_whitelist_group_origin"),
        ("secops", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="eventstatuschange",
            name="cause",
            field=models.CharField(
                choices=[
                    ("pipeline", "Aggregation pipeline"),
                    ("user", "User"),
                    ("api_key", "API key"),
                    ("automated_rule", "Automated response rule"),
                    ("playbook_run", "Playbook run"),
                    ("system", "System"),
                ],
                default="system",
                max_length=16,
            ),
        ),
        migrations.AddField(
            model_name="eventstatuschange",
            name="cause_ref",
            field=models.CharField(blank=True, max_length=64),
        ),
        migrations.CreateModel(
            name="EventChange",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                (
                    "kind",
                    models.CharField(
                        choices=[
                            ("created", "Created"),
                            ("alerts_added", "Alerts added"),
                            ("status_changed", "Status changed"),
                            ("risk_changed", "Risk changed"),
                            ("merged", "Merged"),
                        ],
                        max_length=16,
                    ),
                ),
                (
                    "cause",
                    models.CharField(
                        choices=[
                            ("pipeline", "Aggregation pipeline"),
                            ("user", "User"),
                            ("api_key", "API key"),
                            ("automated_rule", "Automated response rule"),
                            ("playbook_run", "Playbook run"),
                            ("system", "System"),
                        ],
                        max_length=16,
                    ),
                ),
                ("cause_ref", models.CharField(blank=True, max_length=64)),
                ("details", models.JSONField(blank=True, default=dict)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "account",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="secops.account",
                    ),
                ),
                (
                    "event",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="changes",
                        to="events.securityevent",
                    ),
                ),
                (
                    "user",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "ordering": ["id"],
            },
        ),
        migrations.CreateModel(
            name="EventChangeDelivery",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("consumer", models.CharField(max_length=64)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "change",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="deliveries",
                        to="events.eventchange",
                    ),
                ),
            ],
        ),
        migrations.AddIndex(
            model_name="eventchange",
            index=models.Index(fields=["account", "id"], name="event_change_account_idx"),
        ),
        migrations.AddIndex(
            model_name="eventchangedelivery",
            index=models.Index(fields=["consumer", "change"], name="event_delivery_consumer_idx"),
        ),
        migrations.RunPython(causes_of_past_transitions, migrations.RunPython.noop),
    ]
