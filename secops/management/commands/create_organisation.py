"""``manage.py create_organisation NAME``: create a customer organisation (idempotent)."""

from django.core.management.base import BaseCommand, CommandError

from secops.services import ProvisioningError, create_organisation


class Command(BaseCommand):
    help = "Create an organisation. Running it again for the same name changes nothing."

    def add_arguments(self, parser):
        parser.add_argument("name", help="The organisation's name, e.g. 'Acme'.")

    def handle(self, *args, name, **options):
        try:
            organisation, created = create_organisation(name)
        except ProvisioningError as error:
            raise CommandError(str(error)) from error
        if created:
            self.stdout.write(self.style.SUCCESS(f"Created organisation {organisation.name}"))
        else:
            self.stdout.write(f"Organisation {organisation.name} already exists")
