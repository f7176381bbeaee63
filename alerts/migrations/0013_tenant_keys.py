"""On PostgreSQL, the primary keys of this app's tenant tables lead with the
organisation, and relations between tenant tables become composite foreign
keys (secops.citus_keys)."""

from django.db import migrations

from secops.citus_keys import tenant_keys


class Migration(migrations.Migration):
    dependencies = [
        ("alerts", "0012_organisation_required"),
    ]

    operations = [tenant_keys("alerts")]
