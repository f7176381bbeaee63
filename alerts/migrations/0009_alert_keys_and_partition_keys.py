"""Alert identity moves to AlertKey, and the unique keys of alert-entity links
and logs take the time column they will be partitioned by (migration 0010)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("alerts", "0008_rules_share_one_base"),
        ("secops", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="AlertKey",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "source",
                    models.CharField(
                        choices=[
                            ("security_center", "Security Center"),
                            ("waf", "Web Application Firewall"),
                            ("cloud_firewall", "Cloud Firewall"),
                            ("siem", "SIEM"),
                        ],
                        max_length=32,
                    ),
                ),
                ("source_uuid", models.CharField(max_length=128)),
                ("occurred_at", models.DateTimeField()),
            ],
        ),
        migrations.RemoveConstraint(
            model_name="alert",
            name="alert_unique_source_uuid_per_account",
        ),
        migrations.RemoveConstraint(
            model_name="alertentity",
            name="alert_entity_role_unique",
        ),
        migrations.RemoveConstraint(
            model_name="logrecord",
            name="log_unique_content_per_account",
        ),
        migrations.AddField(
            model_name="alertentity",
            name="occurred_at",
            field=models.DateTimeField(null=True),
        ),
        migrations.AlterField(
            model_name="alertentity",
            name="alert",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="entity_links",
                to="alerts.alert",
            ),
        ),
        migrations.AddConstraint(
            model_name="alert",
            constraint=models.UniqueConstraint(
                fields=("account", "source", "source_uuid", "occurred_at"),
                name="alert_unique_source_uuid_per_account",
            ),
        ),
        migrations.AddConstraint(
            model_name="alertentity",
            constraint=models.UniqueConstraint(
                fields=("alert", "entity", "role", "occurred_at"), name="alert_entity_role_unique"
            ),
        ),
        migrations.AddConstraint(
            model_name="logrecord",
            constraint=models.UniqueConstraint(
                fields=("account", "digest", "time"), name="log_unique_content_per_account"
            ),
        ),
        migrations.AddField(
            model_name="alertkey",
            name="account",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE, related_name="+", to="secops.account"
            ),
        ),
        migrations.AddIndex(
            model_name="alertkey",
            index=models.Index(fields=["occurred_at"], name="alert_key_occurred_idx"),
        ),
        migrations.AddConstraint(
            model_name="alertkey",
            constraint=models.UniqueConstraint(
                fields=("account", "source", "source_uuid"),
                name="alert_key_unique_source_uuid_per_account",
            ),
        ),
        # Every stored alert keeps its identity; each link takes its alert's time.
        migrations.RunSQL(
            sql=[
                "UPDATE alerts_alertentity SET occurred_at = ("
                "SELECT a.occurred_at FROM alerts_alert a WHERE a.id = alerts_alertentity.alert_id)",
                "DELETE FROM alerts_alertentity WHERE occurred_at IS NULL",
            ],
            reverse_sql=migrations.RunSQL.noop,
        ),
        migrations.AlterField(
            model_name="alertentity",
            name="occurred_at",
            field=models.DateTimeField(),
        ),
        migrations.RunSQL(
            sql="INSERT INTO alerts_alertkey (account_id, source, source_uuid, occurred_at) "
            "SELECT account_id, source, source_uuid, MIN(occurred_at) FROM alerts_alert "
            "GROUP BY account_id, source, source_uuid",
            reverse_sql="DELETE FROM alerts_alertkey",
        ),
    ]
