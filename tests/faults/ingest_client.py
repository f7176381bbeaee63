"""An ingesting client for the PostgreSQL restart test, run as its own process:

    python -m tests.faults.ingest_client BATCHES SIZE

against DATABASE_URL and REDIS_URL. It makes an organisation, an account and a
rule that groups the account's mining alerts by host, then ingests BATCHES
batches of SIZE alerts through the ingestion service, as the API does. A
batch that meets a database error is sent again, as a client sends again a
request that got no answer: ingestion is idempotent, so the alerts of a batch
whose commit went through come back as duplicates. Prints one JSON line per
batch and a last one with the totals.
"""

import json
import os
import sys
import time
import uuid
from datetime import UTC, datetime

import django

GIVE_UP_AFTER = 120


def main(batches: int, size: int) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "secops.settings")
    django.setup()
    from django.db import InterfaceError, OperationalError, connection

    from alerts.services import ingest_alerts
    from secops.scope import Scope
    from tests import factories

    organisation = factories.make_organisation("Restart")
    account = factories.make_account(organisation)
    rule = factories.make_rule(
        organisation=organisation,
        match_types=["mining"],
        group_by=["asset"],
        event_name_template="Mining on {asset_name}",
    )
    scope = Scope.for_accounts(organisation.id, [account.id])
    print(json.dumps({"rule": rule.id, "account": account.id}), flush=True)
    occurred_at = datetime.now(UTC).replace(microsecond=0).isoformat()
    accepted = duplicates = retries = 0
    for number in range(batches):
        items = [
            {
                "source": "security_center",
                "uuid": str(uuid.uuid4()),
                "account": account.uid,
                "type": "mining",
                "name": "Cryptomining program",
                "level": "medium",
                "occurred_at": occurred_at,
                "asset": {"uuid": "uuid-web-01", "name": "web-01"},
                "entities": [{"type": "process", "path": "/tmp/xmrig", "cmdline": f"x {n}"}],
            }
            for n in range(size)
        ]
        deadline = time.monotonic() + GIVE_UP_AFTER
        while True:
            try:
                result = ingest_alerts(items, scope=scope)
                break
            except (OperationalError, InterfaceError) as error:
                if time.monotonic() > deadline:
                    raise
                retries += 1
                print(json.dumps({"batch": number, "retry": str(error)[:200]}), flush=True)
                connection.close()
                time.sleep(0.5)
        accepted += result.accepted
        duplicates += result.duplicates
        print(json.dumps({"batch": number, "accepted": result.accepted}), flush=True)
        time.sleep(0.05)
    print(
        json.dumps(
            {"done": True, "accepted": accepted, "duplicates": duplicates, "retries": retries}
        ),
        flush=True,
    )


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
