from django.apps import AppConfig


class SecopsConfig(AppConfig):
    name = "secops"
    verbose_name = "Tenancy"

    def ready(self):
        from django.db.models.signals import pre_save

        from secops.tenancy import fill_organisation_on_save

        # Tenant rows take their organisation from their parent (secops.tenancy).
        pre_save.connect(fill_organisation_on_save, dispatch_uid="secops.fill_organisation")
