"""``manage.py create_account``: add a cloud account to an organisation (idempotent)."""

from django.core.management.base import BaseCommand, CommandError

from secops.services import ProvisioningError, create_account, get_organisation


class Command(BaseCommand):
    help = (
        "Create a cloud account of an organisation, or bring an existing one's name, "
        "region and managed flag up to date."
    )

    def add_arguments(self, parser):
        parser.add_argument("--organisation", required=True, help="Name of the organisation.")
        parser.add_argument("--uid", required=True, help="The cloud account id (6 to 32 digits).")
        parser.add_argument("--name", required=True, help="Display name of the account.")
        # Not an argparse choice: the service names the allowed regions in its error.
        parser.add_argument("--region", required=True, help="Home region group: cn or intl.")
        parser.add_argument(
            "--unmanaged",
            action="store_true",
            help="Leave the account out of the organisation's Global Account View.",
        )

    def handle(self, *args, organisation, uid, name, region, unmanaged, **options):
        try:
            account, created = create_account(
                get_organisation(organisation),
                uid=uid,
                name=name,
                region=region,
                managed=not unmanaged,
            )
        except ProvisioningError as error:
            raise CommandError(str(error)) from error
        if created:
            self.stdout.write(self.style.SUCCESS(f"Created account {account}"))
        else:
            self.stdout.write(f"Account {account} already exists and is up to date")
