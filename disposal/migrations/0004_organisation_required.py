"""The organisation of every tenant row is required from here on."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("disposal", "0003_organisation_on_tenant_rows"),
        ("secops", "0001_initial"),
    ]

    operations = [
        migrations.AlterField(
            model_name="handlingpolicy",
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
            model_name="handlingtask",
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
            model_name="notification",
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
            model_name="policyscopeaccount",
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
            model_name="tasktransition",
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
