"""Names instead of ids: ``{{ alert.type|alert_type_label }}``, ``{{ row.source|source_label }}``.

Unknown values come from the senders and are shown as they are; the
template escapes them like any other text.
"""

from django import template

from alerts import models

register = template.Library()


@register.filter
def alert_type_label(value) -> str:
    return models.alert_type_label(value)


@register.filter
def source_label(value) -> str:
    return models.source_label(value)
