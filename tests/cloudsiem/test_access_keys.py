"""The AccessKey page and ``manage.py create_access_key``: the secret is shown
once and stored encrypted; each user sees and revokes only their own keys."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from cloudsiem import services
from cloudsiem.models import AccessKey
from cloudsiem.services import create_access_key

pytestmark = pytest.mark.usefixtures("fast_password_hashing")


def test_it_creates_a_key_and_shows_the_secret_once(tenancy):
    client = tenancy.client_for(tenancy.bob)

    created = client.post(reverse("cloudsiem:create_access_key"), {"name": "SOC script"})
    listed = client.get(reverse("cloudsiem:access_keys"))

    key = AccessKey.objects.get(user=tenancy.bob)
    secret = services.secret_of(key)
    assert created.status_code == 200
    assert key.access_key_id in created.content.decode()
    assert secret in created.content.decode()
    # Stored encrypted, never as written; listed without it afterwards.
    assert secret not in key.secret_encrypted and key.secret_encrypted.startswith("enc1:")
    assert key.access_key_id in listed.content.decode()
    assert secret not in listed.content.decode()


def test_it_lists_only_the_callers_own_keys(tenancy):
    mine, _ = create_access_key(tenancy.bob, name="mine")
    theirs, _ = create_access_key(tenancy.alice, name="alice's")

    page = tenancy.client_for(tenancy.bob).get(reverse("cloudsiem:access_keys")).content.decode()

    assert mine.access_key_id in page and theirs.access_key_id not in page


def test_revoking_makes_the_key_refused(tenancy):
    key, _ = create_access_key(tenancy.bob)

    response = tenancy.client_for(tenancy.bob).post(
        reverse("cloudsiem:revoke_access_key", args=[key.id])
    )

    key.refresh_from_db()
    assert response.status_code == 302 and key.revoked_at is not None
    assert not key.is_active
    assert services.find_key(key.access_key_id).is_active is False


@pytest.mark.parametrize("caller", ["charlie", "alice"])
def test_nobody_revokes_another_users_key(tenancy, caller):
    """An outsider, and even the organisation's global administrator, get a 404."""
    key, _ = create_access_key(tenancy.bob)

    response = tenancy.client_for(getattr(tenancy, caller)).post(
        reverse("cloudsiem:revoke_access_key", args=[key.id])
    )

    key.refresh_from_db()
    assert response.status_code == 404 and key.revoked_at is None


def test_the_command_prints_the_pair_in_two_lines(tenancy):
    out = StringIO()

    call_command("create_access_key", "--user", "bob", stdout=out)

    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("AccessKeyId: ") and lines[1].startswith("AccessKeySecret: ")
    key = AccessKey.objects.get(access_key_id=lines[0].removeprefix("AccessKeyId: "))
    assert key.user == tenancy.bob
    assert services.secret_of(key) == lines[1].removeprefix("AccessKeySecret: ")


def test_the_command_names_an_unknown_user(db):
    with pytest.raises(CommandError, match="No user named 'nobody'"):
        call_command("create_access_key", "--user", "nobody", stdout=StringIO())
