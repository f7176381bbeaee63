"""The Handle panel's form.

The panel lists one row per entity of the event (``handling_context``); its
fields are named after the entity's digest, so a row keeps its values even if
the event gains entities between showing the panel and submitting it. The form
reads what the analyst chose, turns it into a ``HandlingRequest`` for
``handle_event`` (which holds the rules), and places each error the service
reports next to the field it names.
"""

import re
from dataclasses import dataclass, field

from alerts.models import EntityRole, EntityType
from disposal.errors import HandlingError
from disposal.handling import (
    CHOOSABLE_STATUSES,
    ActionChoice,
    HandleableEntity,
    HandlingContext,
    HandlingRequest,
    NotificationChoice,
)
from disposal.models import Channel, Scenario
from events.models import EventStatus

DESCRIPTION_MAX = 2000
NO_RECOMMENDATION = "No policy is recommended for these entities; configure one by hand."
TAB_LABELS = {EntityType.IP: "IP", EntityType.FILE: "File", EntityType.PROCESS: "Process"}
ROLE_LABELS = dict(EntityRole.choices)
# "actions[2].scope" -> (2, "scope"); "actions[2]" -> (2, "").
_ACTION_FIELD = re.compile(r"^actions\[(\d+)\](?:\.(\w+))?$")
_RECIPIENT_SEPARATORS = re.compile(r"[\s,;]+")


def default_title(event) -> str:
    return f"Security event #{event.pk} handled"


def row_prefix(entity: HandleableEntity) -> str:
    """The prefix of an entity's fields (the digest covers the type and value)."""
    return f"entity-{entity.digest}"


@dataclass
class EntityRow:
    """One entity on the panel, with what the analyst chose for it."""

    entity: HandleableEntity
    selected: bool
    scenario_key: str
    account_ids: list[int]
    # As typed: it is shown back as it was when it is wrong.
    validity: str
    errors: dict[str, list[str]] = field(default_factory=dict)
    # The entity page, when the app offers one (set by the view).
    url: str | None = None
    # "Use Recommended Handling Policy" found nothing for it.
    not_recommended: bool = False

    @property
    def prefix(self) -> str:
        return row_prefix(self.entity)

    @property
    def scenario(self) -> Scenario | None:
        return next((s for s in self.entity.scenarios if s.key == self.scenario_key), None)

    @property
    def takes_validity(self) -> bool:
        return bool(self.scenario and self.scenario.takes_validity)

    @property
    def role_labels(self) -> list[str]:
        return [ROLE_LABELS.get(role, role) for role in self.entity.roles]

    def add_error(self, part: str, message: str) -> None:
        self.errors.setdefault(part, []).append(message)


@dataclass
class Tab:
    key: str
    label: str
    rows: list[EntityRow]

    @property
    def has_errors(self) -> bool:
        return any(row.errors for row in self.rows)

    @property
    def recommended_count(self) -> int:
        return sum(1 for row in self.rows if row.entity.recommended is not None)


class HandleForm:
    """The panel's fields for ``context``: initial values without ``data``, else
    the submitted ones. ``recommend`` (a tab key) fills in that tab's
    recommended policies, as "Use Recommended Handling Policy" does; a
    ``read_only`` form (for viewers) starts from the event's own status."""

    def __init__(
        self,
        context: HandlingContext,
        data=None,
        *,
        recommend: str | None = None,
        read_only: bool = False,
    ):
        self.context = context
        self.read_only = read_only
        self.event = context.event
        self.bound = data is not None
        self.errors: dict[str, list[str]] = {}
        data = data if data is not None else {}
        if self.bound:
            self.status = data.get("status", "")
            self.title = data.get("notify_title", "")
        else:
            self.status = self._initial_status()
            self.title = default_title(self.event)
        self.description = data.get("description", "")
        self.channels = [c for c in _getlist(data, "notify_channels") if c]
        self.recipients_text = data.get("notify_recipients", "")
        self.tabs = [
            Tab(key, TAB_LABELS.get(key, key), [self._row(entity, data) for entity in entities])
            for key, entities in context.tabs.items()
        ]
        requested_tab = data.get("tab") or ""
        self.recommended_tab = recommend if recommend in context.tabs else None
        self.recommend_note = ""
        if self.recommended_tab:
            self._recommend(self.recommended_tab)
        self.active_tab = self.recommended_tab or (
            requested_tab if requested_tab in context.tabs else self._first_tab()
        )
        if recommend is None:  # recommending submits nothing: nothing to object to yet
            self._check()

    # --- reading -------------------------------------------------------------------

    def _initial_status(self) -> str:
        # The panel is opened to handle the event: an Unhandled (or Failed) one
        # starts as Handling, which handling actions need anyway. Read-only, it
        # shows the event as it is.
        if self.read_only or self.event.status in (EventStatus.HANDLING, EventStatus.HANDLED):
            return self.event.status
        return EventStatus.HANDLING

    def _first_tab(self) -> str:
        for tab in self.tabs:
            if tab.recommended_count:
                return tab.key
        for tab in self.tabs:
            if tab.rows:
                return tab.key
        return self.tabs[0].key if self.tabs else ""

    def _row(self, entity: HandleableEntity, data) -> EntityRow:
        prefix = row_prefix(entity)
        default = entity.recommended or (entity.scenarios[0] if entity.scenarios else None)
        if not self.bound:
            own = [a.id for a in entity.accounts if a.id == self.event.account_id]
            return EntityRow(
                entity,
                selected=False,
                scenario_key=default.key if default else "",
                account_ids=own or [a.id for a in entity.accounts[:1]],
                validity=_days(default.default_validity_days if default else None),
            )
        row = EntityRow(
            entity,
            selected=bool(data.get(f"{prefix}-selected")),
            scenario_key=data.get(f"{prefix}-scenario", default.key if default else ""),
            account_ids=[],
            validity=data.get(f"{prefix}-validity", "").strip(),
        )
        for value in _getlist(data, f"{prefix}-scope"):
            try:
                row.account_ids.append(int(value))
            except ValueError:
                row.add_error("scope", "Choose the accounts from the list.")
        return row

    def _recommend(self, tab_key: str) -> None:
        tab = next(t for t in self.tabs if t.key == tab_key)
        filled = 0
        for row in tab.rows:
            scenario = row.entity.recommended
            if scenario is None:
                row.not_recommended = True
                continue
            changed = row.scenario_key != scenario.key
            row.selected = True
            row.scenario_key = scenario.key
            if changed or not row.validity:
                row.validity = _days(scenario.default_validity_days)
            if not row.account_ids:
                row.account_ids = [
                    a.id for a in row.entity.accounts if a.id == self.event.account_id
                ]
            filled += 1
        if not filled:
            self.recommend_note = NO_RECOMMENDATION
            return
        self.recommend_note = (
            f"The recommended policy is filled in for {filled} "
            f"entit{'y' if filled == 1 else 'ies'}; check the scope before you click OK."
        )
        if self.status == EventStatus.UNHANDLED:
            self.status = EventStatus.HANDLING

    def _check(self) -> None:
        """What can be told without the service: the shape of the values."""
        if not self.bound:
            return
        if not self.status:
            self.add_error("status", "Choose the event's status.")
        elif self.status not in EventStatus.values:
            self.add_error("status", "Choose Unhandled, Handling or Handled.")
        if len(self.description) > DESCRIPTION_MAX:
            self.add_error(
                "description", f"The description is longer than {DESCRIPTION_MAX} characters."
            )
        for row in self.rows:
            if row.selected and row.takes_validity and row.validity:
                days = _int(row.validity)
                if days is None or days < 1:
                    row.add_error("validity_days", "Enter a number of days, 1 or more.")
        self._show_errors()

    def _show_errors(self) -> None:
        """Show the first tab with an error, so that the error is seen."""
        for tab in self.tabs:
            if tab.has_errors:
                self.active_tab = tab.key
                return

    # --- what the panel shows ----------------------------------------------------------

    @property
    def rows(self) -> list[EntityRow]:
        return [row for tab in self.tabs for row in tab.rows]

    @property
    def selected_rows(self) -> list[EntityRow]:
        return [row for row in self.rows if row.selected]

    @property
    def status_choices(self):
        return [(s.value, s.label) for s in CHOOSABLE_STATUSES]

    @property
    def channel_choices(self):
        return Channel.choices

    @property
    def recipients(self) -> list[str]:
        found = (r.strip() for r in _RECIPIENT_SEPARATORS.split(self.recipients_text))
        return list(dict.fromkeys(r for r in found if r))

    @property
    def has_errors(self) -> bool:
        return bool(self.errors) or any(row.errors for row in self.rows)

    def is_valid(self) -> bool:
        return self.bound and not self.has_errors

    def add_error(self, name: str, message: str) -> None:
        self.errors.setdefault(name, []).append(message)

    def add_handling_error(self, error: HandlingError) -> None:
        """Place the service's error next to the field it names."""
        match = _ACTION_FIELD.match(error.field)
        actions = self.selected_rows
        if match and int(match[1]) < len(actions):
            part = match[2] if match[2] in ("scenario", "scope", "validity_days") else "entity"
            actions[int(match[1])].add_error(part, error.message)
            self._show_errors()
        elif error.field in ("status", "description"):
            self.add_error(error.field, error.message)
        elif error.field.startswith("notification."):
            # notification.recipients -> the notify_recipients field.
            self.add_error("notify_" + error.field.partition(".")[2], error.message)
        else:
            self.add_error("form", error.message)

    # --- what the service gets ------------------------------------------------------

    def handling_request(self) -> HandlingRequest:
        """The request for ``handle_event``, in the order of the selected rows
        (an error about ``actions[i]`` belongs to the i-th selected row)."""
        return HandlingRequest(
            status=self.status,
            description=self.description.strip(),
            actions=tuple(self._action(row) for row in self.selected_rows),
            notification=self._notification(),
        )

    def _action(self, row: EntityRow) -> ActionChoice:
        # A scenario without a validity period ignores the (hidden) field.
        days = _int(row.validity) if row.takes_validity else None
        return ActionChoice(
            entity_type=row.entity.entity_type,
            value=row.entity.value,
            scenario_key=row.scenario_key,
            account_ids=tuple(row.account_ids),
            validity_days=days,
        )

    def _notification(self) -> NotificationChoice | None:
        # Nothing asked for: no notification. Recipients without a channel (or
        # the reverse) are an error the service names.
        if not self.channels and not self.recipients:
            return None
        return NotificationChoice(
            channels=tuple(self.channels), recipients=tuple(self.recipients), title=self.title
        )


def _getlist(data, name: str) -> list[str]:
    return data.getlist(name) if hasattr(data, "getlist") else list(data.get(name, []))


def _int(value) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def _days(days: int | None) -> str:
    return "" if days is None else str(days)
