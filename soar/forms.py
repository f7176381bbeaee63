"""The bulk handling form of the Security Event Handling list.

Its fields carry the prefix ``bulk`` (``bulk-action``, ``bulk-status``, ...):
the request also holds the list's own fields (its filters, whose ``status``
is another field altogether, and the selected events' ``ids``).
"""

from django import forms

from events.models import EventStatus
from secops.params import positive_int
from soar.bulk import MAX_DESCRIPTION, MAX_EVENTS, SETTABLE_STATUSES, BulkRequest
from soar.models import BulkAction

PREFIX = "bulk"
SELECTED, ALL_MATCHING = "selected", "all"


class BulkHandlingForm(forms.Form):
    action = forms.ChoiceField(choices=BulkAction.choices, initial=BulkAction.SET_STATUS)
    status = forms.CharField(required=False)
    description = forms.CharField(required=False, max_length=MAX_DESCRIPTION)
    target = forms.ChoiceField(
        choices=[(SELECTED, "Selected events"), (ALL_MATCHING, "All matching events")]
    )

    def __init__(self, data=None, **kwargs):
        super().__init__(data, prefix=PREFIX, **kwargs)

    def clean_status(self):
        status = self.cleaned_data["status"]
        if status == EventStatus.FAILED:
            raise forms.ValidationError("Failed is set only when a handling task fails.")
        if status and status not in SETTABLE_STATUSES:
            raise forms.ValidationError("Choose Unhandled, Handling or Handled.")
        return status

    def clean(self):
        data = super().clean()
        if data.get("action") == BulkAction.SET_STATUS and "status" in data and not data["status"]:
            self.add_error("status", "Choose the status to set.")
        return data

    def bulk_request(self) -> BulkRequest:
        data = self.cleaned_data
        return BulkRequest(
            action=data["action"],
            target_status=data["status"] if data["action"] == BulkAction.SET_STATUS else "",
            description=data["description"],
        )


class InvalidEventIds(ValueError):
    pass


def event_ids(values: list[str]) -> list[int]:
    """Event ids from repeated ``ids`` fields and/or comma-separated ones, in order.

    Reads no further than one id past ``MAX_EVENTS``: that is enough to refuse.
    Raises ``InvalidEventIds`` for anything that is not an event id.
    """
    ids: dict[int, None] = {}
    for value in values:
        for part in value.split(","):
            part = part.strip()
            if not part:
                continue
            number = positive_int(part)
            if number is None:
                raise InvalidEventIds(part)
            ids[number] = None
            if len(ids) > MAX_EVENTS:
                return list(ids)
    return list(ids)
