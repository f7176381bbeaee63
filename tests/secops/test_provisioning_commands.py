"""create_organisation, create_account and create_user: idempotent provisioning
from the command line, with the services' messages as errors."""

import os
import re
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from secops.enums import RegionGroup, Role
from secops.models import Account, AccountMembership, Organisation, OrganisationMembership
from tests import factories

REPO = Path(__file__).resolve().parents[2]
STRONG_PASSWORD = "Lantern-Orchard-58"


def run(*args, **options) -> str:
    out = StringIO()
    call_command(*args, stdout=out, **options)
    return out.getvalue()


@pytest.fixture
def acme(db):
    organisation = factories.make_organisation("Acme")
    factories.make_account(organisation, uid="1111111111111111", name="Acme Prod")
    factories.make_account(organisation, uid="2222222222222222", name="Acme Intl")
    return organisation


# --- create_organisation --------------------------------------------------------


@pytest.mark.django_db
def test_it_creates_an_organisation():
    output = run("create_organisation", "Acme")

    assert output.strip() == "Created organisation Acme"
    assert list(Organisation.objects.values_list("name", flat=True)) == ["Acme"]


@pytest.mark.django_db
def test_it_leaves_an_existing_organisation_as_it_is():
    run("create_organisation", "Acme")

    output = run("create_organisation", "Acme")

    assert output.strip() == "Organisation Acme already exists"
    assert Organisation.objects.count() == 1


@pytest.mark.django_db
def test_it_refuses_an_organisation_without_a_name():
    with pytest.raises(CommandError, match="needs a name"):
        run("create_organisation", "   ")

    assert not Organisation.objects.exists()


# --- create_account -------------------------------------------------------------


def create_account(*extra, uid="3333333333333333", region="cn", organisation="Acme"):
    return run(
        "create_account",
        f"--organisation={organisation}",
        f"--uid={uid}",
        "--name=Acme Lab",
        f"--region={region}",
        *extra,
    )


def test_it_creates_a_managed_account(acme):
    output = create_account()

    account = Account.objects.get(uid="3333333333333333")
    assert output.strip() == "Created account Acme Lab (3333333333333333)"
    assert (account.organisation, account.name, account.home_region, account.managed) == (
        acme,
        "Acme Lab",
        RegionGroup.CHINA,
        True,
    )


def test_it_creates_an_unmanaged_account_outside_china(acme):
    create_account("--unmanaged", region="intl")

    account = Account.objects.get(uid="3333333333333333")
    assert (account.home_region, account.managed) == (RegionGroup.OUTSIDE_CHINA, False)


def test_it_leaves_an_existing_account_as_it_is(acme):
    create_account()

    output = create_account()

    assert "already exists and is up to date" in output
    assert Account.objects.filter(uid="3333333333333333").count() == 1


def test_it_brings_an_existing_account_up_to_date(acme):
    create_account()

    create_account("--unmanaged", region="intl")

    account = Account.objects.get(uid="3333333333333333")
    assert (account.home_region, account.managed) == (RegionGroup.OUTSIDE_CHINA, False)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"organisation": "Umbrella"}, "No organisation named 'Umbrella'."),
        ({"uid": "12ab"}, "Account uid '12ab' must be 6 to 32 digits."),
        ({"region": "eu"}, "Region must be one of cn, intl."),
    ],
)
def test_it_explains_why_it_cannot_create_an_account(acme, options, message):
    with pytest.raises(CommandError) as error:
        create_account(**options)

    assert str(error.value) == message
    assert Account.objects.count() == 2


def test_it_refuses_an_account_of_another_organisation(acme):
    factories.make_account(factories.make_organisation("Umbrella"), uid="9999999999999999")

    with pytest.raises(CommandError, match="already belongs to another organisation"):
        create_account(uid="9999999999999999")

    assert Account.objects.get(uid="9999999999999999").organisation.name == "Umbrella"


# --- create_user ----------------------------------------------------------------


def create_user(*extra, username="dana", password=STRONG_PASSWORD, **options):
    password_option = [f"--password={password}"] if password is not None else []
    return run(
        "create_user",
        "--organisation=Acme",
        f"--username={username}",
        *password_option,
        *extra,
        **options,
    )


def memberships_of(user) -> set[tuple[str, str]]:
    return set(AccountMembership.objects.filter(user=user).values_list("account__uid", "role"))


def test_it_creates_a_user_with_memberships(acme):
    output = create_user("--member=1111111111111111:analyst", "--member=2222222222222222:viewer")

    user = get_user_model().objects.get(username="dana")
    assert "Created user dana in Acme" in output
    assert user.check_password(STRONG_PASSWORD)
    assert user.organisation_membership.organisation == acme
    assert not user.organisation_membership.is_global_admin
    assert memberships_of(user) == {
        ("1111111111111111", Role.ANALYST),
        ("2222222222222222", Role.VIEWER),
    }


def test_it_creates_a_global_administrator(acme):
    create_user("--global-admin", "--member=1111111111111111:admin")

    membership = OrganisationMembership.objects.get(user__username="dana")
    assert membership.is_global_admin


def test_it_creates_the_same_user_only_once(acme):
    create_user("--member=1111111111111111:analyst")

    output = create_user("--member=1111111111111111:analyst")

    assert "Updated user dana in Acme" in output
    assert get_user_model().objects.filter(username="dana").count() == 1
    assert OrganisationMembership.objects.filter(user__username="dana").count() == 1
    assert AccountMembership.objects.filter(user__username="dana").count() == 1


def test_it_changes_the_role_of_an_existing_membership(acme):
    create_user("--member=1111111111111111:viewer")

    create_user("--member=1111111111111111:admin")

    user = get_user_model().objects.get(username="dana")
    assert memberships_of(user) == {("1111111111111111", Role.ADMIN)}


def test_it_keeps_an_existing_users_password_when_none_is_given(acme):
    create_user()

    create_user("--member=1111111111111111:analyst", password=None)

    assert get_user_model().objects.get(username="dana").check_password(STRONG_PASSWORD)


@pytest.mark.parametrize(
    ("member", "message"),
    [
        (
            "1111111111111111",
            "Membership '1111111111111111' must look like UID:ROLE with ROLE one of "
            "admin, analyst, viewer.",
        ),
        (
            "1111111111111111:owner",
            "Membership '1111111111111111:owner' must look like UID:ROLE with ROLE one of "
            "admin, analyst, viewer.",
        ),
        ("5555555555555555:analyst", "No account 5555555555555555 in organisation 'Acme'."),
    ],
)
def test_it_explains_a_membership_it_cannot_give(acme, member, message):
    with pytest.raises(CommandError) as error:
        create_user(f"--member={member}")

    assert str(error.value) == message
    assert not get_user_model().objects.filter(username="dana").exists()


def test_it_refuses_a_membership_in_another_organisations_account(acme):
    factories.make_account(factories.make_organisation("Umbrella"), uid="9999999999999999")

    with pytest.raises(CommandError, match="No account 9999999999999999 in organisation 'Acme'"):
        create_user("--member=9999999999999999:analyst")

    assert not get_user_model().objects.filter(username="dana").exists()


def test_it_refuses_a_user_of_an_unknown_organisation(db):
    with pytest.raises(CommandError, match=re.escape("No organisation named 'Acme'.")):
        create_user()


def test_it_refuses_a_user_of_another_organisation(acme):
    factories.make_user(factories.make_organisation("Umbrella"), "dana")

    with pytest.raises(
        CommandError, match=re.escape("User 'dana' belongs to another organisation.")
    ):
        create_user()


@pytest.mark.parametrize(
    ("username", "password", "reason"),
    [
        ("dana", "short1", "too short"),
        ("dana", "password123", "too common"),
        ("orchardkeeper", "orchardkeeper7", "too similar to the username"),
    ],
)
def test_it_refuses_a_weak_password(acme, username, password, reason):
    with pytest.raises(CommandError, match=f"Password rejected: .*{reason}"):
        create_user(username=username, password=password)

    assert not get_user_model().objects.filter(username=username).exists()


class Terminal(StringIO):
    def isatty(self):
        return True


def test_it_asks_for_a_new_users_password_twice_in_a_terminal(acme, monkeypatch):
    prompts = []

    def type_password(prompt):
        prompts.append(prompt)
        return STRONG_PASSWORD

    monkeypatch.setattr("getpass.getpass", type_password)

    create_user(password=None, stdin=Terminal())

    assert prompts == ["Password: ", "Password (again): "]
    assert get_user_model().objects.get(username="dana").check_password(STRONG_PASSWORD)


def test_it_refuses_two_different_passwords(acme, monkeypatch):
    typed = iter([STRONG_PASSWORD, STRONG_PASSWORD + "x"])
    monkeypatch.setattr("getpass.getpass", lambda prompt: next(typed))

    with pytest.raises(CommandError, match=re.escape("The two passwords do not match.")):
        create_user(password=None, stdin=Terminal())

    assert not get_user_model().objects.filter(username="dana").exists()


def test_it_needs_a_password_for_a_new_user_outside_a_terminal(acme):
    with pytest.raises(CommandError, match="pass --password, or run the command in a terminal"):
        create_user(password=None, stdin=StringIO())

    assert not get_user_model().objects.filter(username="dana").exists()


# --- as a process: exit codes and streams -----------------------------------------


@pytest.fixture(scope="module")
def database_url(tmp_path_factory) -> str:
    """A migrated SQLite file that the ``manage.py`` processes share.

    pytest-django's test database lives in this process (in memory on SQLite),
    where a child process cannot see it.
    """
    url = f"sqlite:///{tmp_path_factory.mktemp('provisioning') / 'db.sqlite3'}"
    manage("migrate", "--no-input", database_url=url, check=True)
    return url


def manage(*args, database_url: str, check=False) -> subprocess.CompletedProcess:
    env = {**os.environ, "DEBUG": "true", "DATABASE_URL": database_url}
    env.pop("REDIS_URL", None)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=check,
    )


def test_it_exits_with_0_when_it_created_something(database_url):
    result = manage("create_organisation", "Globex", database_url=database_url)

    assert (result.returncode, result.stdout.strip()) == (0, "Created organisation Globex")


def test_it_exits_with_1_and_the_reason_on_stderr(database_url):
    result = manage(
        "create_account",
        "--organisation=Initech",
        "--uid=4444444444444444",
        "--name=Initech Prod",
        "--region=cn",
        database_url=database_url,
    )

    assert result.returncode == 1
    assert result.stdout == ""
    assert "No organisation named 'Initech'." in result.stderr


def test_it_exits_with_2_on_a_usage_error(database_url):
    result = manage("create_user", "--organisation=Globex", database_url=database_url)

    assert result.returncode == 2
    assert "the following arguments are required: --username" in result.stderr
