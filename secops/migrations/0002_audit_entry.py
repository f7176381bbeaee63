"""The audit log, and on PostgreSQL a trigger that keeps its rows as written."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

# Refuses every UPDATE and DELETE of an audit entry, whoever connects. The one
# exception is the user's deletion, which sets ``actor_id`` to NULL (the
# entry keeps the username in ``actor_name``): an UPDATE that changes nothing
# else passes. TRUNCATE (the table owner's own tool, which test databases use
# to empty tables) is left to the database's privileges.
REFUSE_CHANGES = """
CREATE FUNCTION secops_auditentry_refuse_change() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.actor_id IS NULL
            AND to_jsonb(NEW) - 'actor_id' = to_jsonb(OLD) - 'actor_id' THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit entries cannot be changed or deleted (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER secops_auditentry_read_only
    BEFORE UPDATE OR DELETE ON secops_auditentry
    FOR EACH ROW EXECUTE FUNCTION secops_auditentry_refuse_change();
"""
ALLOW_CHANGES = """
DROP TRIGGER IF EXISTS secops_auditentry_read_only ON secops_auditentry;
DROP FUNCTION IF EXISTS secops_auditentry_refuse_change();
"""


class PostgreSQLOnly(migrations.RunSQL):
    """RunSQL that does nothing on SQLite (the embedded default has no triggers
    of this kind; the console offers no way to change entries either)."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)


class Migration(migrations.Migration):
    dependencies = [
        ("secops", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="AuditEntry",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("when", models.DateTimeField(db_index=True)),
                ("actor_name", models.CharField(max_length=200)),
                (
                    "actor_kind",
                    models.CharField(
                        choices=[
                            ("user", "User"),
                            ("api_key", "API key"),
                            ("automation", "Automation"),
                            ("system", "System"),
                            ("anonymous", "Anonymous"),
                        ],
                        max_length=16,
                    ),
                ),
                ("source_address", models.GenericIPAddressField(blank=True, null=True)),
                ("user_agent", models.CharField(blank=True, max_length=500)),
                ("request_id", models.CharField(blank=True, max_length=64)),
                (
                    "action",
                    models.CharField(
                        choices=[
                            ("login.success", "Login"),
                            ("login.failure", "Failed login"),
                            ("logout", "Logout"),
                            ("view.switch", "View switch"),
                            ("handling.handle", "Event handled"),
                            ("handling.status", "Event status changed"),
                            ("handling.risk", "Event risk changed"),
                            ("handling.retry", "Handling task retried"),
                            ("handling.unblock", "Handling task unblocked"),
                            ("handling.policy_edit", "Handling policy edited"),
                            ("whitelist.create", "Whitelist group created"),
                            ("whitelist.update", "Whitelist group updated"),
                            ("whitelist.delete", "Whitelist group deleted"),
                            ("whitelist.enable", "Whitelist group enabled or disabled"),
                            ("aggregation_rule.create", "Aggregation rule created"),
                            ("aggregation_rule.update", "Aggregation rule updated"),
                            ("aggregation_rule.delete", "Aggregation rule deleted"),
                            ("aggregation_rule.enable", "Aggregation rule enabled or disabled"),
                            ("detection_rule.create", "Sigma detection rule created"),
                            ("detection_rule.update", "Sigma detection rule updated"),
                            ("detection_rule.delete", "Sigma detection rule deleted"),
                            ("detection_rule.enable", "Sigma detection rule enabled or disabled"),
                            ("playbook.create", "Playbook created"),
                            ("playbook.update", "Playbook updated"),
                            ("automated_rule.create", "Automated response rule created"),
                            ("automated_rule.update", "Automated response rule updated"),
                            ("automated_rule.delete", "Automated response rule deleted"),
                            (
                                "automated_rule.enable",
                                "Automated response rule enabled or disabled",
                            ),
                            ("automation.pause", "Automation paused or resumed"),
                            ("api_key.create", "API key created"),
                            ("api_key.revoke", "API key revoked"),
                            ("access_key.create", "AccessKey created"),
                            ("access_key.revoke", "AccessKey revoked"),
                        ],
                        db_index=True,
                        max_length=40,
                    ),
                ),
                ("target_type", models.CharField(blank=True, max_length=64)),
                ("target_id", models.CharField(blank=True, max_length=64)),
                ("target_label", models.CharField(blank=True, max_length=300)),
                ("changes", models.JSONField(blank=True, default=dict)),
                ("details", models.JSONField(blank=True, default=dict)),
                (
                    "account",
                    models.ForeignKey(
                        blank=True,
                        db_constraint=False,
                        null=True,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="secops.account",
                    ),
                ),
                (
                    "actor",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "organisation",
                    models.ForeignKey(
                        blank=True,
                        db_constraint=False,
                        null=True,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="secops.organisation",
                    ),
                ),
            ],
            options={
                "verbose_name_plural": "audit entries",
                "ordering": ["-when", "-id"],
                "indexes": [models.Index(fields=["organisation", "-when"], name="audit_org_when")],
            },
        ),
        PostgreSQLOnly(sql=REFUSE_CHANGES, reverse_sql=ALLOW_CHANGES),
    ]
