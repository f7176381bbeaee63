"""Django's PostgreSQL backend, aware of primary keys that are not the id alone.

A partitioned table's primary key must include its partition key, so the
alerts tables have (id, time) in theirs; and every tenant table's primary key
leads with its organisation (secops.citus_keys), so that it can be
distributed by organisation. Grouping by the id alone then no longer implies
the other columns to PostgreSQL, and Django's habit of grouping a model's rows
by its primary key only would fail. For those models Django groups by every
selected column instead. The engine is chosen for postgres:// database URLs
(secops.env).
"""

from django.db.backends.postgresql import base, features

from secops import tenancy


class DatabaseFeatures(features.DatabaseFeatures):
    def allows_group_by_selected_pks_on_model(self, model):
        if getattr(model, "partitioned_by", None):
            return False
        if tenancy.is_tenant_model(model) and tenancy.has_organisation(model):
            return False
        return super().allows_group_by_selected_pks_on_model(model)


class DatabaseWrapper(base.DatabaseWrapper):
    features_class = DatabaseFeatures
