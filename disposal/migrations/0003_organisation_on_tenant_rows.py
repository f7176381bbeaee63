"""Every tenant row carries its organisation (secops.tenancy): the column is
added, filled from each row's parent, and is part of every unique key."""

import django.db.models.deletion
import django.db.models.functions.comparison
from django.db import migrations, models

import secops.tenancy
from secops import tenant_migrations


class Migration(migrations.Migration):
    dependencies = [
        ("alerts", "0011_organisation_on_tenant_rows"),
        ("disposal", "0002_source_alert_without_db_constraint"),
        ("events", "0012_organisation_on_tenant_rows"),
        ("secops", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="PolicyScopeAccount",
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
            model_name="handlingtask",
            name="one_task_per_policy_account_host",
        ),
        migrations.AddField(
            model_name="handlingpolicy",
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
            model_name="handlingtask",
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
            model_name="notification",
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
            model_name="tasktransition",
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
            model_name="handlingpolicy",
            name="source_alert",
            field=secops.tenancy.TenantForeignKey(
                blank=True,
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="handling_policies",
                to="alerts.alert",
            ),
        ),
        migrations.AlterField(
            model_name="handlingpolicy",
            name="source_event",
            field=secops.tenancy.TenantForeignKey(
                blank=True,
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="handling_policies",
                to="events.securityevent",
            ),
        ),
        migrations.AlterField(
            model_name="handlingtask",
            name="asset",
            field=secops.tenancy.TenantForeignKey(
                blank=True,
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="handling_tasks",
                to="alerts.asset",
            ),
        ),
        migrations.AlterField(
            model_name="handlingtask",
            name="policy",
            field=secops.tenancy.TenantForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="tasks",
                to="disposal.handlingpolicy",
            ),
        ),
        migrations.AlterField(
            model_name="notification",
            name="event",
            field=secops.tenancy.TenantForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="notifications",
                to="events.securityevent",
            ),
        ),
        migrations.AlterField(
            model_name="tasktransition",
            name="task",
            field=secops.tenancy.TenantForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="transitions",
                to="disposal.handlingtask",
            ),
        ),
        migrations.AddConstraint(
            model_name="handlingtask",
            constraint=models.UniqueConstraint(
                models.F("organisation"),
                models.F("policy"),
                models.F("account"),
                django.db.models.functions.comparison.Coalesce("asset", models.Value(0)),
                name="one_task_per_policy_account_host",
            ),
        ),
        migrations.AddField(
            model_name="policyscopeaccount",
            name="account",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE, related_name="+", to="secops.account"
            ),
        ),
        migrations.AddField(
            model_name="policyscopeaccount",
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
            model_name="policyscopeaccount",
            name="policy",
            field=secops.tenancy.TenantForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="disposal.handlingpolicy",
            ),
        ),
        migrations.AddConstraint(
            model_name="policyscopeaccount",
            constraint=models.UniqueConstraint(
                fields=("organisation", "policy", "account"), name="policy_scope_account_unique"
            ),
        ),
        tenant_migrations.fill_organisation(
            "disposal", ["HandlingPolicy", "HandlingTask", "TaskTransition", "Notification"]
        ),
        tenant_migrations.copy_link_table(
            "disposal_handlingpolicy_scope_accounts",
            ("handlingpolicy_id", "account_id"),
            "disposal_policyscopeaccount",
            ("policy_id", "account_id"),
            "disposal_handlingpolicy",
        ),
        migrations.RemoveField(model_name="handlingpolicy", name="scope_accounts"),
        migrations.AddField(
            model_name="handlingpolicy",
            name="scope_accounts",
            field=models.ManyToManyField(
                related_name="policies_in_scope",
                through="disposal.PolicyScopeAccount",
                to="secops.account",
            ),
        ),
    ]
