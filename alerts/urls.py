from django.urls import path

from alerts import views

app_name = "alerts"

urlpatterns = [
    path("alerts/", views.alert_list, name="list"),
    path("alerts/<int:alert_id>/", views.alert_detail, name="detail"),
    path("data-sources/", views.data_sources, name="data_sources"),
    path("data-sources/api-keys/", views.create_api_key, name="create_api_key"),
    path("data-sources/api-keys/<int:key_id>/revoke/", views.revoke_api_key, name="revoke_api_key"),
]
