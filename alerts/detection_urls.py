from django.urls import path

from alerts import detection_views as views

app_name = "detection"

urlpatterns = [
    path("detection-rules/sigma/", views.rules, name="rules"),
    path("detection-rules/sigma/new/", views.rule_form, name="rule_new"),
    path("detection-rules/sigma/check/", views.check, name="check"),
    path("detection-rules/sigma/dry-run/", views.dry_run, name="dry_run"),
    path("detection-rules/sigma/<int:sigma_id>/", views.rule_form, name="rule_edit"),
    path("detection-rules/sigma/<int:sigma_id>/toggle/", views.rule_toggle, name="rule_toggle"),
    path("detection-rules/sigma/<int:sigma_id>/delete/", views.rule_delete, name="rule_delete"),
    path("detection-rules/sigma/predefined/<slug:key>/", views.predefined, name="predefined"),
    path(
        "detection-rules/sigma/predefined/<slug:key>/toggle/",
        views.predefined_toggle,
        name="predefined_toggle",
    ),
]
