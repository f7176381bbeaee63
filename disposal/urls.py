from django.urls import path

from disposal import entity_views

app_name = "disposal"

urlpatterns = [
    # The entity page: context, threat intelligence, related alerts and events, handling.
    path(
        "entities/<str:entity_type>/<str:digest>/",
        entity_views.entity_detail,
        name="entity",
    ),
]
