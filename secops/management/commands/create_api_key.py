from django.core.management.base import BaseCommand, CommandError

from secops import services
from secops.models import Account


class Command(BaseCommand):
    help = (
        "Create an API key for one account (--account UID) or for every account of an "
        "organisation (--organisation NAME). The key is the last word printed."
    )

    def add_arguments(self, parser):
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument("--account", metavar="UID", help="uid of the account the key may use")
        target.add_argument("--organisation", metavar="NAME", help="organisation-wide key")
        parser.add_argument("--name", default="", help="a label for the key")

    def handle(self, *args, account=None, organisation=None, name="", **options):
        try:
            if account:
                try:
                    target = Account.objects.select_related("organisation").get(uid=account)
                except Account.DoesNotExist:
                    raise CommandError(f"No account with uid {account}.") from None
                org = target.organisation
            else:
                org = services.get_organisation(organisation)
                target = None
            api_key, secret = services.create_api_key(
                organisation=org, account=target, name=name or "Command-line key"
            )
        except services.ProvisioningError as exc:
            raise CommandError(str(exc)) from None
        scope = f"account {target.uid}" if target else f"organisation {org.name}"
        self.stdout.write(
            f"Created API key {api_key.prefix} for {scope}. Store it now; it is not shown again:"
        )
        self.stdout.write(secret)
