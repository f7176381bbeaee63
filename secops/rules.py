"""What aggregation rules and detection rules share: a predefined rule serves
every organisation and each one may switch it off for itself; a custom rule
belongs to one organisation, which edits, switches and deletes it.

The model, the queries of "which rules apply to an organisation" and the
services that change that are here, once; each family adds what its rules
hold and how a rule is checked (``AggregationRuleSpec``, ``DetectionRuleSpec``).
"""

import uuid
from collections.abc import Callable, Iterable

from django.db import models, transaction
from django.db.models import BooleanField, Case, Exists, OuterRef, Q, Value, When

from secops import audit
from secops.models import Organisation
from secops.scope import get_for_change_or_404, require


class RuleValidationError(Exception):
    """A rule that cannot be saved: ``errors`` maps a field to its messages."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))
        self.errors = errors


class PredefinedRuleError(Exception):
    """Predefined rules can be enabled or disabled, not edited or deleted; and a
    custom rule is changed only by its own organisation."""


def rule_key_constraints(*, predefined_name: str, custom_name: str) -> list:
    """A predefined rule's key is unique among predefined rules, a custom rule's
    within its organisation. Each family names its own constraints."""
    return [
        models.UniqueConstraint(
            fields=["key"], condition=Q(organisation__isnull=True), name=predefined_name
        ),
        models.UniqueConstraint(
            fields=["organisation", "key"],
            condition=Q(organisation__isnull=False),
            name=custom_name,
        ),
    ]


class OrganisationRuleQuerySet(models.QuerySet):
    def in_scope(self, scope):
        """Predefined rules plus the custom rules of the scope's organisation."""
        return self.filter(Q(organisation__isnull=True) | Q(organisation_id=scope.organisation_id))

    def predefined(self):
        return self.filter(organisation__isnull=True)

    def custom(self):
        return self.filter(organisation__isnull=False)

    def enabled(self):
        return self.filter(enabled=True)

    def _opt_outs(self):
        """The opt-out rows and the name of their column of the rule's id."""
        through = self.model.disabled_by.through
        return through.objects, f"{self.model.disabled_by.field.m2m_field_name()}_id"

    def _opted_out_by(self, organisation_id: int) -> Exists:
        opt_outs, rule_column = self._opt_outs()
        return Exists(
            opt_outs.filter(**{rule_column: OuterRef("pk")}, organisation_id=organisation_id)
        )

    def _applies_to(self, organisation_id: int) -> Q:
        # The one definition of "enabled for this organisation": its own enabled
        # rules, and the enabled predefined rules it has not switched off.
        return Q(enabled=True) & (
            Q(organisation_id=organisation_id)
            | (Q(organisation__isnull=True) & ~self._opted_out_by(organisation_id))
        )

    def enabled_for(self, organisation_id: int):
        """What applies to an organisation's alerts or logs."""
        return self.filter(self._applies_to(organisation_id))

    def with_enabled_for(self, organisation_id: int):
        """Each rule with ``enabled_for_organisation``: whether it applies to
        the organisation, as the rule lists and the API show it."""
        # A Case rather than the bare condition: for a predefined rule the
        # comparison with its null organisation is NULL, not false.
        return self.annotate(
            enabled_for_organisation=Case(
                When(self._applies_to(organisation_id), then=Value(True)),
                default=Value(False),
                output_field=BooleanField(),
            )
        )

    def enabled_for_each(self, organisation_ids: Iterable[int]) -> dict[int, list]:
        """``enabled_for`` of several organisations at once, in two queries
        whatever their number: the pipeline asks for every organisation of a
        batch. A predefined rule is the same instance in every list."""
        organisation_ids = set(organisation_ids)
        rules = list(
            self.enabled().filter(
                Q(organisation__isnull=True) | Q(organisation_id__in=organisation_ids)
            )
        )
        opt_outs, rule_column = self._opt_outs()
        opted_out = set(
            opt_outs.filter(organisation_id__in=organisation_ids).values_list(
                "organisation_id", rule_column
            )
        )
        # The condition of ``_applies_to``, on the rows already read.
        return {
            organisation_id: [
                rule
                for rule in rules
                if rule.organisation_id == organisation_id
                or (rule.is_predefined and (organisation_id, rule.id) not in opted_out)
            ]
            for organisation_id in organisation_ids
        }


class OrganisationRule(models.Model):
    """A rule shared by every organisation (no organisation: predefined) or
    owned by one (custom)."""

    key = models.SlugField(
        max_length=64,
        help_text="Stable identifier: a predefined rule's own, a custom rule's made when saved.",
    )
    organisation = models.ForeignKey(
        Organisation,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="%(class)s_set",
    )
    enabled = models.BooleanField(default=True)
    # A predefined rule is shared by every organisation; each can switch it
    # off for itself without touching the others.
    disabled_by = models.ManyToManyField(
        Organisation, blank=True, related_name="disabled_%(class)s_set"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = OrganisationRuleQuerySet.as_manager()

    class Meta:
        abstract = True

    @property
    def is_predefined(self) -> bool:
        return self.organisation_id is None


# --- services ------------------------------------------------------------------------


def require_rule_manager(scope, rules_name: str) -> None:
    """Rules, and the opt-outs of predefined ones, apply to the whole
    organisation: only its global administrators change them."""
    require(scope.may_manage_organisation(), f"Only global administrators can change {rules_name}.")


def get_rule_for_change_or_404(queryset, scope, rules_name: str, **lookup):
    """A rule the scope sees (else 404) and may change (else 403)."""
    return get_for_change_or_404(
        queryset,
        scope,
        lambda s, _rule: s.may_manage_organisation(),
        f"Only global administrators can change {rules_name}.",
        **lookup,
    )


def check_editable(rule: OrganisationRule | None, organisation) -> None:
    """A new rule, or a custom rule of ``organisation``: what may be saved."""
    if rule is None:
        return
    if rule.is_predefined:
        raise PredefinedRuleError("Predefined rules cannot be edited; disable it and add your own.")
    if rule.organisation_id != organisation.id:
        raise PredefinedRuleError("The rule belongs to another organisation.")


def new_custom_key() -> str:
    return f"custom-{uuid.uuid4().hex[:12]}"


def set_rule_enabled(rule: OrganisationRule, enabled: bool, organisation) -> None:
    """Switch a rule on or off for ``organisation``.

    A custom rule belongs to its organisation and is switched itself; a
    predefined rule is shared, so only this organisation's opt-out changes.
    """
    with transaction.atomic():
        if rule.is_predefined:
            was = not rule.disabled_by.filter(pk=organisation.pk).exists()
            if enabled:
                rule.disabled_by.remove(organisation)
            else:
                rule.disabled_by.add(organisation)
        else:
            if rule.organisation_id != organisation.id:
                raise PredefinedRuleError("The rule belongs to another organisation.")
            was = rule.enabled
            rule.enabled = enabled
            rule.save(update_fields=["enabled", "updated_at"])
        if was != enabled:
            record_rule_change(rule, "enable", organisation, {"enabled": was}, {"enabled": enabled})


def delete_custom_rule(
    rule: OrganisationRule, *, in_use: Callable[[OrganisationRule], bool] | None = None
) -> None:
    """Delete a custom rule; one that ``in_use`` says is still referred to is
    switched off for good instead (retired), so what refers to it stays."""
    if rule.is_predefined:
        raise PredefinedRuleError("Predefined rules cannot be deleted; disable it instead.")
    with transaction.atomic():
        retired = in_use is not None and in_use(rule)
        record_rule_change(
            rule,
            "delete",
            rule.organisation,
            {"enabled": rule.enabled},
            {"enabled": False} if retired else None,
            details={"retired": True} if retired else None,
        )
        if retired:
            rule.enabled = False
            rule.save(update_fields=["enabled", "updated_at"])
            return
        rule.delete()


# The audit log's name of each family of rules.
AUDIT_NAMES = {"aggregationrule": "aggregation_rule", "detectionrule": "detection_rule"}


def record_rule_change(
    rule: OrganisationRule,
    verb: str,
    organisation,
    before: dict | None,
    after: dict | None,
    *,
    details: dict | None = None,
) -> None:
    """An audit entry for ``verb`` (create, update, enable, delete) of a rule."""
    name = AUDIT_NAMES[rule._meta.model_name]
    audit.record(
        f"{name}.{verb}",
        target=rule,
        target_type=name,
        organisation=organisation,
        changes=audit.changes_between(before, after),
        details=details,
    )
