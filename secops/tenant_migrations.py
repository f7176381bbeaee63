"""Migration operations that give tenant tables their organisation
(secops.tenancy), used by the apps' migrations. Data-preserving both ways."""

from django.db import migrations
from django.db.models import OuterRef, Subquery

from secops import tenancy


def fill_organisation(app_label: str, model_names: list[str]) -> migrations.RunPython:
    """Set each row's organisation from its parent row, models in the order
    given (a parent before its children). Backwards: nothing to undo, the
    column goes with the reversed AddField."""

    def fill(apps, schema_editor):
        for name in model_names:
            model = apps.get_model(app_label, name)
            parent = tenancy.parent_field(model)
            owners = parent.remote_field.model._base_manager.filter(
                pk=OuterRef(parent.attname)
            ).values("organisation_id")[:1]
            model._base_manager.filter(organisation__isnull=True).update(
                organisation_id=Subquery(owners)
            )

    return migrations.RunPython(fill, migrations.RunPython.noop, elidable=False)


def copy_link_table(
    old_table: str,
    old_columns: tuple[str, str],
    new_table: str,
    new_columns: tuple[str, str],
    parent_table: str,
) -> migrations.RunSQL:
    """Copy an auto-created many-to-many table into its explicit link model,
    the organisation taken from the owning side's row; backwards, copy it back."""
    old_source, old_target = old_columns
    new_source, new_target = new_columns
    # Table and column names come from the migration itself, never from input.
    pairs = f"SELECT p.organisation_id, l.{old_source}, l.{old_target} FROM {old_table} l"  # noqa: S608
    pairs += f" JOIN {parent_table} p ON p.id = l.{old_source}"
    forward = f"INSERT INTO {new_table} (organisation_id, {new_source}, {new_target}) {pairs}"
    back = f"SELECT {new_source}, {new_target} FROM {new_table}"  # noqa: S608
    backward = f"INSERT INTO {old_table} ({old_source}, {old_target}) {back}"
    return migrations.RunSQL(forward, backward, elidable=False)
