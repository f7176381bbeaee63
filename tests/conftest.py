"""Fixtures every suite shares, above all the three-user tenancy fixture.

``tenancy`` gives:
- ``alice``: global administrator of organisation "Acme" (accounts A in China,
  B outside China, both managed; C in China, not managed);
- ``bob``: analyst of account A only;
- ``charlie``: outsider, analyst of account X of another organisation.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import uuid4

import pytest
from django.test import Client

from alerts.services import ALL_ALERT_SOURCES, ingest_alerts
from secops.enums import RegionGroup
from secops.models import Account, Organisation
from secops.scope import Scope
from tests import factories

PASSWORD = "correct-horse-9"


@dataclass
class Tenancy:
    org: Organisation
    other_org: Organisation
    account_a: Account
    account_b: Account
    account_c: Account
    account_x: Account
    alice: object
    bob: object
    charlie: object

    def client_for(self, user) -> Client:
        client = Client()
        client.force_login(user)
        return client


@pytest.fixture
def tenancy(db) -> Tenancy:
    org = factories.make_organisation("Acme")
    other = factories.make_organisation("Umbrella")
    a = factories.make_account(
        org, uid="1111111111111111", name="Acme Prod", region=RegionGroup.CHINA
    )
    b = factories.make_account(
        org, uid="2222222222222222", name="Acme Intl", region=RegionGroup.OUTSIDE_CHINA
    )
    c = factories.make_account(
        org, uid="3333333333333333", name="Acme Lab", region=RegionGroup.CHINA, managed=False
    )
    x = factories.make_account(
        other, uid="9999999999999999", name="Umbrella Prod", region=RegionGroup.CHINA
    )
    alice = factories.make_user(org, "alice", password=PASSWORD, accounts=[a], global_admin=True)
    bob = factories.make_user(org, "bob", password=PASSWORD, accounts=[a])
    charlie = factories.make_user(other, "charlie", password=PASSWORD, accounts=[x])
    return Tenancy(org, other, a, b, c, x, alice, bob, charlie)


@pytest.fixture(autouse=True)
def _fresh_whitelist_cache():
    """Compiled whitelists are cached per process by organisation and revision;
    a rolled-back test can leave an id and revision the next test reuses."""
    from whitelist.services import clear_cache

    clear_cache()
    yield
    clear_cache()


# --- ingestion and the aggregation pipeline -------------------------------------


@pytest.fixture
def fast_password_hashing(settings):
    """The tenancy fixture hashes three passwords; PBKDF2 would make that most of
    a test's run time. Request it with ``pytest.mark.usefixtures``."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


# A fixed moment, so that alerts of one test never straddle a window boundary.
# Day windows start at 00:00 UTC, week windows on Thursdays: Monday noon is well
# inside both.
ALERT_TIME = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def native_alert(account, **fields) -> dict:
    """A valid native alert (an item of POST /api/v1/alerts) of ``account`` (an
    Account or its uid). The defaults match no predefined aggregation rule, so a
    test opts into the rule it is about by choosing the source, type and level."""
    alert = {
        "source": "security_center",
        "uuid": f"alert-{uuid4().hex}",
        "account": account if isinstance(account, str) else account.uid,
        "type": "suspicious_process",
        "name": "Suspicious process",
        "level": "medium",
        "occurred_at": ALERT_TIME.isoformat(),
        "asset": {"uuid": "host-web-01", "name": "web-01", "public_ip": "198.51.100.10"},
        "entities": [],
    }
    alert.update(fields)
    return alert


def organisation_scope(organisation) -> Scope:
    """What an organisation-wide API key may reach: every account of the organisation."""
    return Scope.for_accounts(organisation.id, organisation.accounts.values_list("id", flat=True))


@pytest.fixture
def ingest_and_aggregate(django_capture_on_commit_callbacks):
    """``ingest_alerts`` followed by the pipeline its commit queues, as in production.

    Every source is accepted by default, SIEM included, as the detection
    rules send them; pass ``sources=CLIENT_ALERT_SOURCES`` for a client's view.

    Under the ``db`` fixture the test's transaction never commits, so the
    on-commit callbacks are run when the ingestion returns.
    """

    def ingest(items, *, scope, partial=False, sources=ALL_ALERT_SOURCES):
        with django_capture_on_commit_callbacks(execute=True):
            return ingest_alerts(items, scope=scope, partial=partial, sources=sources)

    return ingest


@pytest.fixture(autouse=True, scope="session")
def celery_runs_tasks_in_process():
    """Tasks run eagerly in every suite, also when REDIS_URL points at a real
    broker (as in CI): a test that wants a real worker starts one itself (see
    tests/events/test_worker.py) and switches this off for its own duration."""
    from secops.celery import app

    saved = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = saved
