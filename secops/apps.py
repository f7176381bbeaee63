from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules


class SecopsConfig(AppConfig):
    name = "secops"
    verbose_name = "Tenancy"

    def ready(self):
        from django.contrib.auth import signals
        from django.core.signals import request_finished
        from django.db.models.signals import pre_save

        from secops import audit
        from secops.logs import clear_request_id
        from secops.tenancy import fill_organisation_on_save

        # Each app declares its Prometheus metrics in its own metrics.py.
        autodiscover_modules("metrics")
        # A request's id stays on the log lines until its response is done.
        request_finished.connect(clear_request_id, dispatch_uid="secops.logs.clear_request_id")

        # Logins, failed logins (django-axes lockouts included) and logouts
        # are written to the audit log.
        signals.user_logged_in.connect(audit.on_login, dispatch_uid="audit_login")
        signals.user_logged_out.connect(audit.on_logout, dispatch_uid="audit_logout")
        signals.user_login_failed.connect(audit.on_login_failed, dispatch_uid="audit_login_failed")

        # Tenant rows take their organisation from their parent (secops.tenancy).
        pre_save.connect(fill_organisation_on_save, dispatch_uid="secops.fill_organisation")
