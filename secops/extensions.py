"""Extension points: how a page of a lower app shows what higher apps add.

Layers import downwards only, so the Alert page (alerts) cannot link to the
event an alert is in (events) or to the whitelist group that matched it
(whitelist). Instead the lower app declares an ``ExtensionPoint`` and the
higher app registers a provider for it in its ``AppConfig.ready()``. The page
asks the point; with no provider registered it simply shows nothing extra.


In a template, ``{% load extensions %}{% contributions "alerts.rule_pages" as
pages %}`` asks a point by name (extra arguments are passed to providers).
"""

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Link:
    """A link a higher app contributes to a page: its text, address and an
    optional sentence shown after it."""

    text: str
    url: str
    description: str = ""


# Every point by its name, for the ``{% contributions %}`` template tag.
POINTS: dict[str, "ExtensionPoint"] = {}


class ExtensionPoint:
    def __init__(self, name: str):
        if name in POINTS:
            raise ValueError(f"An extension point named {name!r} exists already.")
        self.name = name
        self._providers: list[Callable] = []
        POINTS[name] = self

    def __repr__(self):
        return f"<ExtensionPoint {self.name}: {len(self._providers)} providers>"

    def register(self, provider: Callable) -> Callable:
        """Add a provider (once; ``ready()`` may run more than once in tests)."""
        if provider not in self._providers:
            self._providers.append(provider)
        return provider

    def collect(self, *args, **kwargs) -> list:
        """What every provider returns for these arguments, None left out."""
        results = (provider(*args, **kwargs) for provider in self._providers)
        return [result for result in results if result is not None]
