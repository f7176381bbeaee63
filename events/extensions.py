"""The extension points of the event pages, filled by the apps above events.

- ``events.event_actions``: provider(scope, event) -> Link or None, an action
  offered for an event in the Actions column of Security Event Handling and in
  the head of its details (the disposal app: Handle).
- ``events.event_sections``: provider(request, event) -> EventSection or None, a
  section of the Incident Information tab (the disposal app: the event's
  handling policies and notifications).
- ``events.list_actions``: provider(request, matching) -> EventSection or None,
  a tool above the table of Security Event Handling, given how many events
  the list's filters match (the soar app: bulk handling of selected events).
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
list_actions = ExtensionPoint("events.list_actions")
