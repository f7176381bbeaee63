"""The organisation of every tenant row is required from here on."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0012_organisation_on_tenant_rows"),
        ("secops", "0001_initial"),
    ]

    operations = [
        migrations.AlterField(
            model_name="eventalert",
            name="organisation",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                editable=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="secops.organisation",
            ),
        ),
        migrations.AlterField(
            model_name="eventasset",
            name="organisation",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                editable=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="secops.organisation",
            ),
        ),
        migrations.AlterField(
            model_name="eventchange",
            name="organisation",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                editable=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="secops.organisation",
            ),
        ),
        migrations.AlterField(
            model_name="eventchangedelivery",
            name="organisation",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                editable=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="secops.organisation",
            ),
        ),
        migrations.AlterField(
            model_name="eventstatuschange",
            name="organisation",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                editable=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="secops.organisation",
            ),
        ),
        migrations.AlterField(
            model_name="securityevent",
            name="organisation",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                editable=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="secops.organisation",
            ),
        ),
        migrations.AlterField(
            model_name="whitelistgrouporigin",
            name="organisation",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                editable=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="secops.organisation",
            ),
        ),
    ]
