"""``manage.py seed_demo``: the Demo Corp organisation with a month of data.

Runs the real ingestion and pipeline over the payloads of ``secops.demo``, so
the demo shows what the console makes of alerts, not hand-made rows. Running
it again changes nothing: alerts come back with the same uuids (duplicates),
the attack story's logs are sent only once, and only events still Unhandled
are moved.
"""

import argparse
import dataclasses
from collections import Counter

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db.models import Count
from django.utils import timezone

from alerts.models import LogRecord
from alerts.services import ALL_ALERT_SOURCES, ingest_alerts, ingest_logs
from disposal.handling import ActionChoice, HandlingRequest, handle_event, handling_context
from disposal.models import Scenario, SimulatedFailure
from disposal.services import run_task
from events import feed
from events.models import EventStatus, EventStatusChange, SecurityEvent
from events.pipeline import process_pending_batches
from events.services import change_event_status
from secops import demo
from secops.enums import RiskLevel
from secops.env import env_str
from secops.management.commands.create_user import check_password_strength
from secops.scope import Scope
from secops.services import ProvisioningError, create_account, create_organisation, create_user

BATCH_SIZE = 1_000
ERRORS_SHOWN = 5


def positive_count(value: str) -> int:
    count = int(value)
    if count < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return count


class Command(BaseCommand):
    help = (
        "Load the Demo Corp organisation: four cloud accounts, two users, about 30 hosts, "
        "alerts of the last 30 days from all four sources, an attack told in host logs, and "
        "events in every status. For demonstrations only: the users' passwords are printed."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--seed",
            type=int,
            default=demo.DEFAULT_SEED,
            help="Another seed makes other hosts and alerts (default: %(default)s).",
        )
        parser.add_argument(
            "--alerts",
            type=positive_count,
            default=demo.DEFAULT_ALERT_COUNT,
            help="How many alerts to send (default: %(default)s).",
        )
        parser.add_argument("--admin-password", help="Password of the user 'admin'.")
        parser.add_argument("--analyst-password", help="Password of the user 'analyst'.")

    def handle(self, *args, seed, alerts, admin_password, analyst_password, **options):
        passwords = {
            demo.DEMO_ADMIN.username: admin_password or demo.DEMO_ADMIN.default_password,
            demo.DEMO_ANALYST.username: analyst_password or demo.DEMO_ANALYST.default_password,
        }
        User = get_user_model()
        for username, password in passwords.items():
            check_password_strength(password, User(username=username))

        try:
            scope, users = provision(passwords)
        except ProvisioningError as error:
            raise CommandError(str(error)) from error

        add_demo_whitelist(scope)
        now = timezone.now()
        alert_payloads = demo.build_alerts(seed, alerts, now)
        alert_totals = send_in_batches(ingest_demo_alerts, alert_payloads, scope, aggregate=True)
        story_host = demo.build_story(seed, now).host
        # Log records have no uuid and their times follow "now": sent again
        # they would be new rows, so the story's logs are sent only once.
        if LogRecord.objects.in_scope(scope).filter(host_uuid=story_host.uuid).exists():
            log_totals = None
        else:
            logs = demo.build_logs(seed, now, alert_payloads)
            log_totals = send_in_batches(ingest_logs, logs, scope)
        moved = apply_status_plan(scope, users[demo.DEMO_ADMIN.username])

        self.report(alert_totals, log_totals, moved, scope, passwords)

    def report(self, alert_totals, log_totals, moved, scope, passwords):
        write = self.stdout.write
        write(f"Alerts: {alert_totals[0]} accepted, {alert_totals[1]} duplicates")
        if log_totals is None:
            write("Logs: already loaded, not sent again")
        else:
            write(f"Logs: {log_totals[0]} accepted, {log_totals[1]} duplicates")

        counts = Counter(
            {
                (row["status"], row["risk"]): row["count"]
                for row in SecurityEvent.objects.in_scope(scope)
                .values("status", "risk")
                .annotate(count=Count("id"))
            }
        )
        write(f"Events: {sum(counts.values())} ({moved} moved out of Unhandled by this run)")
        risks = sorted(RiskLevel, reverse=True)
        write(f"  {'':<10}" + "".join(f"{risk.label:>8}" for risk in risks) + f"{'Total':>8}")
        for status in EventStatus:
            row = [counts[(status.value, risk.value)] for risk in risks]
            cells = "".join(f"{n:>8}" for n in row)
            write(f"  {status.label:<10}{cells}{sum(row):>8}")

        port = env_str("PORT", "8000")
        write("")
        write(self.style.SUCCESS(f"Log in at http://127.0.0.1:{port}/ with (demo only):"))
        for user in demo.DEMO_USERS:
            write(f"  {user.username} / {passwords[user.username]}  ({user.description})")
        write(
            "These are demo only accounts with printed passwords: do not load the demo into "
            "an installation that holds real data."
        )


def add_demo_whitelist(scope) -> None:
    """One policy group, so the whitelist has hits to show: routine port scans
    are stored as whitelisted alerts and kept out of events. Made once; an
    edited or deleted demo group is left as the user left it."""
    from whitelist.models import RuleGroup
    from whitelist.services import ConditionSpec, GroupSpec, save_group

    name, scenario, conditions = demo.DEMO_WHITELIST_GROUP
    if RuleGroup.objects.filter(organisation_id=scope.organisation_id, name=name).exists():
        return
    save_group(
        GroupSpec(
            name=name,
            scenario=scenario,
            description="Low-risk port scans the edge firewall already blocks.",
            conditions=[ConditionSpec(*condition) for condition in conditions],
        ),
        scope,
        allow_global=True,
    )


def provision(passwords: dict[str, str]):
    """The organisation, its accounts and users (idempotent, through the services)."""
    organisation, _ = create_organisation(demo.DEMO_ORGANISATION)
    accounts = [
        create_account(
            organisation,
            uid=account.uid,
            name=account.name,
            region=account.region,
            managed=account.managed,
        )[0]
        for account in demo.DEMO_ACCOUNTS
    ]
    users = {
        user.username: create_user(
            organisation,
            username=user.username,
            password=passwords[user.username],
            memberships=list(user.memberships),
            global_admin=user.global_admin,
        )[0]
        for user in demo.DEMO_USERS
    }
    scope = Scope.for_accounts(organisation.id, [account.id for account in accounts])
    return scope, users


def ingest_demo_alerts(items: list[dict], *, scope: Scope):
    # The demo includes alerts of simulated SIEM rules, which no client may send.
    return ingest_alerts(items, scope=scope, sources=ALL_ALERT_SOURCES)


def send_in_batches(
    ingest, items: list[dict], scope: Scope, *, aggregate: bool = False
) -> tuple[int, int]:
    """Ingest ``items`` in batches; returns (accepted, duplicates). Fails on any refusal."""
    accepted = duplicates = 0
    for start in range(0, len(items), BATCH_SIZE):
        result = ingest(items[start : start + BATCH_SIZE], scope=scope)
        if result.errors:
            first = "; ".join(
                f"item {start + error['index']} {error['field']}: {error['message']}"
                for error in result.errors[:ERRORS_SHOWN]
            )
            raise CommandError(f"Ingestion refused {len(result.errors)} items: {first}")
        accepted += result.accepted
        duplicates += result.duplicates
        if aggregate:
            # The status changes below need the events now, whether or not a
            # worker is running; batches a worker already took are gone.
            process_pending_batches()
    return accepted, duplicates


def apply_status_plan(scope: Scope, admin) -> int:
    """Move the planned events out of Unhandled; returns how many moved.

    The plan is made over every demo event, oldest first, whatever its
    status, so that a second run picks the same events and, finding them
    moved already, changes nothing.

    Events that are handled with actions go through the real handling: the
    first handled events with a recommended policy get it (the Disposal Center
    shows their blocks), and the planned failures are recommended policies that
    the simulated cloud is told to refuse, so that they fail as a handling task
    fails (and Retry recovers them once the failure is lifted on the simulated
    cloud's page).
    """
    events = SecurityEvent.objects.in_scope(scope).order_by("first_occurred_at", "id")
    plan = demo.plan_event_statuses(list(events.values_list("id", "risk")))
    unhandled = {
        event.id: event
        for event in events.filter(
            id__in=[planned.event_id for planned in plan], status=EventStatus.UNHANDLED
        )
    }
    handler = dataclasses.replace(scope, organisation_admin=True)
    cause = feed.Cause.by_user(admin)
    handled_with_actions = 0
    moved = []
    blocked: set[tuple[int, str, str]] = set()
    for planned in plan:
        event = unhandled.get(planned.event_id)
        if event is None:
            continue
        if planned.status == EventStatus.FAILED:
            actions = recommended_actions(handler, event)
            if not actions:
                change_event_status(event, EventStatus.HANDLING, user=admin, note=planned.note)
                moved.append(event)
                continue
            for action in actions:
                SimulatedFailure.objects.get_or_create(
                    account=event.account,
                    target=action.value,
                    defaults={"message": demo.SIMULATED_FAILURE_MESSAGE},
                )
            run_now(
                handle_event(
                    handler,
                    event,
                    HandlingRequest(
                        EventStatus.HANDLING,
                        actions_note(demo.FAILED_ATTEMPT_LEAD, actions),
                        actions,
                    ),
                    cause=cause,
                )
            )
        elif (
            planned.status == EventStatus.HANDLED
            and handled_with_actions < demo.HANDLED_WITH_ACTIONS
            and (actions := recommended_actions(handler, event, skip=blocked))
        ):
            # One block of an attacker per account: later events of the same
            # attacker are handled without blocking it again.
            blocked.update((event.account_id, a.value, a.scenario_key) for a in actions)
            run_now(
                handle_event(
                    handler,
                    event,
                    HandlingRequest(
                        planned.status, actions_note(demo.CONFIRMED_LEAD, actions), actions
                    ),
                    cause=cause,
                )
            )
            handled_with_actions += 1
        else:
            change_event_status(event, planned.status, user=admin, note=planned.note)
        moved.append(event)
    restamp_history(moved, timezone.now())
    return len(unhandled)


def actions_note(lead: str, actions) -> str:
    names = dict(
        Scenario.objects.filter(key__in={a.scenario_key for a in actions}).values_list(
            "key", "name"
        )
    )
    return demo.actions_note(lead, [(names[a.scenario_key], a.value) for a in actions])


def restamp_history(events, now) -> None:
    """Date the status changes just made as if analysts had made them after
    each event's alerts, not at the moment of seeding (demo data only)."""
    for event in events:
        changes = list(EventStatusChange.objects.filter(event=event).order_by("created_at", "id"))
        times = demo.history_times(
            event.id, event.first_occurred_at, event.last_occurred_at, now, len(changes)
        )
        for change, moment in zip(changes, times, strict=True):
            change.created_at = moment
        EventStatusChange.objects.bulk_update(changes, ["created_at"])


def run_now(result) -> None:
    """Carry out the demo's handling tasks here, before any worker runs: the
    demo is complete when the command returns. A task a worker took already
    is skipped (it is claimed only once)."""
    for task in result.tasks:
        run_task(task.pk)


def recommended_actions(scope: Scope, event, skip=frozenset()) -> tuple[ActionChoice, ...]:
    """The recommended policy of each of the event's entities, in its own account,
    leaving out (account, value, scenario) in ``skip``."""
    return tuple(
        ActionChoice(entity.entity_type, entity.value, entity.recommended.key, (event.account_id,))
        for entity in handling_context(scope, event).entities
        if entity.recommended is not None
        and event.account_id in {a.id for a in entity.accounts}
        and (event.account_id, entity.value, entity.recommended.key) not in skip
    )
