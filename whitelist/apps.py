from django.apps import AppConfig


class WhitelistConfig(AppConfig):
    name = "whitelist"

    def ready(self):
        from alerts.extensions import whitelist_notes
        from whitelist import contributions

        whitelist_notes.register(contributions.whitelist_notes)
