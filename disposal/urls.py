from django.urls import path

from disposal import handle_views

app_name = "disposal"

urlpatterns = [
    # The Handle panel of a security event and its Message Preview.
    path("events/<int:event_id>/handle/", handle_views.handle, name="handle"),
    path(
        "events/<int:event_id>/handle/preview/",
        handle_views.handle_preview,
        name="handle_preview",
    ),
]
