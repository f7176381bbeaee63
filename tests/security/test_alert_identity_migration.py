"""The migration to per-account alert identity keeps every stored alert and
then lets two accounts hold the same (source, uuid)."""

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

BEFORE = [("alerts", "0004_alert_entity_attributes")]
AFTER = [("alerts", "0005_alert_identity_per_account")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return MigrationExecutor(connection).loader.project_state(targets).apps


def alert_row(apps, account, uuid):
    return apps.get_model("alerts", "Alert")(
        account_id=account.id,
        source="waf",
        source_uuid=uuid,
        type="web_attack",
        name="SQL injection",
        level=2,
        occurred_at=timezone.now(),
        region=account.home_region,
    )


@pytest.mark.django_db(transaction=True)
def test_it_keeps_existing_alerts_and_then_scopes_uniqueness_to_the_account(tenancy):
    try:
        old = migrate(BEFORE)
        Alert = old.get_model("alerts", "Alert")
        Alert.objects.bulk_create(
            [alert_row(old, tenancy.account_a, f"a-{n}") for n in range(3)]
            + [alert_row(old, tenancy.account_x, "x-0")]
        )
        with pytest.raises(IntegrityError), transaction.atomic():
            # Before: the same uuid in another account was refused.
            alert_row(old, tenancy.account_x, "a-0").save()

        new = migrate(AFTER)
        Alert = new.get_model("alerts", "Alert")

        assert sorted(Alert.objects.values_list("account_id", "source_uuid")) == sorted(
            [(tenancy.account_a.id, f"a-{n}") for n in range(3)] + [(tenancy.account_x.id, "x-0")]
        )
        alert_row(new, tenancy.account_x, "a-0").save()
        with pytest.raises(IntegrityError), transaction.atomic():
            alert_row(new, tenancy.account_a, "a-1").save()
    finally:
        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
