"""The extension points of the alert pages, filled by the apps above alerts.

- ``alerts.whitelist_notes``: provider(alert_ids) -> {alert id: WhitelistNote},
  why an alert was whitelisted (the whitelist app).
- ``alerts.alert_related``: provider(scope, alert) -> RelatedLinks or None, what
  the alert is part of (the events app: its security events).
- ``alerts.rule_pages``: provider() -> Link, rule pages shown beside the
  detection rules (the events app: aggregation rules).
- ``alerts.entity_links``: provider(entity) -> URL or None, the page about an
  entity that an alert's details link each of its entities to (the disposal
  app: the entity page). The first provider's URL is used.
"""

from dataclasses import dataclass
from datetime import datetime

from secops.extensions import ExtensionPoint, Link


@dataclass(frozen=True)
class WhitelistNote:
    group_name: str
    matched_at: datetime
    # The group's page; None once the group is deleted.
    url: str | None


@dataclass(frozen=True)
class RelatedLinks:
    label: str
    links: list[Link]


whitelist_notes = ExtensionPoint("alerts.whitelist_notes")
alert_related = ExtensionPoint("alerts.alert_related")
rule_pages = ExtensionPoint("alerts.rule_pages")
entity_links = ExtensionPoint("alerts.entity_links")


def attach_whitelist_notes(alerts) -> list:
    """Give each whitelisted alert its ``whitelist_note`` (None when no provider
    knows why), one query per provider for the whole list."""
    alerts = list(alerts)
    ids = [a.id for a in alerts if a.whitelisted]
    notes = {}
    if ids:
        for found in whitelist_notes.collect(ids):
            notes.update(found)
    for alert in alerts:
        alert.whitelist_note = notes.get(alert.id)
    return alerts
