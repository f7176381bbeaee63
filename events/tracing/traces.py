"""Each event of a diagram: the hosts and time window read for it, or why it
cannot be traced."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.urls import reverse

from alerts.models import AlertSource
from events.models import SecurityEvent


class Unavailable:
    """Why an event cannot be traced in the host logs; each reason is shown to
    the analyst, next to the diagram its alerts give (or, with no alerts, alone)."""

    NO_ALERTS = "The event has no alerts in the current view."
    NOT_SECURITY_CENTER = (
        "None of the event's alerts were reported by Security Center, whose host agent "
        "sends the logs that tracing follows."
    )
    NO_HOST = "The event's Security Center alerts name no host, so there are no host logs to add."
    NO_LOGS = "No contextual logs were received from {hosts} between {start} and {end}."
    NOT_REPRODUCIBLE = (
        "The contextual logs of {hosts} between {start} and {end} mention none of the "
        "entities of the event's alerts (IP addresses, processes, files, logons, attack "
        "payloads), so they add nothing to what the alerts give."
    )


@dataclass
class EventTrace:
    """One event of a diagram: whether it can be traced in the host logs, and why not."""

    event: SecurityEvent
    hosts: dict[str, str] = field(default_factory=dict)  # host uuid -> name
    start: datetime | None = None
    end: datetime | None = None
    reason: str = ""
    # Node ids of the log graph that its alerts' entities were found as.
    seeds: set[str] = field(default_factory=set)

    @property
    def available(self) -> bool:
        return not self.reason

    def decide_hosts(self, alerts: list[dict], window: timedelta) -> None:
        """The hosts and time window to read, or the reason there are none."""
        if not alerts:
            self.reason = Unavailable.NO_ALERTS
            return
        security_center = [a for a in alerts if a["source"] == AlertSource.SECURITY_CENTER]
        if not security_center:
            self.reason = Unavailable.NOT_SECURITY_CENTER
            return
        for alert in security_center:
            if alert["asset__uuid"]:
                self.hosts[alert["asset__uuid"]] = alert["asset__name"] or alert["asset__uuid"]
        self.start = self.event.first_occurred_at - window
        self.end = self.event.last_occurred_at + window
        if not self.hosts:
            self.reason = Unavailable.NO_HOST

    def where(self) -> dict:
        """The hosts and window, as the reasons that name them put it."""
        return {
            "hosts": ", ".join(sorted(self.hosts.values())),
            "start": f"{self.start:%Y-%m-%d %H:%M}",
            "end": f"{self.end:%Y-%m-%d %H:%M} UTC",
        }

    def as_dict(self) -> dict:
        return {
            "id": self.event.id,
            "name": self.event.name,
            "url": reverse("events:detail", args=[self.event.id]),
            "available": self.available,
            "reason": self.reason,
            "hosts": [{"uuid": u, "name": n} for u, n in sorted(self.hosts.items())],
            "window": {
                "start": self.start.isoformat() if self.start else None,
                "end": self.end.isoformat() if self.end else None,
            },
        }
