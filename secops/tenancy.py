"""Every tenant table carries its organisation.

The schema is laid out so that it can be distributed by organisation on Citus
(docs/citus.md): every tenant table has a non-null ``organisation`` column,
every primary, unique and foreign key between tenant tables includes it, and
the ORM's joins between tenant tables compare it. ``tests/architecture/
test_citus_readiness.py`` holds the project's models to those rules.

A tenant model gets its organisation from its parent row (its account, or the
row it belongs to: an alert's link from its alert, a task's transition from
its task), so no caller sets it by hand:

- ``save()`` fills it through the ``pre_save`` signal (connected in
  ``secops.apps``);
- ``bulk_create`` fills it through ``TenantQuerySet``, the base of every
  tenant model's manager (``ScopedQuerySet`` is one);
- ``secops.db.insert_on_conflict`` fills its rows and adds the organisation to
  the conflict key.

Tables outside that rule are listed in ``TENANT_EXEMPT`` with the reason: they
are global (replicated to every node as Citus reference tables).
"""

from collections import defaultdict
from collections.abc import Iterable, Sequence

from django.db import models

# The apps whose models the readiness rules walk.
PROJECT_APPS = ("secops", "alerts", "events", "whitelist", "disposal", "soar", "cloudsiem")

# Global tables of the project apps: model label -> why it is not distributed
# by organisation. Each becomes a Citus reference table.
TENANT_EXEMPT = {
    "secops.Organisation": "the organisations themselves: the distribution key's own table",
    "secops.Account": (
        "cloud accounts: few rows, read by every request's scope and every join; "
        "an account uid is unique across organisations and ingestion finds the "
        "account by uid before it knows the organisation"
    ),
    "secops.OrganisationMembership": "users: looked up by user at login, before the organisation",
    "secops.AccountMembership": "users: a user's roles, read at login before the organisation",
    "secops.ApiKey": "keys are found by their global prefix before the organisation is known",
    "secops.AuditEntry": "the audit log of the whole installation, kept apart from tenant data",
    "cloudsiem.AccessKey": "user keys, found by their global key id before the organisation",
    "alerts.DetectionRule": "catalog: predefined rules shared by all organisations plus custom ones",
    "alerts.PendingAlertBatch": (
        "a transient hand-off queue of alert ids that workers drain across "
        "organisations; it holds no tenant data"
    ),
    "events.AggregationRule": "catalog: predefined rules shared by all organisations plus custom ones",
    "disposal.Scenario": "catalog: built-in handling scenarios plus custom ones",
    "disposal.ThreatIndicator": "catalog: shared threat intelligence plus an organisation's own",
    "disposal.AccountConnector": "an account's connector settings, one row per account, read with it",
    "disposal.SimulatedAction": (
        "the simulated cloud stands for the provider's side, outside the console's "
        "data; production connectors replace it"
    ),
    "disposal.SimulatedFailure": "the simulated cloud's failure switches (see SimulatedAction)",
    "soar.Playbook": "catalog: built-in playbooks plus custom ones",
    "soar.PlaybookVersion": "catalog: the versions of the playbooks (see Playbook)",
}

# Tables of Django and third-party apps: all global, reference tables too.
EXEMPT_APPS = {
    "auth": "Django's users, groups and permissions",
    "contenttypes": "Django's model catalog",
    "sessions": "Django's sessions, keyed by a random session key",
    "admin": "Django admin's log",
    "axes": "login throttling records, keyed by user name and address",
}


def is_tenant_model(model) -> bool:
    """Whether ``model``'s table is distributed by organisation."""
    opts = model._meta
    return (
        opts.app_label in PROJECT_APPS
        and opts.label not in TENANT_EXEMPT
        and not opts.proxy
        and opts.managed
    )


def has_organisation(model) -> bool:
    return any(f.name == "organisation" for f in model._meta.concrete_fields)


def organisation_field(**kwargs) -> models.ForeignKey:
    """The organisation column of a tenant table whose organisation follows
    from its parent row: filled on save, never edited in a form. No index of
    its own: on PostgreSQL the primary key (organisation_id, id) leads with it."""
    options = {
        "on_delete": models.CASCADE,
        "related_name": "+",
        "db_index": False,
        "editable": False,
        "blank": True,
    }
    options.update(kwargs)
    return models.ForeignKey("secops.Organisation", **options)


class TenantJoins:
    """A relation between two tenant tables whose ORM joins also compare the
    two rows' organisations (``a.organisation_id = b.organisation_id``), so
    that no query joins across organisations and Citus can run each join on
    one node. No database constraint from Django: on PostgreSQL the key
    migration adds the composite one, (organisation_id, x_id) ->
    (organisation_id, id) (secops.citus_keys).
    """

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("db_constraint", False)
        super().__init__(*args, **kwargs)

    def get_joining_fields(self, reverse_join=False):
        pairs = super().get_joining_fields(reverse_join=reverse_join)
        model, related = self.model, self.remote_field.model
        if isinstance(related, str) or not (has_organisation(model) and has_organisation(related)):
            return pairs
        own = model._meta.get_field("organisation")
        other = related._meta.get_field("organisation")
        return (*pairs, (other, own) if reverse_join else (own, other))


class TenantForeignKey(TenantJoins, models.ForeignKey):
    """A foreign key between two tenant tables (see ``TenantJoins``)."""


class TenantOneToOneField(TenantJoins, models.OneToOneField):
    """A one-to-one key between two tenant tables (see ``TenantJoins``)."""


def parent_field(model):
    """The non-null relation a tenant row takes its organisation from: its
    account, else the first relation to a table that carries an organisation."""
    candidates = [
        f
        for f in model._meta.concrete_fields
        if f.is_relation
        and f.name != "organisation"
        and not f.null
        and not isinstance(f.remote_field.model, str)
        and has_organisation(f.remote_field.model)
    ]
    for f in candidates:
        if f.name == "account":
            return f
    return candidates[0] if candidates else None


def fill_organisations(objs: Iterable[models.Model]) -> None:
    """Set ``organisation_id`` on the tenant rows of ``objs`` that lack it,
    from their parents: one query per parent table at most."""
    missing = defaultdict(list)
    for obj in objs:
        if obj.organisation_id is None:
            missing[type(obj)].append(obj)
    for model, rows in missing.items():
        parent = parent_field(model)
        if parent is None:
            continue
        unresolved = []
        for obj in rows:
            cached = parent.get_cached_value(obj, default=None)
            if cached is not None and cached.organisation_id is not None:
                obj.organisation_id = cached.organisation_id
            elif getattr(obj, parent.attname) is not None:
                unresolved.append(obj)
        if unresolved:
            owners = organisations_of(
                parent.remote_field.model, {getattr(obj, parent.attname) for obj in unresolved}
            )
            for obj in unresolved:
                obj.organisation_id = owners.get(getattr(obj, parent.attname))


def organisations_of(model, ids) -> dict:
    """id -> organisation id of rows of ``model``."""
    ids = [i for i in ids if i is not None]
    if not ids:
        return {}
    return dict(model._base_manager.filter(pk__in=ids).values_list("pk", "organisation_id"))


def rows_with_organisation(model, rows: Sequence[dict]) -> Sequence[dict]:
    """``rows`` (field name -> value dicts, as ``secops.db.insert_on_conflict``
    takes them) with their organisation added from their parents."""
    if not rows or "organisation" in rows[0] or "organisation_id" in rows[0]:
        return rows
    parent = parent_field(model)
    key = parent.name if parent.name in rows[0] else parent.attname

    def parent_id(row):
        value = row[key]
        return value.pk if isinstance(value, models.Model) else value

    owners = organisations_of(parent.remote_field.model, {parent_id(row) for row in rows})
    return [{**row, "organisation": owners.get(parent_id(row))} for row in rows]


def fill_organisation_on_save(sender, instance, raw=False, **kwargs):
    """``pre_save`` receiver: a tenant row about to be saved gets its
    organisation from its parent."""
    if raw or not is_tenant_model(sender) or not has_organisation(sender):
        return
    if instance.organisation_id is None:
        fill_organisations([instance])


class TenantQuerySet(models.QuerySet):
    """Base queryset of tenant models: ``bulk_create`` fills the organisation."""

    def bulk_create(self, objs, *args, **kwargs):
        objs = list(objs)
        if is_tenant_model(self.model) and has_organisation(self.model):
            fill_organisations(objs)
        return super().bulk_create(objs, *args, **kwargs)
