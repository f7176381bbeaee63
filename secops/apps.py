from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules


class SecopsConfig(AppConfig):
    name = "secops"
    verbose_name = "Tenancy"

    def ready(self):
        # Each app declares its Prometheus metrics in its own metrics.py.
        autodiscover_modules("metrics")
        # A request's id stays on the log lines until its response is done.
        from django.core.signals import request_finished

        from secops.logs import clear_request_id

        request_finished.connect(clear_request_id, dispatch_uid="secops.logs.clear_request_id")
