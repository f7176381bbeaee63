"""The whitelist: rule groups kept valid, compiled once per organisation, and
applied to every pipeline batch.

``apply_whitelist`` is what the pipeline calls. It costs a constant number of
statements per batch: one to read the rule-set revisions of the batch's
organisations (the compiled rules are cached per process and rebuilt only when
a revision moved), and, when alerts matched, one each to flag them, record
the matches and count the hits.
"""

import re
import threading
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Case, F, IntegerField, Value, When
from django.db.models.fields.json import KT
from django.db.models.functions import Greatest
from django.utils import timezone

from alerts.facts import AlertFacts, load_alert_facts
from alerts.models import Alert
from secops import audit
from secops.models import Account, AuditAction
from secops.scope import Scope, get_for_change_or_404
from whitelist.matching import (
    MAX_VALUE_LENGTH,
    AlertValues,
    CompiledGroup,
    CompiledRuleSet,
    ConditionError,
    GroupIndex,
    PortsNeeded,
    compile_condition,
    compile_group,
)
from whitelist.models import Condition, Match, Operator, Revision, RuleGroup
from whitelist.scenarios import OBJECTS, PORT_KEYS, destination_ports, scenario

MAX_CONDITIONS = 20
SCENARIO_KEY = re.compile(r"^[a-z0-9_]{1,64}$")
PREVIEW_WINDOW = timedelta(days=7)
# The preview examines at most this many of the latest alerts of the scenario.
PREVIEW_MAX_ALERTS = 20_000
PREVIEW_SAMPLE = 5


class GroupValidationError(Exception):
    """``errors`` maps a field (``name``, ``conditions[2].value``, ...) to its messages."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))
        self.errors = errors


class WhitelistPermissionError(Exception):
    """The editor may not make or change this group (the message says why)."""


@dataclass
class ConditionSpec:
    object: str
    operator: str
    value: str


@dataclass
class GroupSpec:
    """A rule group as an editor (form or API) describes it."""

    name: str
    scenario: str
    conditions: list[ConditionSpec]
    description: str = ""
    enabled: bool = True
    expires_at: datetime | None = None
    is_global: bool = True
    account_ids: list[int] = field(default_factory=list)


# --- compiled rule sets, cached per process ------------------------------------

_cache: dict[int, CompiledRuleSet] = {}
_cache_lock = threading.Lock()


def _bump_revision(organisation_id: int) -> None:
    """Raise the organisation's revision in the caller's transaction, so a
    batch that sees the new rows also sees the new number."""
    updated = Revision.objects.filter(organisation_id=organisation_id).update(
        number=F("number") + 1
    )
    if not updated:
        _, created = Revision.objects.get_or_create(
            organisation_id=organisation_id, defaults={"number": 1}
        )
        if not created:
            # A concurrent first change created the row between the two
            # statements: this change still needs a number of its own.
            Revision.objects.filter(organisation_id=organisation_id).update(number=F("number") + 1)


def _compile_rule_set(organisation_id: int, revision: int) -> CompiledRuleSet:
    groups = list(
        RuleGroup.objects.filter(organisation_id=organisation_id).prefetch_related(
            "conditions", "accounts"
        )
    )
    rule_set = CompiledRuleSet(revision=revision)
    for group in groups:
        rule_set.add(
            compile_group(group, group.conditions.all(), [a.id for a in group.accounts.all()])
        )
    return rule_set


def rule_sets(organisation_ids) -> dict[int, CompiledRuleSet]:
    """The compiled rules of each organisation, rebuilt only when its revision moved."""
    organisation_ids = set(organisation_ids)
    revisions = dict(
        Revision.objects.filter(organisation_id__in=organisation_ids).values_list(
            "organisation_id", "number"
        )
    )
    result = {}
    for organisation_id in organisation_ids:
        revision = revisions.get(organisation_id, 0)
        cached = _cache.get(organisation_id)
        if cached is None or cached.revision != revision:
            cached = (
                _compile_rule_set(organisation_id, revision)
                if revision
                else CompiledRuleSet(revision=0)
            )
            with _cache_lock:
                _cache[organisation_id] = cached
        result[organisation_id] = cached
    return result


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()


# --- the pipeline step -----------------------------------------------------------


def _ports_of(alert_ids) -> dict[int, tuple[str, ...]]:
    """Destination ports from the original data, read key by key in the
    database (never the whole payload)."""
    columns = {f"port_{i}": KT(f"raw__{key}") for i, key in enumerate(PORT_KEYS)}
    ports = {}
    for row in Alert.objects.filter(id__in=alert_ids).annotate(**columns).values("id", *columns):
        raw = {key: row[f"port_{i}"] for i, key in enumerate(PORT_KEYS) if row[f"port_{i}"]}
        ports[row["id"]] = destination_ports(raw)
    return ports


def match_alerts(facts, now: datetime) -> dict[int, CompiledGroup]:
    """The first active group (by id) each alert meets, for (alert facts,
    organisation id) pairs."""
    sets = rule_sets({organisation_id for _, organisation_id in facts})
    # Which groups are active depends on the batch, not on the alert.
    active: dict[tuple[int, str], GroupIndex] = {}
    matched: dict[int, CompiledGroup] = {}
    # Alerts that met every condition of a group but its port condition.
    waiting_for_ports = []
    for alert, organisation_id in facts:
        key = (organisation_id, alert.type)
        if key not in active:
            active[key] = GroupIndex(
                g for g in sets[organisation_id].candidates(alert.type) if g.active(now)
            )
        if not active[key]:
            continue
        values = AlertValues(alert, ports=None)
        groups = [g for g in active[key].candidates(values) if g.applies_to(alert.account_id)]
        if groups:
            try:
                _first_match(alert, groups, values, matched)
            except PortsNeeded:
                waiting_for_ports.append((alert, groups))
    if waiting_for_ports:
        ports = _ports_of([alert.id for alert, _ in waiting_for_ports])
        for alert, groups in waiting_for_ports:
            _first_match(alert, groups, AlertValues(alert, ports.get(alert.id, ())), matched)
    return matched


def _first_match(alert, groups, values: AlertValues, matched: dict) -> None:
    for group in groups:
        if group.matches(alert, values=values):
            matched[alert.id] = group
            return


def apply_whitelist(facts, now: datetime) -> set[int]:
    """Flag the batch's alerts that a group matches, record which group, count
    its hits; returns their ids. Runs inside the pipeline's transaction."""
    matched = match_alerts(facts, now)
    if not matched:
        return set()
    Alert.objects.filter(id__in=matched).update(whitelisted=True)
    Match.objects.bulk_create(
        [
            Match(alert_id=alert_id, group_id=group.id, group_name=group.name, matched_at=now)
            for alert_id, group in matched.items()
        ],
        ignore_conflicts=True,
    )
    hits = Counter(group.id for group in matched.values())
    # Lock the counted groups in id order first: concurrent batches then wait
    # for each other instead of deadlocking on a different row order.
    locked = list(
        RuleGroup.objects.select_for_update()
        .filter(id__in=hits)
        .order_by("id")
        .values_list("id", flat=True)
    )
    if locked:
        RuleGroup.objects.filter(id__in=locked).update(
            hit_count=F("hit_count")
            + Case(
                *[When(id=group_id, then=Value(hits[group_id])) for group_id in locked],
                default=Value(0),
                output_field=IntegerField(),
            ),
            last_hit_at=Case(
                When(last_hit_at__isnull=True, then=Value(now)),
                default=Greatest(F("last_hit_at"), Value(now)),
            ),
        )
    return set(matched)


# --- editing ---------------------------------------------------------------------


def _same_minute(one: datetime, other: datetime | None) -> bool:
    # The editor's date-time field has no seconds.
    return other is not None and one.replace(second=0, microsecond=0) == other.replace(
        second=0, microsecond=0
    )


def validate(
    spec: GroupSpec, scope: Scope, *, allow_global: bool, now=None, unchanged_expiry=None
) -> None:
    """Every problem of a group at once, keyed by field.

    ``unchanged_expiry`` is the expiry the group already has: keeping a past
    one is allowed, so an expired group can still be renamed or edited."""
    errors: dict[str, list[str]] = defaultdict(list)
    # PostgreSQL text cannot hold a NUL character: refused here, not by the database.
    texts = {"name": spec.name, "description": spec.description}
    texts |= {f"conditions[{i}].value": c.value for i, c in enumerate(spec.conditions)}
    for where, text in texts.items():
        if "\x00" in text:
            errors[where].append("Remove the NUL character (\\x00): text cannot hold it.")
    if not spec.name.strip():
        errors["name"].append("Enter a name.")
    elif len(spec.name) > 200:
        errors["name"].append("At most 200 characters.")
    if not SCENARIO_KEY.match(spec.scenario or ""):
        errors["scenario"].append(
            "Choose a scenario (an alert type: lower-case letters, digits and _)."
        )
    if not spec.conditions:
        errors["conditions"].append("Add at least one condition.")
    elif len(spec.conditions) > MAX_CONDITIONS:
        errors["conditions"].append(f"At most {MAX_CONDITIONS} conditions in a group.")
    for index, condition in enumerate(spec.conditions):
        try:
            compile_condition(
                condition.object,
                condition.operator,
                condition.value,
                spec.scenario if not errors.get("scenario") else None,
            )
        except ConditionError as exc:
            where = "value"
            if condition.object not in OBJECTS or "not an object" in str(exc):
                where = "object"
            elif condition.operator not in Operator.values or "takes these" in str(exc):
                where = "operator"
            errors[f"conditions[{index}].{where}"].append(str(exc))
    if (
        spec.expires_at is not None
        and not _same_minute(spec.expires_at, unchanged_expiry)
        and spec.expires_at <= (now or timezone.now())
    ):
        errors["expires_at"].append("The expiry must be in the future.")
    if spec.is_global:
        if not allow_global:
            errors["is_global"].append(
                "Only a global administrator (or an organisation API key) can make a group "
                "for every account; choose accounts instead."
            )
    else:
        if not spec.account_ids:
            errors["account_ids"].append("Choose at least one account, or make the group global.")
        outside = set(spec.account_ids) - set(scope.account_ids)
        if outside:
            names = (
                Account.objects.filter(id__in=outside).order_by("uid").values_list("uid", flat=True)
            )
            errors["account_ids"].append(
                "Accounts outside your current view: " + (", ".join(names) or "unknown accounts")
            )
    if errors:
        raise GroupValidationError(dict(errors))


def get_group_for_change_or_404(scope: Scope, group_id) -> RuleGroup:
    """A group the scope sees (else 404) and may change (else 403): an
    administrator's, and a global group only a global administrator's."""
    groups = RuleGroup.objects.prefetch_related("conditions", "accounts")
    group = get_for_change_or_404(
        groups,
        scope,
        lambda s, _group: s.may_configure(),
        "Only administrators can change whitelist rules.",
        id=group_id,
    )
    try:
        check_may_change(group, scope, allow_global=scope.may_manage_organisation())
    except WhitelistPermissionError as exc:
        raise PermissionDenied(str(exc)) from None
    return group


def check_may_change(group: RuleGroup, scope: Scope, *, allow_global: bool) -> None:
    """A group may be changed only by someone whose scope covers all it applies to."""
    if group.is_global and not allow_global:
        raise WhitelistPermissionError(
            "This group applies to every account; only a global administrator can change it."
        )
    if not group.is_global:
        outside = {a.id for a in group.accounts.all()} - set(scope.account_ids)
        if outside:
            raise WhitelistPermissionError(
                "This group also applies to accounts outside your current view."
            )


def save_group(
    spec: GroupSpec,
    scope: Scope,
    *,
    allow_global: bool,
    group: RuleGroup | None = None,
    user=None,
) -> RuleGroup:
    """Create or replace a group (its conditions and accounts too), atomically."""
    if group is not None:
        check_may_change(group, scope, allow_global=allow_global)
    validate(
        spec,
        scope,
        allow_global=allow_global,
        unchanged_expiry=group.expires_at if group is not None else None,
    )
    before = _audited(group) if group is not None else None
    with transaction.atomic():
        if group is None:
            group = RuleGroup(
                organisation_id=scope.organisation_id,
                created_by=user if getattr(user, "is_authenticated", False) else None,
            )
        group.name = spec.name.strip()
        group.scenario = spec.scenario
        group.description = spec.description
        group.enabled = spec.enabled
        group.expires_at = spec.expires_at
        group.is_global = spec.is_global
        if group.pk is None:
            group.save()
        else:
            # Never the hit counters: the pipeline raises them meanwhile, and
            # the copy the editor loaded is stale.
            group.save(
                update_fields=[
                    "name",
                    "scenario",
                    "description",
                    "enabled",
                    "expires_at",
                    "is_global",
                    "updated_at",
                ]
            )
        group.accounts.set([] if spec.is_global else spec.account_ids)
        group.conditions.all().delete()
        Condition.objects.bulk_create(
            Condition(
                group=group,
                object=c.object,
                operator=c.operator,
                value=c.value.strip(),
                position=index,
            )
            for index, c in enumerate(spec.conditions)
        )
        _bump_revision(group.organisation_id)
        # The conditions were replaced: drop any prefetched copy the caller holds.
        group._prefetched_objects_cache = {}
        _record(
            group,
            AuditAction.WHITELIST_CREATE if before is None else AuditAction.WHITELIST_UPDATE,
            before,
            _audited(group),
        )
    return group


def set_group_enabled(group: RuleGroup, enabled: bool, scope: Scope, *, allow_global: bool):
    check_may_change(group, scope, allow_global=allow_global)
    with transaction.atomic():
        was = group.enabled
        group.enabled = enabled
        group.save(update_fields=["enabled", "updated_at"])
        _bump_revision(group.organisation_id)
        if was != enabled:
            _record(group, AuditAction.WHITELIST_ENABLE, {"enabled": was}, {"enabled": enabled})
    return group


def delete_group(group: RuleGroup, scope: Scope, *, allow_global: bool) -> None:
    check_may_change(group, scope, allow_global=allow_global)
    with transaction.atomic():
        before = _audited(group)
        organisation_id = group.organisation_id
        _record(group, AuditAction.WHITELIST_DELETE, before, None)
        group.delete()
        _bump_revision(organisation_id)


def _audited(group: RuleGroup) -> dict:
    """What the audit log compares of a group."""
    spec = spec_of(group)
    return {
        "name": spec.name,
        "scenario": spec.scenario,
        "description": spec.description,
        "enabled": spec.enabled,
        "expires_at": spec.expires_at,
        "is_global": spec.is_global,
        "accounts": sorted(spec.account_ids),
        "conditions": [f"{c.object} {c.operator} {c.value}" for c in spec.conditions],
    }


def _record(group: RuleGroup, action: str, before: dict | None, after: dict | None) -> None:
    account_ids = [] if group.is_global else [a.id for a in group.accounts.all()]
    audit.record(
        action,
        target=group,
        target_type="whitelist_group",
        organisation=group.organisation_id,
        # A group of one account is that account's; others the organisation's.
        account=account_ids[0] if len(account_ids) == 1 else None,
        changes=audit.changes_between(before, after),
    )


def spec_of(group: RuleGroup) -> GroupSpec:
    return GroupSpec(
        name=group.name,
        scenario=group.scenario,
        description=group.description,
        enabled=group.enabled,
        expires_at=group.expires_at,
        is_global=group.is_global,
        account_ids=[a.id for a in group.accounts.all()],
        conditions=[ConditionSpec(c.object, c.operator, c.value) for c in group.conditions.all()],
    )


# --- reading -----------------------------------------------------------------------


def groups_in_scope(scope: Scope):
    return (
        RuleGroup.objects.in_scope(scope)
        .prefetch_related("conditions", "accounts")
        .order_by("scenario", "name", "id")
    )


def scenario_summary(scope: Scope) -> list[dict]:
    """Each scenario with its groups in scope (known scenarios first, then the
    other alert types that have groups)."""
    from whitelist.scenarios import SCENARIOS

    counts = Counter()
    enabled = Counter()
    hits = Counter()
    # The id keeps groups with equal values apart under the scope's DISTINCT.
    for _, key, is_enabled, hit_count in groups_in_scope(scope).values_list(
        "id", "scenario", "enabled", "hit_count"
    ):
        counts[key] += 1
        enabled[key] += int(is_enabled)
        hits[key] += hit_count
    keys = list(SCENARIOS) + sorted(set(counts) - set(SCENARIOS))
    return [
        {
            "scenario": scenario(key),
            "groups": counts[key],
            "enabled": enabled[key],
            "hits": hits[key],
        }
        for key in keys
    ]


@dataclass
class Preview:
    matched: int
    examined: int
    # True when more alerts of the window exist than the preview examines.
    capped: bool
    sample: list = field(default_factory=list)
    error: str = ""


def preview(spec: GroupSpec, scope: Scope, now=None) -> Preview:
    """How many alerts of the last 7 days in scope the group would have matched.

    Bounded: at most ``PREVIEW_MAX_ALERTS`` of the latest alerts of the
    scenario are examined, and the result says so when there were more.
    """
    now = now or timezone.now()
    conditions = []
    try:
        for c in spec.conditions:
            conditions.append(compile_condition(c.object, c.operator, c.value, spec.scenario))
    except ConditionError as exc:
        return Preview(0, 0, False, error=str(exc))
    if not conditions:
        return Preview(0, 0, False, error="Add a condition to see what it would match.")
    group = CompiledGroup(
        id=0,
        name=spec.name,
        scenario=spec.scenario,
        enabled=True,
        expires_at=None,
        account_ids=None if spec.is_global else frozenset(spec.account_ids),
        conditions=conditions,
    )
    alerts = Alert.objects.in_scope(scope).filter(
        type=spec.scenario, occurred_at__gte=now - PREVIEW_WINDOW, occurred_at__lte=now
    )
    if not spec.is_global:
        alerts = alerts.filter(account_id__in=spec.account_ids)
    ids = list(
        alerts.order_by("-occurred_at", "-id").values_list("id", flat=True)[
            : PREVIEW_MAX_ALERTS + 1
        ]
    )
    capped = len(ids) > PREVIEW_MAX_ALERTS
    ids = ids[:PREVIEW_MAX_ALERTS]
    matched = []
    chunk = 2_000
    for start in range(0, len(ids), chunk):
        part = ids[start : start + chunk]
        facts = load_alert_facts(part)
        ports = _ports_of(part) if group.needs_raw else {}
        matched += [a for a, _ in facts if group.matches(a, ports.get(a.id, ()))]
    matched.sort(key=lambda a: (a.occurred_at, a.id), reverse=True)
    return Preview(
        matched=len(matched),
        examined=len(ids),
        capped=capped,
        sample=[
            {"id": a.id, "name": a.name, "occurred_at": a.occurred_at}
            for a in matched[:PREVIEW_SAMPLE]
        ],
    )


# --- drafts from alerts ("Add to Whitelist" on an event) ------------------------------

DRAFT_MAX_LIST = 20


def draft_from_alerts(
    facts: list[AlertFacts], *, name: str, description: str, account_id: int
) -> GroupSpec:
    """A group pre-filled from some alerts: the scenario most of them share
    and, for the scenario's key objects, the values they carry. Limited to
    ``account_id``, the account the alerts came from."""
    if not facts:
        return GroupSpec(name=name[:200], scenario="", conditions=[])
    scenario_key = Counter(a.type for a in facts).most_common(1)[0][0]
    chosen = scenario(scenario_key)
    of_scenario = [a for a in facts if a.type == scenario_key]
    conditions = []
    for key in chosen.draft_objects:
        values = sorted({v for a in of_scenario for v in OBJECTS[key].read(a)})
        # A value a condition cannot hold: too long for one, or, in a list,
        # spanning lines (a list takes one entry per line).
        if any(len(v) > MAX_VALUE_LENGTH for v in values) or (
            len(values) > 1 and any("\n" in v or "\r" in v for v in values)
        ):
            continue
        if len(values) == 1:
            conditions.append(ConditionSpec(key, Operator.EQUALS, values[0]))
        elif 1 < len(values) <= DRAFT_MAX_LIST:
            conditions.append(ConditionSpec(key, Operator.IN_LIST, "\n".join(values)))
    if not conditions:
        conditions.append(ConditionSpec("alert_name", Operator.EQUALS, of_scenario[0].name))
    return GroupSpec(
        name=name[:200],
        scenario=scenario_key,
        description=description,
        conditions=conditions,
        is_global=False,
        account_ids=[account_id],
    )


def object_values(facts: list[AlertFacts]) -> dict[str, list[str]]:
    """Every object's values among some alerts: suggestions for the editor."""
    values: dict[str, set[str]] = defaultdict(set)
    for alert in facts:
        for key, obj in OBJECTS.items():
            values[key].update(obj.read(alert))
    return {OBJECTS[key].label: sorted(v)[:50] for key, v in values.items() if v}


def accounts_for_editor(scope: Scope):
    return Account.objects.in_scope(scope).order_by("name")
