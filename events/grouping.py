"""The fields aggregation rules can group alerts by.

Each field reads one value from an alert (with its asset and entities
already loaded); an alert without a value for one of a rule's fields is not
aggregated by that rule.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass

from alerts.facts import AlertFacts


@dataclass(frozen=True)
class GroupingField:
    key: str
    label: str
    read: Callable[[AlertFacts], str | None]


def _file_hash(alert: AlertFacts):
    return alert.entity_value("file", attribute="sha256") or alert.entity_value(
        "file", attribute="md5"
    )


GROUPING_FIELDS: dict[str, GroupingField] = {
    field.key: field
    for field in [
        GroupingField("asset", "host", lambda a: a.asset_uuid),
        GroupingField("attacker_ip", "attacker IP", lambda a: a.entity_value("ip", "attacker")),
        GroupingField(
            "victim_ip", "victim IP", lambda a: a.entity_value("ip", "victim") or a.asset_public_ip
        ),
        GroupingField("file_hash", "file hash", _file_hash),
        GroupingField("file_path", "file path", lambda a: a.entity_value("file", attribute="path")),
        GroupingField(
            "process_path", "process", lambda a: a.entity_value("process", attribute="path")
        ),
        GroupingField("domain", "domain", lambda a: a.entity_value("domain")),
        GroupingField("url", "URL", lambda a: a.entity_value("url")),
        GroupingField("user", "user", lambda a: a.entity_value("user")),
        GroupingField("alert_type", "alert type", lambda a: a.type),
        GroupingField("alert_name", "alert name", lambda a: a.name),
        GroupingField("source", "data source", lambda a: a.source),
        # Every alert on its own: an event per alert.
        GroupingField("alert", "alert", lambda a: str(a.id)),
    ]
}

GROUPING_CHOICES = [(f.key, f.label) for f in GROUPING_FIELDS.values()]
MAX_GROUP_FIELDS = 3


# ``{name}`` in an aggregation rule's event name and description templates.
PLACEHOLDER = re.compile(r"\{(\w+)\}")


def render_template(template: str, values: dict[str, str]) -> str:
    """Fill ``{name}`` placeholders; unknown names stay as written.

    Deliberately not ``str.format``: templates are user-written and
    ``{x.__class__}``-style lookups must not reach Python objects.
    """
    return PLACEHOLDER.sub(lambda m: str(values.get(m.group(1), m.group(0))), template)


def describe_window(seconds: int) -> str:
    if seconds % 86400 == 0:
        days = seconds // 86400
        return f"{days} day{'s' if days != 1 else ''}" if days != 1 else "24 h"
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"
