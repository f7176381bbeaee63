"""The filter forms of the list pages, read from a query string field by field.

A list page's URL is typed, pasted into tickets and edited by hand. One value
that cannot be used must not throw away the others: the field it belongs to
is marked with a message an analyst understands and left out (it takes its
default), and the list, its counters and its chart follow every other filter.
"""

from datetime import date
from functools import cached_property

from django import forms


class ListFilterForm(forms.Form):
    """Filters of a list page; ``filters()`` are the ones that apply.

    After validation ``cleaned_data`` holds every field: its cleaned value when
    it is valid, its default (the field's initial value, or its empty value)
    when it is not or is empty. A subclass that finds a problem across fields in
    ``clean()`` (an end before a start) leaves the field out with ``drop``,
    never with a form-wide error, so that the problem is shown next to a field
    and the other filters still apply.
    """

    # Fields the query string carries but the form shows no input for.
    unshown_fields = ("page",)

    def default(self, name: str):
        """What field ``name`` means when it is empty or left out."""
        field = self.fields[name]
        return field.clean(field.initial)

    def drop(self, name: str, message: str) -> None:
        """Leave out field ``name`` with ``message`` next to it; it takes its default."""
        self.add_error(name, message)
        self.cleaned_data[name] = self.default(name)

    def clean(self):
        data = super().clean()
        for name, field in self.fields.items():
            left_out = name not in data
            if left_out or (field.initial is not None and data[name] in field.empty_values):
                data[name] = self.default(name)
        return data

    def filters(self) -> dict:
        """The filters that apply: each valid field, and the default of each invalid one."""
        self.is_valid()
        return self.cleaned_data

    @property
    def fields_in_form(self) -> list:
        """The bound fields the form shows an input (and a message slot) for."""
        return [self[name] for name in self.fields if name not in self.unshown_fields]

    @cached_property
    def shown(self) -> dict:
        """What each text or date input shows: the text typed into a field that
        was left out (so it can be corrected), the applied value otherwise."""
        filters = self.filters()
        shown = {}
        for name in self.fields:
            value = self[name].value() if name in self.errors else filters.get(name)
            if isinstance(value, date):
                value = value.isoformat()
            shown[name] = "" if value is None else value
        return shown
