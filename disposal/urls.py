from django.urls import path

from disposal import connector_views

app_name = "disposal"

urlpatterns = []

# The account's connector settings (Alibaba Cloud, webhook or the simulated cloud).
urlpatterns += [
    path(
        "accounts/<int:account_id>/connector/",
        connector_views.connector_settings,
        name="connector_settings",
    ),
]
