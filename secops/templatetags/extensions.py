from django import template

from secops.extensions import POINTS

register = template.Library()


@register.simple_tag
def contributions(point: str, *args):
    """What the providers of the extension point named ``point`` give for ``args``."""
    try:
        return POINTS[point].collect(*args)
    except KeyError:
        raise template.TemplateSyntaxError(f"No extension point named {point!r}.") from None
