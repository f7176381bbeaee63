"""On PostgreSQL, the primary keys of this app's tenant tables lead with the
organisation, and relations between tenant tables become composite foreign
keys (secops.citus_keys)."""

from django.db import migrations

from secops.citus_keys import tenant_keys


class Migration(migrations.Migration):
    dependencies = [
        ("disposal", "0004_organisation_required"),
        ("alerts", "0013_tenant_keys"),
        ("events", "0014_tenant_keys"),
    ]

    operations = [tenant_keys("disposal")]
