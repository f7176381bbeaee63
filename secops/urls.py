from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from secops import api, audit_views, views

urlpatterns = [
    path("", views.home, name="home"),
    path("scope/", views.change_scope, name="change_scope"),
    path("healthz", views.healthz, name="healthz"),
    path("metrics", views.prometheus_metrics, name="metrics"),
    path("favicon.ico", views.favicon, name="favicon"),
    path(
        "login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("audit/", audit_views.audit_list, name="audit_log"),
    path("audit/<int:audit_entry_id>/", audit_views.audit_detail, name="audit_entry"),
    path(
        "audit/export.csv",
        audit_views.audit_export,
        {"file_format": "csv"},
        name="audit_export_csv",
    ),
    path(
        "audit/export.xlsx",
        audit_views.audit_export,
        {"file_format": "xlsx"},
        name="audit_export_xlsx",
    ),
    path("", include("alerts.urls")),
    path("", include("alerts.detection_urls")),
    path("", include("events.urls")),
    path("", include("whitelist.urls")),
    path("", include("disposal.urls")),
    path("", include("soar.urls")),
    path("", include("cloudsiem.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", api.urlpatterns()),
]

# The console's error pages (secops.errors).
handler400 = "secops.errors.bad_request"
handler403 = "secops.errors.permission_denied"
handler404 = "secops.errors.page_not_found"
handler500 = "secops.errors.server_error"
