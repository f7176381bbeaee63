"""Every tenant row carries its organisation (secops.tenancy): the column is
added, filled from each row's parent, and is part of every unique key."""

import django.db.models.deletion
from django.db import migrations, models

import secops.tenancy
from secops import tenant_migrations


class Migration(migrations.Migration):
    dependencies = [
        ("alerts", "0011_organisation_on_tenant_rows"),
        ("secops", "0001_initial"),
        ("whitelist", "0003_match_alert_without_db_constraint"),
    ]

    operations = [
        migrations.AddField(
            model_name="condition",
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
            model_name="match",
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
            model_name="condition",
            name="group",
            field=secops.tenancy.TenantForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="conditions",
                to="whitelist.rulegroup",
            ),
        ),
        migrations.AlterField(
            model_name="match",
            name="alert",
            field=secops.tenancy.TenantOneToOneField(
                db_constraint=False,
                on_delete=django.db.models.deletion.CASCADE,
                primary_key=True,
                related_name="whitelist_match",
                serialize=False,
                to="alerts.alert",
            ),
        ),
        migrations.AlterField(
            model_name="match",
            name="group",
            field=secops.tenancy.TenantForeignKey(
                blank=True,
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="matches",
                to="whitelist.rulegroup",
            ),
        ),
        migrations.CreateModel(
            name="RuleGroupAccount",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "account",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="secops.account",
                    ),
                ),
                (
                    "group",
                    secops.tenancy.TenantForeignKey(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="whitelist.rulegroup",
                    ),
                ),
                (
                    "organisation",
                    models.ForeignKey(
                        blank=True,
                        db_index=False,
                        editable=False,
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="secops.organisation",
                    ),
                ),
            ],
        ),
        migrations.AddConstraint(
            model_name="rulegroupaccount",
            constraint=models.UniqueConstraint(
                fields=("organisation", "group", "account"), name="wl_group_account_unique"
            ),
        ),
        tenant_migrations.fill_organisation("whitelist", ["Condition", "Match"]),
        tenant_migrations.copy_link_table(
            "whitelist_rulegroup_accounts",
            ("rulegroup_id", "account_id"),
            "whitelist_rulegroupaccount",
            ("group_id", "account_id"),
            "whitelist_rulegroup",
        ),
        migrations.RemoveField(model_name="rulegroup", name="accounts"),
        migrations.AddField(
            model_name="rulegroup",
            name="accounts",
            field=models.ManyToManyField(
                blank=True,
                help_text="When not global.",
                related_name="whitelist_groups",
                through="whitelist.RuleGroupAccount",
                to="secops.account",
            ),
        ),
    ]
