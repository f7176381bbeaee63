"""The schema can be distributed by organisation (docs/citus.md).

Every model of the project's apps, link tables of many-to-many relations
included, is either a tenant table or listed in ``secops.tenancy.TENANT_EXEMPT``
with a reason. A tenant table carries a non-null organisation, every unique
key includes it, every relation to another tenant table joins on it too, and
the main pages run no query that joins two tenant tables without it.
"""

import re

import pytest
from django.apps import apps
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from alerts.models import AlertEntity, Entity, EntityRole
from events.models import EventAlert
from secops import tenancy
from secops.models import Organisation
from tests import factories

# Exempt models that other work adds; listed ahead of them.
NOT_YET_PRESENT = {"secops.AuditEntry"}


def project_models():
    return [
        model
        for model in apps.get_models(include_auto_created=True)
        if model._meta.app_label in tenancy.PROJECT_APPS
    ]


def tenant_models():
    return [model for model in project_models() if tenancy.is_tenant_model(model)]


def test_it_walks_the_tenant_tables_it_means_to():
    labels = {model._meta.label for model in tenant_models()}
    assert {"alerts.Alert", "events.SecurityEvent", "events.EventAsset"} <= labels
    assert "secops.Organisation" not in labels
    assert len(labels) > 30


def test_every_exemption_names_a_model_and_a_reason():
    present = {model._meta.label for model in project_models()}
    for label, reason in tenancy.TENANT_EXEMPT.items():
        assert label in present or label in NOT_YET_PRESENT, label
        assert len(reason) > 20, label


def test_every_table_of_another_app_is_named_global():
    labels = {model._meta.app_label for model in apps.get_models(include_auto_created=True)}
    assert labels - set(tenancy.PROJECT_APPS) <= set(tenancy.EXEMPT_APPS)


@pytest.mark.parametrize("model", tenant_models(), ids=lambda m: m._meta.label)
def test_every_tenant_table_carries_its_organisation(model):
    field = model._meta.get_field("organisation")
    assert field.concrete and (field.many_to_one or field.one_to_one)
    assert field.remote_field.model is Organisation
    assert not field.null, f"{model._meta.label}.organisation may be null"


@pytest.mark.parametrize("model", tenant_models(), ids=lambda m: m._meta.label)
def test_every_unique_key_of_a_tenant_table_includes_the_organisation(model):
    opts = model._meta
    for constraint in opts.constraints:
        if not hasattr(constraint, "fields") or not hasattr(constraint, "expressions"):
            continue
        if constraint.__class__.__name__ != "UniqueConstraint":
            continue
        names = set(constraint.fields) | {
            getattr(expression, "name", None) for expression in constraint.expressions
        }
        assert "organisation" in names, f"{opts.label}: {constraint.name}"
    for together in opts.unique_together:
        assert "organisation" in together, f"{opts.label}: {together}"
    for field in opts.concrete_fields:
        if field.unique and not field.primary_key:
            assert field.name == "organisation", f"{opts.label}.{field.name} is unique alone"


@pytest.mark.parametrize("model", tenant_models(), ids=lambda m: m._meta.label)
def test_every_relation_between_tenant_tables_joins_on_the_organisation(model):
    for field in model._meta.concrete_fields:
        if not field.is_relation or field.name == "organisation":
            continue
        if not tenancy.is_tenant_model(field.related_model):
            continue
        label = f"{model._meta.label}.{field.name}"
        assert isinstance(field, tenancy.TenantJoins), f"{label} joins on the id alone"
        # The composite key replaces Django's own (secops.citus_keys).
        assert not field.db_constraint, label
        pairs = {(a.name, b.name) for a, b in field.get_joining_fields()}
        assert ("organisation", "organisation") in pairs, label


def test_a_join_over_a_tenant_relation_compares_the_organisations(tenancy):
    alert = factories.make_alert(tenancy.account_a)
    query = str(AlertEntity.objects.filter(alert__name=alert.name).query)
    join = re.search(r'JOIN "alerts_alert" ON \((.*?)\) WHERE', query).group(1)
    assert '"alerts_alertentity"."organisation_id" = "alerts_alert"."organisation_id"' in join


# --- queries the pages run ----------------------------------------------------------

JOIN = re.compile(
    r'JOIN "(?P<table>\w+)"(?: (?P<alias>\w+))? ON \((?P<on>.*?)\)(?= (?:INNER|LEFT|WHERE|GROUP'
    r"|ORDER|LIMIT|\))|$)"
)


def tenant_tables() -> set[str]:
    return {model._meta.db_table for model in tenant_models()}


def joins_across_organisations(sql: str) -> list[str]:
    """The joins of ``sql`` that bring in a tenant table from another tenant
    table without comparing the organisations, where the joined table is not
    held to one organisation by the WHERE clause either."""
    tables = tenant_tables()
    found = []
    for match in JOIN.finditer(sql):
        table = match["table"]
        name = match["alias"] or table
        if table not in tables:
            continue
        on = match["on"]
        others = {t for t in re.findall(r'"(\w+)"\."', on)} - {name}
        if not others & (tables | {m for m in re.findall(r"\b(T\d+)\b", on)}):
            continue
        if f'"{name}"."organisation_id" = ' in on or f'."organisation_id" = "{name}"' in on:
            continue
        if re.search(rf'"{name}"\."organisation_id" = %s|"{name}"\."organisation_id" = \d', sql):
            continue
        found.append(f"{table}: {on}")
    return found


def test_the_join_check_finds_a_join_on_the_id_alone():
    sql = (
        'SELECT 1 FROM "events_eventalert" INNER JOIN "alerts_alert" ON '
        '("events_eventalert"."alert_id" = "alerts_alert"."id") WHERE 1'
    )
    assert joins_across_organisations(sql)
    sql_with = sql.replace(
        '."id")',
        '."id" AND ("events_eventalert"."organisation_id" = "alerts_alert"."organisation_id"))',
    )
    assert not joins_across_organisations(sql_with)


@pytest.fixture
def populated(tenancy):
    account = tenancy.account_a
    asset = factories.make_asset(account)
    alert = factories.make_alert(account, asset=asset)
    entity = Entity.objects.create(
        account=account,
        type="ip",
        value="203.0.113.9",
        digest=Entity.digest_for("ip", "203.0.113.9"),
        first_seen_at=alert.occurred_at,
        last_seen_at=alert.occurred_at,
    )
    AlertEntity.objects.create(alert=alert, entity=entity, role=EntityRole.ATTACKER)
    event = factories.make_event(account)
    EventAlert.objects.create(event=event, alert=alert)
    event.affected_assets.add(asset)
    return {"alert": alert, "event": event}


def test_the_main_pages_join_no_tenant_tables_across_organisations(tenancy, populated):
    client = tenancy.client_for(tenancy.alice)
    event, alert = populated["event"], populated["alert"]
    pages = [
        reverse("alerts:list"),
        reverse("alerts:detail", args=[alert.id]),
        reverse("events:list"),
        reverse("events:detail", args=[event.id]),
        reverse("disposal:center"),
        "/api/v1/events",
        f"/api/v1/events/{event.id}",
        "/api/v1/alerts",
    ]
    problems = []
    for url in pages:
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url)
        assert response.status_code in (200, 401, 403), url
        for query in queries:
            problems += [f"{url}: {join}" for join in joins_across_organisations(query["sql"])]
    assert problems == []


def test_an_outsider_gets_no_page_of_another_organisation(tenancy, populated):
    client = tenancy.client_for(tenancy.charlie)
    assert client.get(reverse("events:detail", args=[populated["event"].id])).status_code == 404


# --- the keys in the database (PostgreSQL) -------------------------------------------

on_postgres = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the key migration changes PostgreSQL only"
)


def key_columns(kinds: str) -> list[tuple[str, str, list[str], str]]:
    """(table, constraint, columns, definition) of the tenant tables' constraints."""
    tables = sorted(tenant_tables())
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.conrelid::regclass::text, c.conname, "
            "array(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY k(attnum, n) "
            "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum "
            "ORDER BY k.n), pg_get_constraintdef(c.oid) "
            "FROM pg_constraint c WHERE c.contype = ANY(%s) AND c.conrelid::regclass::text = "
            "ANY(%s)",
            [list(kinds), tables],
        )
        return cursor.fetchall()


@on_postgres
@pytest.mark.postgres
@pytest.mark.django_db
def test_every_primary_key_of_a_tenant_table_leads_with_the_organisation():
    keys = {table: columns for table, _, columns, _ in key_columns("p")}
    assert set(keys) == tenant_tables()
    for table, columns in keys.items():
        assert columns[0] == "organisation_id", (table, columns)
    assert keys["alerts_alert"] == ["organisation_id", "id", "occurred_at"]


@on_postgres
@pytest.mark.postgres
@pytest.mark.django_db
def test_every_unique_key_of_a_tenant_table_includes_the_organisation_in_the_database():
    for table, name, columns, _ in key_columns("u"):
        assert "organisation_id" in columns, (table, name)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT i.indrelid::regclass::text, i.indexrelid::regclass::text, "
            "pg_get_indexdef(i.indexrelid) FROM pg_index i WHERE i.indisunique AND NOT "
            "i.indisprimary AND i.indrelid::regclass::text = ANY(%s)",
            [sorted(tenant_tables())],
        )
        indexes = cursor.fetchall()
    assert indexes
    for table, index, definition in indexes:
        # The one exception: the id alone, kept for Django (docs/citus.md).
        if index.endswith("_id_uniq"):
            continue
        assert "organisation_id" in definition, (table, index, definition)


@on_postgres
@pytest.mark.postgres
@pytest.mark.django_db
def test_every_foreign_key_between_tenant_tables_includes_the_organisation():
    tables = tenant_tables()
    found = 0
    for table, name, columns, definition in key_columns("f"):
        target = re.search(r"REFERENCES (\w+)", definition).group(1)
        if target not in tables:
            continue
        found += 1
        assert columns[0] == "organisation_id", (table, name, definition)
        assert "(organisation_id, " in definition.split("REFERENCES")[1], (table, definition)
    assert found > 20
