"""Every tenant row carries its organisation (secops.tenancy): the column is
added, filled from each row's parent, and is part of every unique key."""

import django.db.models.deletion
from django.db import migrations, models

import secops.tenancy
from secops import tenant_migrations


class Migration(migrations.Migration):
    dependencies = [
        ("alerts", "0011_organisation_on_tenant_rows"),
        ("events", "0011_event_alert_without_db_constraint"),
        ("secops", "0001_initial"),
        ("whitelist", "0003_match_alert_without_db_constraint"),
    ]

    operations = [
        migrations.CreateModel(
            name="EventAsset",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
            ],
        ),
        migrations.RemoveConstraint(
            model_name="eventalert",
            name="event_alert_unique",
        ),
        migrations.RemoveConstraint(
            model_name="securityevent",
            name="one_unhandled_event_per_group",
        ),
        migrations.AddField(
            model_name="eventalert",
            name="organisation",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                editable=False,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="secops.organisation",
            ),
        ),
        migrations.AddField(
            model_name="eventchange",
            name="organisation",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                editable=False,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="secops.organisation",
            ),
        ),
        migrations.AddField(
            model_name="eventchangedelivery",
            name="organisation",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                editable=False,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="secops.organisation",
            ),
        ),
        migrations.AddField(
            model_name="eventstatuschange",
            name="organisation",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                editable=False,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="secops.organisation",
            ),
        ),
        migrations.AddField(
            model_name="securityevent",
            name="organisation",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                editable=False,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="secops.organisation",
            ),
        ),
        migrations.AddField(
            model_name="whitelistgrouporigin",
            name="organisation",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                editable=False,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="secops.organisation",
            ),
        ),
        migrations.AlterField(
            model_name="eventalert",
            name="alert",
            field=secops.tenancy.TenantForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="event_links",
                to="alerts.alert",
            ),
        ),
        migrations.AlterField(
            model_name="eventalert",
            name="event",
            field=secops.tenancy.TenantForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="alert_links",
                to="events.securityevent",
            ),
        ),
        migrations.AlterField(
            model_name="eventchange",
            name="event",
            field=secops.tenancy.TenantForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="changes",
                to="events.securityevent",
            ),
        ),
        migrations.AlterField(
            model_name="eventchangedelivery",
            name="change",
            field=secops.tenancy.TenantForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="deliveries",
                to="events.eventchange",
            ),
        ),
        migrations.AlterField(
            model_name="eventstatuschange",
            name="event",
            field=secops.tenancy.TenantForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="status_changes",
                to="events.securityevent",
            ),
        ),
        migrations.AlterField(
            model_name="securityevent",
            name="continues",
            field=secops.tenancy.TenantForeignKey(
                blank=True,
                db_constraint=False,
                help_text="The full event this one continues (events hold at most 10,000 alerts).",
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="continuations",
                to="events.securityevent",
            ),
        ),
        migrations.AlterField(
            model_name="whitelistgrouporigin",
            name="event",
            field=secops.tenancy.TenantForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="whitelist_group_origins",
                to="events.securityevent",
            ),
        ),
        migrations.AlterField(
            model_name="whitelistgrouporigin",
            name="group",
            field=secops.tenancy.TenantOneToOneField(
                db_constraint=False,
                on_delete=django.db.models.deletion.CASCADE,
                primary_key=True,
                related_name="+",
                serialize=False,
                to="whitelist.rulegroup",
            ),
        ),
        migrations.AddConstraint(
            model_name="eventalert",
            constraint=models.UniqueConstraint(
                fields=("organisation", "event", "alert"), name="event_alert_unique"
            ),
        ),
        migrations.AddField(
            model_name="eventasset",
            name="asset",
            field=secops.tenancy.TenantForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="alerts.asset",
            ),
        ),
        migrations.AddField(
            model_name="eventasset",
            name="event",
            field=secops.tenancy.TenantForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="events.securityevent",
            ),
        ),
        migrations.AddField(
            model_name="eventasset",
            name="organisation",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                editable=False,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="secops.organisation",
            ),
        ),
        migrations.AddConstraint(
            model_name="securityevent",
            constraint=models.UniqueConstraint(
                condition=models.Q(("status", "unhandled")),
                fields=("organisation", "account", "rule", "group_key"),
                name="one_unhandled_event_per_group",
            ),
        ),
        migrations.AddConstraint(
            model_name="eventasset",
            constraint=models.UniqueConstraint(
                fields=("organisation", "event", "asset"), name="event_asset_unique"
            ),
        ),
        tenant_migrations.fill_organisation(
            "events",
            [
                "SecurityEvent",
                "EventAlert",
                "EventStatusChange",
                "WhitelistGroupOrigin",
                "EventChange",
                "EventChangeDelivery",
            ],
        ),
        tenant_migrations.copy_link_table(
            "events_securityevent_affected_assets",
            ("securityevent_id", "asset_id"),
            "events_eventasset",
            ("event_id", "asset_id"),
            "events_securityevent",
        ),
        migrations.RemoveField(model_name="securityevent", name="affected_assets"),
        migrations.AddField(
            model_name="securityevent",
            name="affected_assets",
            field=models.ManyToManyField(
                blank=True, related_name="events", through="events.EventAsset", to="alerts.asset"
            ),
        ),
    ]
