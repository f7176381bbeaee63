"""Reading handling policies and tasks for the Disposal Center, and what the
simulated cloud holds for its page.

Everything starts from ``in_scope``: policies belong to the account of what
created them, tasks to the account they act in. Policies also follow the
region selector (a policy has the region of its event); tasks follow only
their account.
"""

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from disposal import services
from disposal.models import (
    ConnectorKind,
    HandlingPolicy,
    HandlingTask,
    Operation,
    SimulatedAction,
    SimulatedFailure,
    TaskStatus,
)
from secops.models import Account
from secops.scope import Scope

PER_PAGE = 20

# How a task of a block scenario reads: "Blocked" says more than "Succeeded".
BLOCK_WORDING = {
    TaskStatus.PENDING: "Blocking",
    TaskStatus.RUNNING: "Blocking",
    TaskStatus.SUCCEEDED: "Blocked",
    TaskStatus.FAILED: "Block failed",
    TaskStatus.UNBLOCKING: "Unblocking",
    TaskStatus.UNBLOCKED: "Unblocked",
    TaskStatus.UNBLOCK_FAILED: "Unblock failed",
    TaskStatus.EXPIRED: "Expired",
}

# The colour family of each status (a CSS class), shared by both wordings.
STATUS_TONE = {
    TaskStatus.PENDING: "working",
    TaskStatus.RUNNING: "working",
    TaskStatus.UNBLOCKING: "working",
    TaskStatus.SUCCEEDED: "done",
    TaskStatus.FAILED: "failed",
    TaskStatus.UNBLOCK_FAILED: "failed",
    TaskStatus.UNBLOCKED: "ended",
    TaskStatus.EXPIRED: "ended",
}

# States a worker is still to move on from: their rows refresh themselves.
IN_PROGRESS = frozenset({TaskStatus.PENDING, TaskStatus.RUNNING, TaskStatus.UNBLOCKING})


def is_block(scenario) -> bool:
    return scenario.operation == Operation.BLOCK_IP


def status_label(status: str, scenario) -> str:
    if is_block(scenario):
        return BLOCK_WORDING.get(status, status)
    return TaskStatus(status).label if status in TaskStatus.values else status


def history_label(status: str, scenario) -> str:
    """A status in a task's history, where "Pending -> Blocking" says more than
    "Blocking -> Blocking"."""
    if status == TaskStatus.PENDING:
        return TaskStatus.PENDING.label
    return status_label(status, scenario)


def status_filter_choices() -> list[tuple[str, str]]:
    """The status filter names both wordings: "Succeeded / Blocked"."""
    choices = []
    for value, label in TaskStatus.choices:
        block = BLOCK_WORDING[value]
        choices.append((value, label if block == label else f"{label} / {block}"))
    return choices


def time_left(expires_at: datetime | None, now: datetime) -> str:
    """What remains of an action's validity, e.g. "6 d 23 h left"."""
    if expires_at is None:
        return "no expiry"
    remaining = expires_at - now
    if remaining <= timedelta(0):
        return "validity ended; being lifted"
    days, seconds = remaining.days, remaining.seconds
    hours, minutes = seconds // 3600, seconds % 3600 // 60
    if days:
        return f"{days} d {hours} h left"
    if hours:
        return f"{hours} h {minutes} min left"
    return f"{max(minutes, 1)} min left"


# --- filters --------------------------------------------------------------------


def _day_bounds(start: date | None, end: date | None):
    tz = timezone.get_current_timezone()
    begin = datetime.combine(start, datetime.min.time(), tzinfo=tz) if start else None
    finish = (
        datetime.combine(end + timedelta(days=1), datetime.min.time(), tzinfo=tz) if end else None
    )
    return begin, finish


def _created_within(queryset, filters: dict):
    """The preset ("last 7 days") and the dates narrow the list together."""
    days = filters.get("created_days")
    if days:
        queryset = queryset.filter(created_at__gte=timezone.now() - timedelta(days=days))
    begin, finish = _day_bounds(filters.get("start"), filters.get("end"))
    if begin:
        queryset = queryset.filter(created_at__gte=begin)
    if finish:
        queryset = queryset.filter(created_at__lt=finish)
    return queryset


def policies_in_scope(scope: Scope):
    policies = HandlingPolicy.objects.in_scope(scope)
    if scope.region:
        policies = policies.filter(Q(region=scope.region) | Q(region=""))
    return policies


def policy_in_scope(scope: Scope, policy_id: int) -> HandlingPolicy | None:
    return (
        HandlingPolicy.objects.in_scope(scope)
        .select_related("scenario")
        .filter(pk=policy_id)
        .first()
    )


def filtered_policies(scope: Scope, filters: dict):
    """The policies of the Handling Policies tab, newest first. The account
    filter finds a policy by its own account or by an account of its scope."""
    policies = policies_in_scope(scope)
    if filters.get("entity_type"):
        policies = policies.filter(entity_type=filters["entity_type"])
    if filters.get("scenario"):
        policies = policies.filter(scenario__key=filters["scenario"])
    if filters.get("account"):
        account_id = filters["account"]
        in_scope_of = HandlingPolicy.scope_accounts.through.objects.filter(account_id=account_id)
        policies = policies.filter(
            Q(account_id=account_id) | Q(id__in=in_scope_of.values("policy_id"))
        )
    return _created_within(policies, filters).order_by("-created_at", "-id")


def _filtered_tasks(scope: Scope, filters: dict):
    tasks = HandlingTask.objects.in_scope(scope)
    if filters.get("entity_type"):
        tasks = tasks.filter(policy__entity_type=filters["entity_type"])
    if filters.get("scenario"):
        tasks = tasks.filter(policy__scenario__key=filters["scenario"])
    if filters.get("account"):
        tasks = tasks.filter(account_id=filters["account"])
    if filters.get("policy"):
        tasks = tasks.filter(policy_id=filters["policy"])
    return _created_within(tasks, filters)


def filtered_tasks(scope: Scope, filters: dict):
    """The tasks of the Handling Tasks tab, newest first."""
    tasks = _filtered_tasks(scope, filters)
    if filters.get("status"):
        tasks = tasks.filter(status=filters["status"])
    return tasks.order_by("-created_at", "-id")


def active_tasks(scope: Scope, filters: dict):
    """What is in force in the cloud, by account and cloud service, newest first
    within each."""
    return (
        _filtered_tasks(scope, filters)
        .filter(status__in=TaskStatus.active())
        .order_by("account__name", "account_id", "cloud_service", "-created_at", "-id")
    )


TASK_RELATIONS = ("policy__scenario", "account", "asset")


# --- rows -----------------------------------------------------------------------


def policy_account_ids(policy: HandlingPolicy) -> set[int]:
    return {policy.account_id} | {a.id for a in policy.scope_accounts.all()}


def may_edit_policy(scope: Scope, policy: HandlingPolicy) -> bool:
    """Changing a policy touches every account of its scope: the editor must
    handle events in each of them (and in the policy's own account)."""
    return scope.may_handle(policy_account_ids(policy))


@dataclass
class StatusCount:
    label: str
    count: int
    tone: str


@dataclass
class PolicyRow:
    policy: HandlingPolicy
    # The accounts of its scope that this view shows, and how many it does not.
    accounts: list
    hidden_accounts: int
    tasks: list[StatusCount]
    may_edit: bool
    entity_url: str | None = None

    @property
    def summary(self) -> str:
        return ", ".join(f"{c.count} {c.label.lower()}" for c in self.tasks) or "no tasks"


def policy_rows(scope: Scope, policies) -> list[PolicyRow]:
    """The policies of a page with their scope and a summary of their tasks in view."""
    policies = list(policies)
    counts: dict[int, Counter] = defaultdict(Counter)
    for policy_id, status in (
        HandlingTask.objects.in_scope(scope)
        .filter(policy_id__in=[p.pk for p in policies])
        .values_list("policy_id", "status")
    ):
        counts[policy_id][status] += 1
    rows = []
    for policy in policies:
        accounts = sorted(policy.scope_accounts.all(), key=lambda a: a.name)
        shown = [a for a in accounts if a.id in scope.account_ids]
        by_label: dict[str, StatusCount] = {}
        for status in TaskStatus.values:
            if counts[policy.pk][status]:
                label = status_label(status, policy.scenario)
                entry = by_label.setdefault(label, StatusCount(label, 0, STATUS_TONE[status]))
                entry.count += counts[policy.pk][status]
        rows.append(
            PolicyRow(
                policy=policy,
                accounts=shown,
                hidden_accounts=len(accounts) - len(shown),
                tasks=list(by_label.values()),
                may_edit=may_edit_policy(scope, policy),
            )
        )
    return rows


@dataclass
class TaskRow:
    task: HandlingTask
    status_label: str
    tone: str
    may_retry: bool
    may_unblock: bool
    # The task ran before its policy was last changed: Retry applies the change.
    outdated: bool
    simulated: bool
    connector_label: str
    time_left: str
    in_progress: bool
    entity_url: str | None = None


_CONNECTOR_LABELS = dict(ConnectorKind.choices)


def task_row(scope: Scope, task: HandlingTask, now: datetime | None = None) -> TaskRow:
    now = now or timezone.now()
    handler = scope.may_handle([task.account_id])
    scenario = task.policy.scenario
    return TaskRow(
        task=task,
        status_label=status_label(task.status, scenario),
        tone=STATUS_TONE.get(task.status, "working"),
        may_retry=handler and services.may_retry(task),
        may_unblock=handler and services.may_unblock(task),
        outdated=task.policy_revision < task.policy.revision,
        simulated=task.connector == ConnectorKind.SIMULATED,
        connector_label=_CONNECTOR_LABELS.get(task.connector, task.connector),
        time_left=time_left(task.expires_at, now) if task.status in TaskStatus.active() else "",
        in_progress=task.status in IN_PROGRESS,
    )


def task_rows(scope: Scope, tasks) -> list[TaskRow]:
    now = timezone.now()
    return [task_row(scope, task, now) for task in tasks]


# --- the simulated cloud --------------------------------------------------------


def configurable_accounts(scope: Scope) -> list[Account]:
    """The accounts of the view whose simulated cloud the caller may instruct."""
    return [
        account
        for account in Account.objects.in_scope(scope).order_by("name")
        if scope.may_configure([account.id])
    ]


def simulated_accounts(scope: Scope):
    """The accounts of the view whose tasks go to the simulated cloud."""
    accounts = Account.objects.in_scope(scope)
    uses_it = Q(connector__kind=ConnectorKind.SIMULATED)
    if settings.DISPOSAL_DEFAULT_CONNECTOR == ConnectorKind.SIMULATED:
        uses_it |= Q(connector__isnull=True)
    return accounts.filter(uses_it).order_by("name")


def simulated_actions(scope: Scope, *, in_force: bool):
    actions = SimulatedAction.objects.in_scope(scope).select_related("account")
    if in_force:
        return actions.filter(removed_at__isnull=True).order_by(
            "account__name", "account_id", "cloud_service", "-created_at", "-id"
        )
    return actions.filter(removed_at__isnull=False).order_by("-removed_at", "-id")


def simulated_failures(scope: Scope):
    return SimulatedFailure.objects.in_scope(scope).select_related("account")


def instance_wide_failures() -> int:
    """Failure instructions without an account: set by the operator (in the
    admin or a shell), they apply to every account of every organisation."""
    return SimulatedFailure.objects.filter(account__isnull=True, enabled=True).count()
