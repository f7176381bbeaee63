"""On PostgreSQL, the keys of tenant tables lead with the organisation.

Citus distributes a table by one column and can only enforce a primary,
unique or foreign key that includes it. So, per app, the keys migration:

- makes each tenant table's primary key ``(organisation_id, id)`` (plus the
  partition key for the tables partitioned by time: ``alerts.partitions``),
  and keeps a unique index on ``id`` alone, which Django's own lookups and
  the foreign keys of global tables rely on (dropped when distributing:
  docs/citus.md);
- adds, for each relation between two tenant tables (``secops.tenancy.
  TenantJoins``: Django makes no constraint for them), the composite foreign
  key ``(organisation_id, x_id) -> (organisation_id, id)``, deferred to the
  end of the transaction as Django's own are. Relations to the tables
  partitioned by time keep no database constraint (alerts.AlertEntity says
  why).

Both ways; on SQLite nothing changes.
"""

from django.db import migrations

from secops import tenancy

# Table -> partition column (alerts.partitions.PARTITIONED, fixed here so that
# the migrations do not follow later changes of that module).
PARTITIONED = {
    "alerts_alert": "occurred_at",
    "alerts_alertentity": "occurred_at",
    "alerts_logrecord": "time",
}
FOREIGN_KEY_SUFFIX = "_org_fk"
ID_INDEX_SUFFIX = "_id_uniq"


def tenant_keys(app_label: str) -> migrations.RunPython:
    def forward(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            with schema_editor.connection.cursor() as cursor:
                for model in _tenant_models(apps, app_label):
                    _set_primary_key(cursor, model, with_organisation=True)
                for model in _tenant_models(apps, app_label):
                    for field in _tenant_relations(model):
                        _add_foreign_key(cursor, model, field)

    def backward(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            with schema_editor.connection.cursor() as cursor:
                for model in _tenant_models(apps, app_label):
                    for field in _tenant_relations(model):
                        name = _foreign_key_name(model, field)
                        cursor.execute(
                            f"ALTER TABLE {_quote(model._meta.db_table)} "
                            f"DROP CONSTRAINT IF EXISTS {_quote(name)}"
                        )
                for model in _tenant_models(apps, app_label):
                    _set_primary_key(cursor, model, with_organisation=False)

    return migrations.RunPython(forward, backward, elidable=False)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _tenant_models(apps, app_label):
    return [
        model
        for model in apps.get_app_config(app_label).get_models(include_auto_created=True)
        if tenancy.is_tenant_model(model) and tenancy.has_organisation(model)
    ]


def _tenant_relations(model):
    """Relations of ``model`` to tenant tables that a composite key can hold."""
    return [
        field
        for field in model._meta.concrete_fields
        if field.is_relation
        and field.name != "organisation"
        and tenancy.is_tenant_model(field.related_model)
        and tenancy.has_organisation(field.related_model)
        and field.related_model._meta.db_table not in PARTITIONED
    ]


def _foreign_key_name(model, field) -> str:
    # PostgreSQL names are at most 63 bytes.
    return f"{model._meta.db_table}_{field.column}"[: 63 - len(FOREIGN_KEY_SUFFIX)] + (
        FOREIGN_KEY_SUFFIX
    )


def _add_foreign_key(cursor, model, field) -> None:
    target = field.related_model._meta
    cursor.execute(
        f"ALTER TABLE {_quote(model._meta.db_table)} ADD CONSTRAINT "
        f"{_quote(_foreign_key_name(model, field))} FOREIGN KEY (organisation_id, "
        f"{_quote(field.column)}) REFERENCES {_quote(target.db_table)} (organisation_id, "
        f"{_quote(target.pk.column)}) DEFERRABLE INITIALLY DEFERRED"
    )


def _set_primary_key(cursor, model, *, with_organisation: bool) -> None:
    """Make the primary key (organisation_id, pk[, time]) or back (pk[, time]).

    Foreign keys of other tables that rest on the key's index are dropped and
    made again around the change; afterwards they rest on the unique index on
    the id (or on the primary key again, backwards)."""
    table = model._meta.db_table
    pk = model._meta.pk.column
    if pk == "organisation_id":
        return  # one row per organisation: keyed by it already
    partition = PARTITIONED.get(table)
    columns = [pk, partition] if partition else [pk]
    if with_organisation:
        columns = ["organisation_id", *columns]
    cursor.execute(
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE contype = 'f' AND confrelid = %s::regclass AND conrelid <> confrelid",
        [table],
    )
    referring = cursor.fetchall()
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE contype = 'f' AND confrelid = %s::regclass AND conrelid = confrelid",
        [table],
    )
    own = cursor.fetchall()
    for other, name, _ in referring:
        cursor.execute(f"ALTER TABLE {other} DROP CONSTRAINT {_quote(name)}")
    for name, _ in own:
        cursor.execute(f"ALTER TABLE {_quote(table)} DROP CONSTRAINT {_quote(name)}")
    cursor.execute(
        "SELECT conname FROM pg_constraint WHERE contype = 'p' AND conrelid = %s::regclass",
        [table],
    )
    (primary,) = cursor.fetchone()
    id_index = _quote(f"{table}{ID_INDEX_SUFFIX}"[:63])
    cursor.execute(f"ALTER TABLE {_quote(table)} DROP CONSTRAINT {_quote(primary)}")
    cursor.execute(
        f"ALTER TABLE {_quote(table)} ADD CONSTRAINT {_quote(primary)} PRIMARY KEY "
        f"({', '.join(_quote(c) for c in columns)})"
    )
    if not partition:
        if with_organisation:
            cursor.execute(f"CREATE UNIQUE INDEX {id_index} ON {_quote(table)} ({_quote(pk)})")
        else:
            cursor.execute(f"DROP INDEX IF EXISTS {id_index}")
    for name, definition in own:
        cursor.execute(f"ALTER TABLE {_quote(table)} ADD CONSTRAINT {_quote(name)} {definition}")
    for other, name, definition in referring:
        cursor.execute(f"ALTER TABLE {other} ADD CONSTRAINT {_quote(name)} {definition}")
