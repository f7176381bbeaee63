"""Handling: what an event's entities can be handled with, handling an event
(the same ``handle_event`` as the Handle panel: same policies, tasks,
notifications and refusals), and the handling policies that resulted."""

import json
import math
from collections import Counter

from django.core.exceptions import PermissionDenied
from django.db.models import Count, F, Max, Min, Q

from alerts.models import Entity
from cloudsiem.operations.entities import digests
from cloudsiem.operations.events import date_range, get_event, remarks_of
from cloudsiem.protocol import (
    EVENT_STATUS_CODES,
    EVENT_STATUS_OF_CODE,
    RISK_OF_LEVEL,
    Call,
    account_number,
    epoch_ms,
    forbidden,
    invalid,
    missing,
    operation,
    page_info,
    paged,
    time_text,
)
from disposal.errors import HandlingError
from disposal.handling import (
    ActionChoice,
    HandlingRequest,
    NotificationChoice,
    handle_event,
    handling_context,
)
from disposal.models import (
    CloudService,
    DeliveryStatus,
    HandlingPolicy,
    HandlingTask,
    Notification,
    PolicySource,
    TaskStatus,
)
from disposal.queries import filtered_policies, policies_in_scope
from events import feed
from events.entities import entities_of_events
from secops.models import Account

# ReceiverInfo channels: the cloud's mail, and webhooks.
CHANNELS = {"mail": "email", "email": "email", "webhook": "webhook"}
# ListDisposeStrategy Status: how far the policy's tasks have come.
IN_PROGRESS, SUCCEEDED, FAILED, UNDONE = 1, 2, 3, 4
PLAYBOOK_TYPES = {
    PolicySource.EVENT: "system",
    PolicySource.ALERT: "system",
    PolicySource.PLAYBOOK_RUN: "custom",
}


# --- what can be done ----------------------------------------------------------------


def _scenario_row(scenario, recommended: bool) -> dict:
    return {
        "Name": scenario.key,
        "Uuid": scenario.key,
        "OpCode": scenario.key,
        "DisplayName": scenario.name,
        "Description": scenario.description,
        "OpLevel": "1" if recommended else "0",
        "Available": "true",
        "UnAvailableCode": "",
        "DisposeStatus": "",
        "ErrorMessage": "",
        "WafPlaybook": scenario.cloud_service == CloudService.WAF,
        "ParamConfig": (
            [{"name": "validityDays", "default": scenario.default_validity_days}]
            if scenario.takes_validity
            else []
        ),
        "TaskConfig": json.dumps(
            {
                "cloudService": scenario.cloud_service,
                "operation": scenario.operation,
                "perHost": scenario.per_host,
            }
        ),
    }


@operation("DescribeDisposeAndPlaybook")
def describe_dispose_and_playbook(call: Call):
    event = get_event(call)
    params = call.params
    number, size = params.page()
    context = handling_context(call.scope, event)
    counts = {
        item.entity.digest: item.alert_count
        for item in entities_of_events(call.scope, [event.id])[event.id]
    }
    entity_type = params.text("EntityType", max_length=16)
    wanted = set(digests(call, "EntityUuidList"))
    if params.text("EntityUuid", max_length=64):
        wanted.add(params.text("EntityUuid", max_length=64))
    listed = [
        e
        for e in context.entities
        if (not entity_type or e.entity_type == entity_type) and (not wanted or e.digest in wanted)
    ]
    ids = dict(
        Entity.objects.filter(
            account_id=event.account_id, digest__in=[e.digest for e in listed]
        ).values_list("digest", "id")
    )
    rows = []
    for entity in listed[(number - 1) * size : number * size]:
        recommended = entity.recommended.key if entity.recommended else None
        rows.append(
            {
                "EntityId": ids.get(entity.digest, 0),
                "EntityUuid": entity.digest,
                "EntityType": entity.entity_type,
                "Dispose": entity.value,
                "AlertNum": counts.get(entity.digest, 0),
                "EntityInfo": {
                    "value": entity.value,
                    "roles": list(entity.roles),
                    "malicious": entity.malicious,
                    "maliciousBecause": entity.malicious_because,
                    "hosts": [h.name or h.uuid for h in entity.hosts],
                    "processes": entity.processes,
                },
                "OpcodeSet": [recommended] if recommended else [],
                "OpcodeMap": {
                    s.key: "1" if s.key == recommended else "0" for s in entity.scenarios
                },
                "PlaybookList": [_scenario_row(s, s.key == recommended) for s in entity.scenarios],
                # The accounts of the scope that saw it: where it can be handled.
                "Scope": [a.uid for a in entity.accounts],
            }
        )
    return {
        "Available": bool(listed),
        "PageInfo": page_info(number, size, len(listed)),
        "ResponseData": rows,
    }


@operation("DescribeDisposeStrategyPlaybook")
def describe_dispose_strategy_playbook(call: Call):
    start, end = date_range(call.params)
    used = (
        policies_in_scope(call.scope)
        .filter(created_at__gte=start, created_at__lte=end)
        .values_list("scenario__key", flat=True)
        .distinct()
        .order_by("scenario__key")
    )
    return [{"PlaybookName": key, "PlaybookUuid": key} for key in used]


# --- handling an event --------------------------------------------------------------


def _json_field(call: Call, name: str, kind: type):
    value = call.params.json(name)
    if value is not None and not isinstance(value, kind):
        raise invalid(name, "must be a JSON " + ("array." if kind is list else "object."))
    return value


def _actions(call: Call, event) -> list[ActionChoice]:
    """EventDispose items: ``playbookUuid`` (or ``playbookName``, a scenario key),
    the entity by ``entityUuid``, ``entityId`` or ``entityValue``, the accounts
    (``scope``: uids; default the event's account) and ``validityDays`` (or
    ``startTime``/``endTime`` in milliseconds)."""
    items = _json_field(call, "EventDispose", list) or []
    if not items:
        return []
    uids = dict(Account.objects.in_scope(call.scope).values_list("uid", "id"))
    entities = {e.digest: e for e in handling_context(call.scope, event).entities}
    by_id = dict(
        Entity.objects.in_scope(call.scope)
        .filter(digest__in=list(entities))
        .values_list("id", "digest")
    )
    actions = []
    for index, item in enumerate(items):
        where = f"EventDispose[{index}]"
        if not isinstance(item, dict):
            raise invalid(where, "must be an object.")
        scenario = item.get("playbookUuid") or item.get("playbookName")
        if not isinstance(scenario, str) or not scenario:
            raise invalid(
                f"{where}.playbookUuid", "name the scenario (DescribeDisposeAndPlaybook)."
            )
        entity = entities.get(str(item.get("entityUuid") or ""))
        if entity is None and str(item.get("entityId") or "").isdigit():
            entity = entities.get(by_id.get(int(item["entityId"]), ""))
        if entity is None and item.get("entityValue"):
            entity = next((e for e in entities.values() if e.value == item["entityValue"]), None)
        if entity is None:
            raise invalid(f"{where}.entityId", "no IP, file or process of this event.")
        scope = item.get("scope") or [event.account.uid]
        if not isinstance(scope, list):
            raise invalid(f"{where}.scope", "a list of account uids.")
        account_ids = []
        for uid in scope:
            uid = str(uid.get("uid") if isinstance(uid, dict) else uid)
            if uid not in uids:
                raise invalid(f"{where}.scope", f"no account {uid!r} in your view.")
            account_ids.append(uids[uid])
        actions.append(
            ActionChoice(
                entity.entity_type,
                entity.value,
                scenario,
                tuple(account_ids),
                _validity(where, item),
            )
        )
    return actions


def _validity(where: str, item: dict) -> int | None:
    days = item.get("validityDays")
    if (
        days is None
        and isinstance(item.get("startTime"), int)
        and isinstance(item.get("endTime"), int)
    ):
        days = math.ceil((item["endTime"] - item["startTime"]) / 86_400_000)
    if days is None:
        return None
    if not isinstance(days, int) or isinstance(days, bool):
        raise invalid(f"{where}.validityDays", "a whole number of days.")
    return days


def _notification(call: Call) -> NotificationChoice | None:
    info = _json_field(call, "ReceiverInfo", dict)
    if not info:
        return None
    channel = CHANNELS.get(str(info.get("channel", "mail")).lower())
    if channel is None:
        raise invalid("ReceiverInfo.channel", "mail or webhook (text messages are not sent).")
    receiver = info.get("receiver") or ""
    recipients = receiver if isinstance(receiver, list) else str(receiver).split(",")
    return NotificationChoice(
        (channel,),
        tuple(str(r).strip() for r in recipients if str(r).strip()),
        str(info.get("messageTitle") or ""),
    )


# HandlingError fields -> the request's field names.
def _field(name: str) -> str:
    if name == "status":
        return "Status"
    if name.startswith("actions"):
        return "EventDispose" + name[len("actions") :]
    if name.startswith("notification."):
        return "ReceiverInfo." + {"channels": "channel", "recipients": "receiver"}.get(
            name.split(".", 1)[1], "messageTitle"
        )
    return name


@operation("PostEventDisposeAndWhiteruleList")
def post_event_dispose(call: Call):
    event = get_event(call)
    params = call.params
    level = params.text("ThreatLevel", max_length=16)
    if level is not None and RISK_OF_LEVEL.get(level) != event.risk:
        raise invalid("ThreatLevel", "the threat level of an event cannot be changed here.")
    actions = _actions(call, event)
    code = params.integer("Status", maximum=100)
    if code is None and not actions:
        raise missing("Status")
    if code is not None and code not in EVENT_STATUS_OF_CODE:
        raise invalid("Status", "0 (unhandled), 1 (handling) or 10 (handled).")
    status = EVENT_STATUS_OF_CODE[code] if code is not None else "handling"
    request = HandlingRequest(
        status=status,
        description=params.text("Remark", max_length=10_000) or "",
        actions=tuple(actions),
        notification=_notification(call),
    )
    try:
        result = handle_event(call.scope, event, request, cause=feed.Cause.by_user(call.user))
    except HandlingError as exc:
        raise invalid(_field(exc.field), exc.message) from None
    except PermissionDenied as exc:
        raise forbidden(str(exc)) from None
    return str(result.event.id)


@operation("DescribeEventDispose")
def describe_event_dispose(call: Call):
    event = get_event(call)
    policies = (
        policies_in_scope(call.scope)
        .filter(source_event=event)
        .select_related("scenario")
        .prefetch_related("scope_accounts", "tasks")
        .order_by("id")
    )
    notification = Notification.objects.filter(event=event).order_by("-id").first()
    receiver = {}
    if notification is not None:
        receiver = {
            "Id": notification.id,
            "IncidentUuid": str(event.id),
            "Channel": "mail" if notification.channel == "email" else notification.channel,
            "Receiver": ",".join(notification.recipients),
            "MessageTitle": notification.title,
            "Status": 1 if notification.status == DeliveryStatus.SENT else 0,
            "GmtCreate": time_text(notification.created_at),
            "GmtModified": time_text(notification.sent_at or notification.created_at),
        }
    return {
        "EventDispose": [_policy_summary(call, p) for p in policies],
        "ReceiverInfo": receiver,
        "Remark": remarks_of([event.id]).get(event.id, ""),
        "Status": EVENT_STATUS_CODES[event.status],
    }


def _uids(call: Call) -> dict[int, str]:
    return dict(Account.objects.in_scope(call.scope).values_list("id", "uid"))


def _policy_summary(call: Call, policy: HandlingPolicy, uids=None) -> dict:
    uids = uids if uids is not None else _uids(call)
    return {
        "playbookUuid": policy.scenario.key,
        "playbookName": policy.scenario.key,
        "entityType": policy.entity_type,
        "entityValue": policy.entity_value,
        "entityUuid": policy.entity_digest,
        # A caller sees the uids of the accounts in their own view only.
        "scope": sorted(uids[a.id] for a in policy.scope_accounts.all() if a.id in uids),
        "validityDays": policy.validity_days,
        "tasks": dict(Counter(t.status for t in policy.tasks.all())),
    }


# --- the policies ------------------------------------------------------------------


_IN_PROGRESS_TASKS = {TaskStatus.PENDING, TaskStatus.RUNNING, TaskStatus.UNBLOCKING}
_FAILED_TASKS = {TaskStatus.FAILED, TaskStatus.UNBLOCK_FAILED}
_UNDONE_TASKS = {TaskStatus.UNBLOCKED, TaskStatus.EXPIRED}


def _policy_status(statuses: set[str]) -> int:
    """How far a policy's tasks have come, as the cloud API's Status reads it."""
    if statuses & _IN_PROGRESS_TASKS:
        return IN_PROGRESS
    if statuses & _FAILED_TASKS:
        return FAILED
    if statuses and statuses <= _UNDONE_TASKS:
        return UNDONE
    return SUCCEEDED


def _with_policy_status(policies, status: int):
    """The policies whose status (``_policy_status``) is ``status``, filtered
    in the database from counts of their tasks by state."""

    def tasks_in(states) -> Count:
        return Count("tasks", filter=Q(tasks__status__in=states))

    policies = policies.annotate(
        n_in_progress=tasks_in(_IN_PROGRESS_TASKS),
        n_failed=tasks_in(_FAILED_TASKS),
        n_undone=tasks_in(_UNDONE_TASKS),
        n_tasks=Count("tasks"),
    )
    all_undone = Q(n_tasks__gt=0, n_undone=F("n_tasks"))
    if status == IN_PROGRESS:
        return policies.filter(n_in_progress__gt=0)
    if status == FAILED:
        return policies.filter(n_in_progress=0, n_failed__gt=0)
    if status == UNDONE:
        return policies.filter(all_undone, n_in_progress=0, n_failed=0)
    if status == SUCCEEDED:
        return policies.filter(n_in_progress=0, n_failed=0).exclude(all_undone)
    return policies.none()


# GroupBy of ListDisposeStrategy: the policy field each group shares, and its title.
_GROUPS = {
    "playbook": ("scenario__key", "scenario__name"),
    "entity_type": ("entity_type", "entity_type"),
    "incident": ("source_event_id", "source_event__name"),
}


def _groups(policies, group_by: str) -> list[dict]:
    """The policies grouped by ``group_by``, with the counts of each group's
    tasks by outcome (the cloud console's grouped view); the 100 groups with
    the newest policies."""
    key, title = _GROUPS[group_by]
    rows = (
        policies.order_by()
        .values(key, title)
        .annotate(
            total=Count("id", distinct=True),
            running=Count("tasks", filter=Q(tasks__status__in=_IN_PROGRESS_TASKS)),
            failed=Count("tasks", filter=Q(tasks__status__in=_FAILED_TASKS)),
            succeeded=Count("tasks", filter=Q(tasks__status=TaskStatus.SUCCEEDED)),
            first=Min("created_at"),
            last=Max("created_at"),
            modified=Max("updated_at"),
        )
        .order_by("-last")[:100]
    )
    return [
        {
            "GroupBy": group_by,
            "GroupKey": str(row[key]),
            "GroupName": str(row[key]),
            "GroupTitle": str(row[title] or row[key]),
            "GroupMeta": {"GroupInfo": {}},
            "TotalCount": row["total"],
            "RunningCount": row["running"],
            "FailedCount": row["failed"],
            "SuccessCount": row["succeeded"],
            "FirstOccurrenceTime": epoch_ms(row["first"]),
            "LastOccurrenceTime": epoch_ms(row["last"]),
            "LatestModifiedTime": epoch_ms(row["modified"]),
        }
        for row in rows
    ]


@operation("ListDisposeStrategy")
def list_dispose_strategy(call: Call):
    params = call.params
    number, size = params.page()
    if "CurrentPage" not in params and "MaxResults" in params:
        size = params.integer("MaxResults", minimum=1, maximum=100)
    start, end = date_range(params)
    policies = filtered_policies(call.scope, {}).filter(created_at__gte=start, created_at__lte=end)
    for field, lookup in (
        ("EntityType", "entity_type"),
        ("PlaybookName", "scenario__key"),
        ("PlaybookUuid", "scenario__key"),
        ("EntityIdentity", "entity_value__icontains"),
    ):
        value = params.text(field, max_length=1000)
        if value:
            policies = policies.filter(**{lookup: value})
    if "IncidentUuid" in params:
        policies = policies.filter(source_event=get_event(call))
    wanted = digests(call, "EntityUuidList")
    if wanted:
        policies = policies.filter(entity_digest__in=wanted)
    # A subquery, not a join: the task counts annotated below must count
    # every task of a policy, not only the active ones.
    in_force = Q(
        pk__in=HandlingTask.objects.filter(status__in=TaskStatus.active()).values("policy_id")
    )
    effective = params.integer("EffectiveStatus", maximum=1)
    if effective == 1:
        policies = policies.filter(in_force)
    elif effective == 0:
        policies = policies.exclude(in_force)
    order = params.text("OrderField", max_length=20) or "GmtCreate"
    if order not in ("GmtCreate", "GmtModified"):
        raise invalid("OrderField", "GmtCreate or GmtModified.")
    direction = "" if (params.text("Order", max_length=4) or "desc").lower() == "asc" else "-"
    column = "created_at" if order == "GmtCreate" else "updated_at"
    policies = (
        policies.order_by(direction + column, direction + "id")
        .select_related("scenario", "source_event", "source_alert", "account")
        .prefetch_related("scope_accounts", "tasks")
    )
    status = params.integer("Status", maximum=10)
    if status is not None:
        policies = _with_policy_status(policies, status)
    group_by = params.text("GroupBy", max_length=20)
    if group_by and group_by not in _GROUPS:
        raise invalid("GroupBy", "one of " + ", ".join(_GROUPS) + ".")
    group_key = params.text("GroupKey", max_length=200)
    if group_key is not None:
        if not group_by:
            raise missing("GroupBy")
        policies = policies.filter(**{_GROUPS[group_by][0]: group_key})
    rows, total = paged(policies, number, size)
    uids = _uids(call)
    return {
        "PageInfo": page_info(number, size, total),
        "ResponseData": [_strategy_row(call, p, uids) for p in rows],
        "Groups": _groups(policies, group_by) if group_by else [],
    }


def _strategy_row(call: Call, policy: HandlingPolicy, uids: dict) -> dict:
    tasks = list(policy.tasks.all())
    statuses = {t.status for t in tasks}
    finished = max((t.finished_at for t in tasks if t.finished_at), default=None)
    errors = [t.error for t in tasks if t.error]
    summary = _policy_summary(call, policy, uids)
    event, alert = policy.source_event, policy.source_alert
    return {
        "Id": policy.id,
        "EntityId": 0,
        "EntityType": policy.entity_type,
        "Entity": [
            {"type": policy.entity_type, "value": policy.entity_value, "uuid": policy.entity_digest}
        ],
        "PlaybookName": policy.scenario.key,
        "PlaybookUuid": policy.scenario.key,
        "PlaybookType": PLAYBOOK_TYPES.get(policy.source, "system"),
        "IncidentUuid": str(event.id) if event else "",
        "IncidentName": event.name if event else "",
        "AlertUuid": alert.source_uuid if alert else "",
        "AlertName": alert.name if alert else "",
        "Aliuid": account_number(policy.account.uid),
        "SubAliuid": account_number(policy.account.uid),
        "Status": _policy_status(statuses),
        "EffectiveStatus": 1 if statuses & TaskStatus.active() else 0,
        "ErrorCode": "",
        "ErrorMessage": errors[0] if errors else "",
        "FinishTime": time_text(finished),
        "GmtCreate": time_text(policy.created_at),
        "GmtModified": time_text(policy.updated_at),
        "Scope": summary["scope"],
        "TaskParam": json.dumps(
            {
                "validityDays": policy.validity_days,
                "scope": summary["scope"],
                "tasks": summary["tasks"],
            }
        ),
        "SophonTaskId": "",
        "TaskUrl": "",
    }
