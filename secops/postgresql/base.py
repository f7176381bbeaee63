"""Django's PostgreSQL backend, aware of tables partitioned by time.

A partitioned table's primary key must include its partition key, so the
alerts tables have (id, time) as theirs. Grouping by the id alone then no
longer implies the other columns to PostgreSQL, and Django's habit of
grouping a model's rows by its primary key only would fail. For a model that
names its ``partitioned_by`` column, Django groups by every selected column
instead. The engine is chosen for postgres:// database URLs (secops.env).
"""

from django.db.backends.postgresql import base, features


class DatabaseFeatures(features.DatabaseFeatures):
    def allows_group_by_selected_pks_on_model(self, model):
        if getattr(model, "partitioned_by", None):
            return False
        return super().allows_group_by_selected_pks_on_model(model)


class DatabaseWrapper(base.DatabaseWrapper):
    features_class = DatabaseFeatures
