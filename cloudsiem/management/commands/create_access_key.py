from django.core.management.base import BaseCommand, CommandError

from cloudsiem import services


class Command(BaseCommand):
    help = (
        "Create an AccessKey pair for the cloud SIEM compatible API, acting with the "
        "user's scope. Prints the AccessKeyId and the AccessKeySecret, which is not "
        "shown again."
    )

    def add_arguments(self, parser):
        parser.add_argument("--user", required=True, metavar="NAME", help="the key's user")
        parser.add_argument("--name", default="", help="a label for the key")

    def handle(self, *args, user, name="", **options):
        try:
            key, secret = services.create_access_key_for_username(user, name=name)
        except services.AccessKeyError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"AccessKeyId: {key.access_key_id}")
        self.stdout.write(f"AccessKeySecret: {secret}")
