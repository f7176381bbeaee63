"""Every tenant row carries its organisation (secops.tenancy): the column is
added, filled from each row's parent, and is part of every unique key."""

import django.db.models.deletion
from django.db import migrations, models

import secops.tenancy
from secops import tenant_migrations


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0012_organisation_on_tenant_rows"),
        ("secops", "0001_initial"),
        ("soar", "0003_bulk_job_api_key"),
    ]

    operations = [
        migrations.CreateModel(
            name="AutomationRuleAccount",
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
            model_name="bulkhandlingitem",
            name="soar_bulk_item_once_per_event",
        ),
        migrations.RemoveConstraint(
            model_name="rulefiring",
            name="one_firing",
        ),
        migrations.RemoveConstraint(
            model_name="runstep",
            name="one_row_per_step",
        ),
        migrations.AddField(
            model_name="bulkhandlingitem",
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
            model_name="playbookrun",
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
            model_name="rulefiring",
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
            model_name="runstep",
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
            model_name="bulkhandlingitem",
            name="job",
            field=secops.tenancy.TenantForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="items",
                to="soar.bulkhandlingjob",
            ),
        ),
        migrations.AlterField(
            model_name="playbookrun",
            name="event",
            field=secops.tenancy.TenantForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="playbook_runs",
                to="events.securityevent",
            ),
        ),
        migrations.AlterField(
            model_name="playbookrun",
            name="rerun_of",
            field=secops.tenancy.TenantForeignKey(
                blank=True,
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="reruns",
                to="soar.playbookrun",
            ),
        ),
        migrations.AlterField(
            model_name="playbookrun",
            name="rule",
            field=secops.tenancy.TenantForeignKey(
                blank=True,
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="runs",
                to="soar.automationrule",
            ),
        ),
        migrations.AlterField(
            model_name="rulefiring",
            name="event",
            field=secops.tenancy.TenantForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="events.securityevent",
            ),
        ),
        migrations.AlterField(
            model_name="rulefiring",
            name="rule",
            field=secops.tenancy.TenantForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="firings",
                to="soar.automationrule",
            ),
        ),
        migrations.AlterField(
            model_name="rulefiring",
            name="run",
            field=secops.tenancy.TenantForeignKey(
                blank=True,
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="soar.playbookrun",
            ),
        ),
        migrations.AlterField(
            model_name="runstep",
            name="run",
            field=secops.tenancy.TenantForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="steps",
                to="soar.playbookrun",
            ),
        ),
        migrations.AddConstraint(
            model_name="bulkhandlingitem",
            constraint=models.UniqueConstraint(
                fields=("organisation", "job", "event_id"), name="soar_bulk_item_once_per_event"
            ),
        ),
        migrations.AddConstraint(
            model_name="rulefiring",
            constraint=models.UniqueConstraint(
                fields=("organisation", "rule", "change_id", "event"), name="one_firing"
            ),
        ),
        migrations.AddConstraint(
            model_name="runstep",
            constraint=models.UniqueConstraint(
                fields=("organisation", "run", "index"), name="one_row_per_step"
            ),
        ),
        migrations.AddField(
            model_name="automationruleaccount",
            name="account",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE, related_name="+", to="secops.account"
            ),
        ),
        migrations.AddField(
            model_name="automationruleaccount",
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
            model_name="automationruleaccount",
            name="rule",
            field=secops.tenancy.TenantForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="soar.automationrule",
            ),
        ),
        migrations.AddConstraint(
            model_name="automationruleaccount",
            constraint=models.UniqueConstraint(
                fields=("organisation", "rule", "account"), name="automation_rule_account_unique"
            ),
        ),
        tenant_migrations.fill_organisation(
            "soar", ["PlaybookRun", "RunStep", "RuleFiring", "BulkHandlingItem"]
        ),
        tenant_migrations.copy_link_table(
            "soar_automationrule_accounts",
            ("automationrule_id", "account_id"),
            "soar_automationruleaccount",
            ("rule_id", "account_id"),
            "soar_automationrule",
        ),
        migrations.RemoveField(model_name="automationrule", name="accounts"),
        migrations.AddField(
            model_name="automationrule",
            name="accounts",
            field=models.ManyToManyField(
                blank=True,
                related_name="automation_rules",
                through="soar.AutomationRuleAccount",
                to="secops.account",
            ),
        ),
    ]
