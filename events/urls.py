from django.urls import path

from events import views

app_name = "events"

urlpatterns = [
    path("events/", views.event_list, name="list"),
    path("events/<int:event_id>/", views.event_detail, name="detail"),
    path("detection-rules/", views.rules, name="rules"),
    path("detection-rules/aggregation/new/", views.rule_form, name="rule_create"),
    path("detection-rules/aggregation/<int:rule_id>/", views.rule_form, name="rule_edit"),
    path(
        "detection-rules/aggregation/<int:rule_id>/toggle/", views.rule_toggle, name="rule_toggle"
    ),
    path(
        "detection-rules/aggregation/<int:rule_id>/delete/", views.rule_delete, name="rule_delete"
    ),
]
