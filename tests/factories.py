"""Small factories for tests: each makes one valid object with sensible defaults."""

import itertools
import uuid as uuid_lib

from django.contrib.auth import get_user_model
from django.utils import timezone

from alerts.models import Alert, AlertKey, AlertSource, Asset, LogRecord, LogType
from events.models import AggregationRule, EventStatus, SecurityEvent
from secops.enums import RegionGroup, RiskLevel, Role
from secops.models import Account, AccountMembership, Organisation, OrganisationMembership

_counter = itertools.count(1)


def make_organisation(name=None):
    return Organisation.objects.create(name=name or f"Org {next(_counter)}")


def make_account(organisation, *, uid=None, name=None, region=RegionGroup.CHINA, managed=True):
    n = next(_counter)
    return Account.objects.create(
        organisation=organisation,
        uid=uid or f"{1000000000000000 + n}",
        name=name or f"Account {n}",
        home_region=region,
        managed=managed,
    )


def make_user(
    organisation,
    username=None,
    *,
    password="correct-horse-9",
    accounts=(),
    global_admin=False,
    role=Role.ANALYST,
):
    user = get_user_model().objects.create_user(
        username=username or f"user{next(_counter)}", password=password
    )
    OrganisationMembership.objects.create(
        user=user, organisation=organisation, is_global_admin=global_admin
    )
    for account in accounts:
        AccountMembership.objects.create(user=user, account=account, role=role)
    return user


def make_asset(account, *, region=None, **fields):
    defaults = {
        "uuid": str(uuid_lib.uuid4()),
        "instance_id": f"i-{uuid_lib.uuid4().hex[:12]}",
        "name": f"host-{next(_counter)}",
        "public_ip": "198.51.100.10",
        "private_ip": "10.0.0.10",
        "os": "Ubuntu 22.04",
        "region": region or account.home_region,
    }
    defaults.update(fields)
    return Asset.objects.create(account=account, **defaults)


def make_alert(account, *, asset=None, region=None, **fields):
    defaults = {
        "source": AlertSource.SECURITY_CENTER,
        "source_uuid": str(uuid_lib.uuid4()),
        "type": "webshell",
        "name": "Webshell detected",
        "level": RiskLevel.HIGH,
        "occurred_at": timezone.now(),
        "region": region or (asset.region if asset else account.home_region),
    }
    defaults.update(fields)
    alert = Alert.objects.create(account=account, asset=asset, **defaults)
    # What ingestion would have recorded, so that a re-send is a duplicate.
    AlertKey.objects.get_or_create(
        account=account,
        source=alert.source,
        source_uuid=alert.source_uuid,
        defaults={"occurred_at": alert.occurred_at},
    )
    return alert


def make_rule(**fields):
    n = next(_counter)
    defaults = {
        "key": f"rule-{n}",
        "name": f"Rule {n}",
        "group_by": ["asset"],
        "event_name_template": "Event of rule {n}",
    }
    defaults.update(fields)
    return AggregationRule.objects.create(**defaults)


def make_event(account, *, rule=None, region=None, status=EventStatus.UNHANDLED, **fields):
    now = timezone.now()
    defaults = {
        "group_key": uuid_lib.uuid4().hex,
        "name": "Webshell on host",
        "risk": RiskLevel.HIGH,
        "first_occurred_at": now,
        "last_occurred_at": now,
        "alert_count": 1,
        "region": region or account.home_region,
    }
    defaults.update(fields)
    return SecurityEvent.objects.create(
        account=account, rule=rule or make_rule(), status=status, **defaults
    )


def make_log_record(account, *, asset=None, region=None, **fields):
    defaults = {
        "host_uuid": asset.uuid if asset else str(uuid_lib.uuid4()),
        "log_type": LogType.PROCESS,
        "time": timezone.now(),
        "region": region or (asset.region if asset else account.home_region),
        "fields": {"cmdline": "/bin/sh -c id", "n": next(_counter)},
    }
    defaults.update(fields)
    defaults.setdefault(
        "digest",
        LogRecord.digest_for(
            defaults["log_type"], defaults["host_uuid"], defaults["time"], defaults["fields"]
        ),
    )
    return LogRecord.objects.create(account=account, asset=asset, **defaults)


def key_client(organisation, account=None):
    """A Django test client that sends a new API key of the organisation (or
    of one of its accounts) as ``Authorization: Bearer``."""
    from django.test import Client

    from secops.services import create_api_key

    _, secret = create_api_key(organisation=organisation, account=account, name="test")
    return Client(headers={"authorization": f"Bearer {secret}"})
