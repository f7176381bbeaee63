"""Links from the alert pages to the entity page (the ``alerts.entity_links`` point)."""

from django.urls import reverse


def entity_page_url(entity) -> str:
    """The entity page of an alert's entity (``alerts.models.Entity``). The page
    checks the viewer's scope itself; the link holds only the type and digest."""
    return reverse("disposal:entity", args=[entity.type, entity.digest])
