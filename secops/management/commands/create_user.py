"""``manage.py create_user``: create or update a user of an organisation (idempotent)."""

import getpass
import sys

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from secops.services import ProvisioningError, create_user, get_organisation, parse_membership


class Command(BaseCommand):
    help = (
        "Create a user of an organisation, or update an existing one's memberships and global "
        "administrator flag. Without --password a new user's password is asked for twice; an "
        "existing user's password is left as it is."
    )
    # As in Django's createsuperuser: tests pass a stand-in for the terminal.
    stealth_options = ("stdin",)

    def add_arguments(self, parser):
        parser.add_argument("--organisation", required=True, help="Name of the organisation.")
        parser.add_argument("--username", required=True)
        parser.add_argument(
            "--password",
            help="Avoid on shared machines: it stays in the shell history and process list.",
        )
        parser.add_argument(
            "--member",
            action="append",
            default=[],
            metavar="UID:ROLE",
            help="Membership of an account of the organisation; ROLE is admin, analyst or "
            "viewer. Repeat for several accounts.",
        )
        parser.add_argument(
            "--global-admin",
            action="store_true",
            help="May use the Global Account View of every managed account.",
        )

    def execute(self, *args, **options):
        self.stdin = options.get("stdin", sys.stdin)
        return super().execute(*args, **options)

    def handle(self, *args, organisation, username, password, member, global_admin, **options):
        try:
            found = get_organisation(organisation)
            memberships = [parse_membership(spec) for spec in member]
        except ProvisioningError as error:
            raise CommandError(str(error)) from error

        User = get_user_model()
        existing = User.objects.filter(username=username).first()
        if password is None and existing is None:
            password = self.ask_for_password()
        if password is not None:
            check_password_strength(password, existing or User(username=username))

        try:
            user, created = create_user(
                found,
                username=username,
                password=password,
                memberships=memberships,
                global_admin=global_admin,
            )
        except ProvisioningError as error:
            raise CommandError(str(error)) from error

        if created:
            self.stdout.write(self.style.SUCCESS(f"Created user {user.username} in {found.name}"))
        else:
            self.stdout.write(f"Updated user {user.username} in {found.name}")
        if global_admin:
            self.stdout.write("  global administrator")
        for uid, role in memberships:
            self.stdout.write(f"  {role} of account {uid}")

    def ask_for_password(self) -> str:
        if not (hasattr(self.stdin, "isatty") and self.stdin.isatty()):
            raise CommandError(
                "A new user needs a password: pass --password, or run the command in a "
                "terminal to be asked for it."
            )
        first = getpass.getpass("Password: ")
        second = getpass.getpass("Password (again): ")
        if first != second:
            raise CommandError("The two passwords do not match.")
        return first


def check_password_strength(password: str, user) -> None:
    """Django's password validators, as the settings configure them."""
    try:
        validate_password(password, user)
    except ValidationError as error:
        raise CommandError("Password rejected: " + " ".join(error.messages)) from error
