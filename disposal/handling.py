"""Handling a security event by hand (the Handle panel and the API's handle call).

``handling_context`` reads what the panel shows: the event's IPs, files and
processes with the hosts and accounts they were seen in, the scenarios for each,
and the recommendation "Use Recommended Handling Policy" fills in.
``handle_event`` applies the analyst's choices in one transaction: the status,
one policy per entity and scenario, one task per policy and account (and host),
the notifications, and the change-feed row; the work is queued on commit.
"""

import copy
from collections import defaultdict
from dataclasses import dataclass, field

from django.core.exceptions import PermissionDenied
from django.db import transaction

from alerts.models import AlertEntity, Asset, Entity, EntityRole, EntityType
from disposal import intel, notifications, services
from disposal.errors import HandlingError
from disposal.models import HandlingPolicy, HandlingTask, PolicySource, Scenario
from disposal.scenarios import HANDLED_TYPES, MAX_VALIDITY_DAYS, RECOMMENDED, scenarios_for
from events import feed
from events.entities import entities_of_events
from events.models import EventStatus, SecurityEvent
from events.services import EventStatusError, change_event_status, record_event_change
from secops.models import Account, AuditAction
from secops.scope import Scope

# The statuses an analyst may choose; Failed is set only by failing tasks.
CHOOSABLE_STATUSES = (EventStatus.UNHANDLED, EventStatus.HANDLING, EventStatus.HANDLED)


# --- what the panel shows -------------------------------------------------------


@dataclass
class HandleableEntity:
    entity_type: str
    value: str
    digest: str
    roles: tuple[str, ...]
    malicious: bool
    # Why it is malicious: "alert" and/or the threat-intelligence sources.
    malicious_because: list[str]
    hosts: list[Asset]
    # Processes that named it (for IPs and files), as seen in the alerts.
    processes: list[str]
    # Accounts of the scope that saw this entity (the policy's possible scope).
    accounts: list[Account]
    recommended: Scenario | None = None
    scenarios: list[Scenario] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.entity_type}:{self.digest}"


@dataclass
class HandlingContext:
    event: SecurityEvent
    tabs: dict[str, list[HandleableEntity]]

    @property
    def entities(self) -> list[HandleableEntity]:
        return [entity for listed in self.tabs.values() for entity in listed]

    def find(self, entity_type: str, value: str) -> HandleableEntity | None:
        for entity in self.tabs.get(entity_type, []):
            if entity.value == value:
                return entity
        return None


def handling_context(scope: Scope, event: SecurityEvent) -> HandlingContext:
    """The event's IPs, files and processes, as the Handle panel lists them."""
    listed = [
        item
        for item in entities_of_events(scope, [event.id])[event.id]
        if item.entity.type in HANDLED_TYPES
    ]
    entity_ids = [item.entity.id for item in listed]
    digests = {(item.entity.type, item.entity.digest) for item in listed}

    hosts: dict[int, dict[int, Asset]] = defaultdict(dict)
    processes: dict[int, set[str]] = defaultdict(set)
    links = (
        AlertEntity.objects.filter(entity_id__in=entity_ids, alert__event_links__event=event)
        .select_related("alert__asset")
        .only("entity_id", "attributes", "alert__asset")
    )
    for link in links:
        if link.alert.asset is not None:
            hosts[link.entity_id][link.alert.asset.id] = link.alert.asset
        process = (link.attributes or {}).get("process") or (link.attributes or {}).get(
            "process_path"
        )
        if process:
            processes[link.entity_id].add(str(process))

    seen_in: dict[tuple[str, str], set[int]] = defaultdict(set)
    for entity_type, digest, account_id in (
        Entity.objects.in_scope(scope)
        .filter(digest__in={d for _, d in digests})
        .values_list("type", "digest", "account_id")
    ):
        if (entity_type, digest) in digests:
            seen_in[entity_type, digest].add(account_id)
    accounts = {a.id: a for a in Account.objects.filter(id__in=scope.account_ids)}
    # A file named by its path is also known by the hashes among its attributes:
    # an indicator of one of them makes the file malicious too.
    hash_digests = {
        item.entity.digest: set(intel.file_hash_digests([item.entity.attributes]))
        for item in listed
        if item.entity.type == "file"
    }
    by_intel = intel.malicious_sources(
        scope, digests | {("file", d) for found in hash_digests.values() for d in found}
    )
    scenarios = defaultdict(list)
    for scenario in scenarios_for(scope):
        scenarios[scenario.entity_type].append(scenario)

    tabs: dict[str, list[HandleableEntity]] = {t: [] for t in HANDLED_TYPES}
    for item in listed:
        entity = item.entity
        reasons = (["alert"] if entity.malicious else []) + by_intel.get(
            (entity.type, entity.digest), []
        )
        for digest in sorted(hash_digests.get(entity.digest, ())):
            if digest != entity.digest:
                reasons += [s for s in by_intel.get(("file", digest), []) if s not in reasons]
        handleable = HandleableEntity(
            entity_type=entity.type,
            value=entity.value,
            digest=entity.digest,
            roles=item.roles,
            malicious=bool(reasons),
            malicious_because=reasons,
            hosts=sorted(hosts[entity.id].values(), key=lambda a: a.name or a.uuid),
            processes=sorted(processes[entity.id]),
            accounts=sorted(
                (accounts[a] for a in seen_in[entity.type, entity.digest] if a in accounts),
                key=lambda a: (a.id != event.account_id, a.name),
            ),
            scenarios=scenarios[entity.type],
        )
        handleable.recommended = _recommendation(handleable)
        tabs[entity.type].append(handleable)
    return HandlingContext(event, tabs)


def _recommendation(entity: HandleableEntity) -> Scenario | None:
    """What "Use Recommended Handling Policy" chooses: a malicious attacker IP is
    blocked inbound on Cloud Firewall, a malicious file quarantined, a malicious
    process killed. Nothing for what no alert or indicator calls malicious."""
    if not entity.malicious:
        return None
    if entity.entity_type == "ip" and EntityRole.ATTACKER not in entity.roles:
        return None
    key = RECOMMENDED.get(entity.entity_type)
    return next((s for s in entity.scenarios if s.key == key), None)


# --- what the analyst asks for --------------------------------------------------


@dataclass(frozen=True)
class ActionChoice:
    """Handle one entity in one scenario over some accounts."""

    entity_type: str
    value: str
    scenario_key: str
    account_ids: tuple[int, ...]
    validity_days: int | None = None


@dataclass(frozen=True)
class NotificationChoice:
    channels: tuple[str, ...]
    recipients: tuple[str, ...]
    title: str


@dataclass(frozen=True)
class HandlingRequest:
    status: str
    description: str = ""
    actions: tuple[ActionChoice, ...] = ()
    notification: NotificationChoice | None = None


# --- the Message Preview ------------------------------------------------------------


@dataclass
class PlannedPolicy:
    """A policy as the Message Preview shows it before it exists: what the
    notification template reads of a ``HandlingPolicy``."""

    scenario: Scenario
    entity_type: str
    entity_value: str
    validity_days: int | None
    accounts: list

    def get_entity_type_display(self) -> str:
        return EntityType(self.entity_type).label

    @property
    def scope_accounts(self):
        return _PlannedAccounts(self.accounts)


class _PlannedAccounts:
    def __init__(self, accounts):
        self._accounts = list(accounts)

    def all(self):
        return list(self._accounts)

    def count(self) -> int:
        return len(self._accounts)


def planned_policies(context: HandlingContext, request: HandlingRequest) -> list[PlannedPolicy]:
    """The policies handling the event with ``request`` would create, as far as
    its choices are complete (an entity, scenario or account that is not
    offered is left out: handling would refuse it)."""
    planned = []
    for action in request.actions:
        entity = context.find(action.entity_type, action.value)
        if entity is None:
            continue
        scenario = next((s for s in entity.scenarios if s.key == action.scenario_key), None)
        accounts = [a for a in entity.accounts if a.id in action.account_ids]
        if scenario is None or not accounts:
            continue
        days = None
        if scenario.takes_validity:
            days = action.validity_days or scenario.default_validity_days
        planned.append(PlannedPolicy(scenario, entity.entity_type, entity.value, days, accounts))
    return planned


def planned_event(event: SecurityEvent, request: HandlingRequest) -> SecurityEvent:
    """The event as it will be once handled with ``request`` (a copy; nothing is saved)."""
    event = copy.copy(event)
    if request.actions:
        event.status = EventStatus.HANDLING
    elif request.status in CHOOSABLE_STATUSES:
        event.status = request.status
    return event


def preview_message(context: HandlingContext, request: HandlingRequest) -> str:
    """The notification handling ``context.event`` with ``request`` would send,
    rendered by the function that renders the sent one."""
    return notifications.render_message(
        planned_event(context.event, request), request, planned_policies(context, request)
    )


@dataclass
class HandlingResult:
    event: SecurityEvent
    policies: list[HandlingPolicy]
    tasks: list[HandlingTask]
    notifications: list


def handle_event(
    scope: Scope, event: SecurityEvent, request: HandlingRequest, *, cause: feed.Cause
) -> HandlingResult:
    """Apply a handling request to ``event`` (fetched within ``scope``).

    Raises ``HandlingError`` (naming the field) for anything the rules do not
    allow and PermissionDenied when the scope may not handle the event or an
    account chosen for a policy; nothing is written then.
    """
    if not scope.may_handle([event.account_id]):
        raise PermissionDenied("Only analysts and administrators of the account handle events.")
    if request.status not in CHOOSABLE_STATUSES:
        raise HandlingError(
            "status",
            "Failed is set only when a handling task fails."
            if request.status == EventStatus.FAILED
            else f"Choose one of Unhandled, Handling or Handled, not {request.status!r}.",
        )
    if request.actions and request.status == EventStatus.UNHANDLED:
        raise HandlingError(
            "status", "An event with handling actions is Handling until they finish."
        )
    context = handling_context(scope, event)
    planned = [_plan(scope, context, index, action) for index, action in enumerate(request.actions)]
    seen = set()
    for index, (entity, scenario, _, _) in enumerate(planned):
        if (entity.key, scenario.key) in seen:
            raise HandlingError(
                f"actions[{index}]", f"{entity.value} is already handled in {scenario.name}."
            )
        seen.add((entity.key, scenario.key))
    if request.notification is not None:
        notifications.validate(request.notification)

    with transaction.atomic():
        # Actions leave the event Handling; their tasks make it Handled or Failed.
        status = EventStatus.HANDLING if planned else request.status
        previous = event.status
        try:
            event = change_event_status(
                event, status, cause=cause, note=request.description, audited=False
            )
        except EventStatusError as exc:
            raise HandlingError("status", str(exc)) from None
        policies, tasks = [], []
        for entity, scenario, accounts, validity in planned:
            policy, policy_tasks = services.create_policy(
                entity_type=entity.entity_type,
                value=entity.value,
                digest=entity.digest,
                scenario=scenario,
                accounts=accounts,
                validity_days=validity,
                owner_account_id=event.account_id,
                region=event.region,
                source=PolicySource.EVENT,
                source_event=event,
                cause=cause,
            )
            policies.append(policy)
            tasks.extend(policy_tasks)
        sent = (
            notifications.create(event, request.notification, request, policies, cause=cause)
            if request.notification is not None
            else []
        )
        record_event_change(
            AuditAction.HANDLING_HANDLE,
            event,
            cause,
            {"status": [previous, event.status]} if previous != event.status else {},
            details={
                "note": request.description,
                "actions": [
                    {
                        "entity": f"{entity.entity_type} {entity.value}",
                        "scenario": scenario.key,
                        "accounts": [a.uid for a in accounts],
                        "validity_days": validity,
                    }
                    for entity, scenario, accounts, validity in planned
                ],
                "policies": [p.pk for p in policies],
                "notification": list(request.notification.channels)
                if request.notification is not None
                else [],
            },
        )
    return HandlingResult(event, policies, tasks, sent)


def _plan(scope: Scope, context: HandlingContext, index: int, action: ActionChoice):
    where = f"actions[{index}]"
    entity = context.find(action.entity_type, action.value)
    if entity is None:
        raise HandlingError(
            f"{where}.value", f"{action.value!r} is not a {action.entity_type} of this event."
        )
    scenario = next((s for s in entity.scenarios if s.key == action.scenario_key), None)
    if scenario is None:
        raise HandlingError(
            f"{where}.scenario",
            f"No scenario {action.scenario_key!r} handles a {action.entity_type}.",
        )
    if not action.account_ids:
        raise HandlingError(f"{where}.scope", "Choose at least one account for the scope.")
    possible = {a.id: a for a in entity.accounts}
    unknown = [a for a in action.account_ids if a not in possible]
    if unknown:
        raise HandlingError(
            f"{where}.scope",
            f"{entity.value} was not seen in account(s) {', '.join(map(str, unknown))} "
            "of your view.",
        )
    if not scope.may_handle(action.account_ids):
        raise PermissionDenied("You may handle events only in accounts where you are an analyst.")
    validity = None
    if scenario.takes_validity:
        validity = action.validity_days or scenario.default_validity_days
        if not 1 <= validity <= MAX_VALIDITY_DAYS:
            raise HandlingError(
                f"{where}.validity_days",
                f"The action validity period is 1 to {MAX_VALIDITY_DAYS} days.",
            )
    elif action.validity_days:
        raise HandlingError(
            f"{where}.validity_days", f"{scenario.name} has no action validity period."
        )
    accounts = [possible[a] for a in dict.fromkeys(action.account_ids)]
    return entity, scenario, accounts, validity
