from django.urls import path

from cloudsiem import views

app_name = "cloudsiem"

urlpatterns = [
    path("access-keys/", views.access_keys, name="access_keys"),
    path("access-keys/new/", views.create_access_key, name="create_access_key"),
    path(
        "access-keys/<int:access_key_id>/revoke/",
        views.revoke_access_key,
        name="revoke_access_key",
    ),
]
