from django.urls import path

from events import export_views, tracing_views, views, whitelist_views

app_name = "events"

urlpatterns = [
    path("events/", views.event_list, name="list"),
    path("events/<int:event_id>/", views.event_detail, name="detail"),
    path(
        "events/<int:event_id>/whitelist/",
        whitelist_views.add_to_whitelist,
        name="add_to_whitelist",
    ),
    path("events/<int:event_id>/tracing.json", tracing_views.tracing_json, name="tracing_json"),
    path("events/<int:event_id>/tracing/logs/", tracing_views.tracing_logs, name="tracing_logs"),
    path("events/tracing/", tracing_views.tracing_multi, name="tracing_multi"),
    path("events/export/", export_views.export_start, name="export_start"),
    path("events/exports/<int:job_id>/", export_views.export_status, name="export_status"),
    path(
        "events/exports/<int:job_id>/download/",
        export_views.export_download,
        name="export_download",
    ),
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
