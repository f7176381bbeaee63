"""Fixtures of the handling suites: an event whose attacker IP, file and process
were seen in three managed accounts of Acme."""

from dataclasses import dataclass

import pytest

from events.models import SecurityEvent
from secops.enums import RegionGroup, Role, View
from secops.scope import Scope
from tests import factories
from tests.conftest import native_alert

ATTACKER_IP = "203.0.113.7"
FILE_HASH = "44d88612fea8a8f36de82e1278abb02f"


@dataclass
class Handled:
    event: SecurityEvent
    accounts: list
    scope: Scope
    analyst: object
    viewer: object


def global_scope(org, accounts) -> Scope:
    return Scope(
        organisation_id=org.id,
        view=View.GLOBAL,
        account_ids=frozenset(a.id for a in accounts),
        organisation_admin=True,
    )


@pytest.fixture
def brute_force_event(tenancy, ingest_and_aggregate, fast_password_hashing) -> Handled:
    """Brute force from ATTACKER_IP on web-01 of account A, the same IP also
    attacking accounts B and D, so that a policy may cover three accounts."""
    account_d = factories.make_account(
        tenancy.org, uid="4444444444444444", name="Acme Shop", region=RegionGroup.CHINA
    )
    accounts = [tenancy.account_a, tenancy.account_b, account_d]
    scope = global_scope(tenancy.org, accounts)
    items = []
    for index, account in enumerate(accounts):
        items.append(
            native_alert(
                account,
                type="brute_force",
                name="SSH brute force",
                level="high",
                asset={"uuid": f"host-{index}", "name": f"web-0{index}"},
                entities=[
                    {"type": "ip", "value": ATTACKER_IP, "role": "attacker"},
                    {"type": "file", "md5": FILE_HASH, "path": "/tmp/x", "role": "related"},
                    {"type": "process", "path": "/tmp/x", "pid": 4242, "role": "related"},
                ],
            )
        )
    ingest_and_aggregate(items, scope=scope)
    event = SecurityEvent.objects.get(account=tenancy.account_a, rule__key="brute-force-then-login")
    analyst = factories.make_user(tenancy.org, "ann", accounts=accounts, role=Role.ANALYST)
    viewer = factories.make_user(tenancy.org, "vic", accounts=accounts, role=Role.VIEWER)
    return Handled(event, accounts, scope, analyst, viewer)
