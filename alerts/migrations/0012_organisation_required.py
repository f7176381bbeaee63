"""The organisation of every tenant row is required from here on."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("alerts", "0011_organisation_on_tenant_rows"),
        ("secops", "0001_initial"),
    ]

    operations = [
        migrations.AlterField(
            model_name="alert",
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
            model_name="alertentity",
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
            model_name="alertkey",
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
            model_name="asset",
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
            model_name="correlationstate",
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
            model_name="detectionrulestats",
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
            model_name="entity",
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
            model_name="ingestionstat",
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
            model_name="logrecord",
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
