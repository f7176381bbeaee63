"""The extension points of the event pages, filled by the apps above events.

- ``events.event_actions``: provider(scope, event) -> Link or None, an action
  offered for an event in the Actions column of Security Event Handling and in
  the head of its details (the disposal app: Handle).
- ``events.event_sections``: provider(request, event) -> EventSection or None, a
  section of the Incident Information tab (the disposal app: the event's
  handling policies and notifications).
"""

from dataclasses import dataclass

from secops.extensions import ExtensionPoint


@dataclass(frozen=True)
class EventSection:
    title: str
    # Rendered by the providing app from its own template (escaped there).
    html: str
    testid: str = ""


event_actions = ExtensionPoint("events.event_actions")
event_sections = ExtensionPoint("events.event_sections")
