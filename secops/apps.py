from django.apps import AppConfig


class SecopsConfig(AppConfig):
    name = "secops"
    verbose_name = "Tenancy"

    def ready(self):
        from django.contrib.auth import signals

        from secops import audit

        # Logins, failed logins (django-axes lockouts included) and logouts
        # are written to the audit log.
        signals.user_logged_in.connect(audit.on_login, dispatch_uid="audit_login")
        signals.user_logged_out.connect(audit.on_logout, dispatch_uid="audit_logout")
        signals.user_login_failed.connect(audit.on_login_failed, dispatch_uid="audit_login_failed")
