from django.urls import path

from whitelist import views

app_name = "whitelist"

urlpatterns = [
    path("whitelist/", views.whitelist_settings, name="settings"),
    path("whitelist/scenarios/<slug:key>/", views.scenario_groups, name="scenario"),
    path("whitelist/groups/new/", views.group_form, name="group_create"),
    path("whitelist/groups/<int:group_id>/", views.group_form, name="group_edit"),
    path("whitelist/groups/<int:group_id>/toggle/", views.group_toggle, name="group_toggle"),
    path("whitelist/groups/<int:group_id>/delete/", views.group_delete, name="group_delete"),
    path("whitelist/preview/", views.preview, name="preview"),
]
