"""Every tenant row carries its organisation (secops.tenancy): the column is
added, filled from each row's parent, and is part of every unique key."""

import django.db.models.deletion
from django.db import migrations, models

import secops.tenancy
from secops import tenant_migrations


class Migration(migrations.Migration):

    dependencies = [
        ('alerts', '0010_partition_by_time'),
        ('secops', '0001_initial'),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='alert',
            name='alert_unique_source_uuid_per_account',
        ),
        migrations.RemoveConstraint(
            model_name='alertentity',
            name='alert_entity_role_unique',
        ),
        migrations.RemoveConstraint(
            model_name='alertkey',
            name='alert_key_unique_source_uuid_per_account',
        ),
        migrations.RemoveConstraint(
            model_name='asset',
            name='asset_unique_uuid_per_account',
        ),
        migrations.RemoveConstraint(
            model_name='correlationstate',
            name='correlation_state_unique_group',
        ),
        migrations.RemoveConstraint(
            model_name='detectionrulestats',
            name='detection_stats_unique',
        ),
        migrations.RemoveConstraint(
            model_name='entity',
            name='entity_unique_per_account',
        ),
        migrations.RemoveConstraint(
            model_name='ingestionstat',
            name='ingestion_stat_unique_day',
        ),
        migrations.RemoveConstraint(
            model_name='logrecord',
            name='log_unique_content_per_account',
        ),
        migrations.AddField(
            model_name='alert',
            name='organisation',
            field=models.ForeignKey(blank=True, db_index=False, editable=False, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='secops.organisation'),
        ),
        migrations.AddField(
            model_name='alertentity',
            name='organisation',
            field=models.ForeignKey(blank=True, db_index=False, editable=False, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='secops.organisation'),
        ),
        migrations.AddField(
            model_name='alertkey',
            name='organisation',
            field=models.ForeignKey(blank=True, db_index=False, editable=False, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='secops.organisation'),
        ),
        migrations.AddField(
            model_name='asset',
            name='organisation',
            field=models.ForeignKey(blank=True, db_index=False, editable=False, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='secops.organisation'),
        ),
        migrations.AddField(
            model_name='correlationstate',
            name='organisation',
            field=models.ForeignKey(blank=True, db_index=False, editable=False, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='secops.organisation'),
        ),
        migrations.AddField(
            model_name='detectionrulestats',
            name='organisation',
            field=models.ForeignKey(blank=True, db_index=False, editable=False, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='secops.organisation'),
        ),
        migrations.AddField(
            model_name='entity',
            name='organisation',
            field=models.ForeignKey(blank=True, db_index=False, editable=False, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='secops.organisation'),
        ),
        migrations.AddField(
            model_name='ingestionstat',
            name='organisation',
            field=models.ForeignKey(blank=True, db_index=False, editable=False, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='secops.organisation'),
        ),
        migrations.AddField(
            model_name='logrecord',
            name='organisation',
            field=models.ForeignKey(blank=True, db_index=False, editable=False, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='secops.organisation'),
        ),
        migrations.AlterField(
            model_name='alert',
            name='asset',
            field=secops.tenancy.TenantForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='alerts', to='alerts.asset'),
        ),
        migrations.AlterField(
            model_name='alertentity',
            name='alert',
            field=secops.tenancy.TenantForeignKey(db_constraint=False, on_delete=django.db.models.deletion.CASCADE, related_name='entity_links', to='alerts.alert'),
        ),
        migrations.AlterField(
            model_name='alertentity',
            name='entity',
            field=secops.tenancy.TenantForeignKey(db_constraint=False, on_delete=django.db.models.deletion.CASCADE, related_name='alert_links', to='alerts.entity'),
        ),
        migrations.AlterField(
            model_name='logrecord',
            name='asset',
            field=secops.tenancy.TenantForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='log_records', to='alerts.asset'),
        ),
        migrations.AddConstraint(
            model_name='alert',
            constraint=models.UniqueConstraint(fields=('organisation', 'account', 'source', 'source_uuid', 'occurred_at'), name='alert_unique_source_uuid_per_account'),
        ),
        migrations.AddConstraint(
            model_name='alertentity',
            constraint=models.UniqueConstraint(fields=('organisation', 'alert', 'entity', 'role', 'occurred_at'), name='alert_entity_role_unique'),
        ),
        migrations.AddConstraint(
            model_name='alertkey',
            constraint=models.UniqueConstraint(fields=('organisation', 'account', 'source', 'source_uuid'), name='alert_key_unique_source_uuid_per_account'),
        ),
        migrations.AddConstraint(
            model_name='asset',
            constraint=models.UniqueConstraint(fields=('organisation', 'account', 'uuid'), name='asset_unique_uuid_per_account'),
        ),
        migrations.AddConstraint(
            model_name='correlationstate',
            constraint=models.UniqueConstraint(fields=('organisation', 'rule', 'account', 'correlation', 'group_key'), name='correlation_state_unique_group'),
        ),
        migrations.AddConstraint(
            model_name='detectionrulestats',
            constraint=models.UniqueConstraint(fields=('organisation', 'rule', 'account'), name='detection_stats_unique'),
        ),
        migrations.AddConstraint(
            model_name='entity',
            constraint=models.UniqueConstraint(fields=('organisation', 'account', 'type', 'digest'), name='entity_unique_per_account'),
        ),
        migrations.AddConstraint(
            model_name='ingestionstat',
            constraint=models.UniqueConstraint(fields=('organisation', 'account', 'kind', 'source', 'day'), name='ingestion_stat_unique_day'),
        ),
        migrations.AddConstraint(
            model_name='logrecord',
            constraint=models.UniqueConstraint(fields=('organisation', 'account', 'digest', 'time'), name='log_unique_content_per_account'),
        ),
        tenant_migrations.fill_organisation('alerts', ['Asset', 'Entity', 'Alert', 'AlertKey', 'AlertEntity', 'LogRecord', 'IngestionStat', 'DetectionRuleStats', 'CorrelationState']),
    ]
