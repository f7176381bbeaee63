"""Fixtures every suite shares, above all the three-user tenancy fixture.

``tenancy`` gives:
- ``alice``: global administrator of organisation "Acme" (accounts A in China,
  B outside China, both managed; C in China, not managed);
- ``bob``: analyst of account A only;
- ``charlie``: outsider, analyst of account X of another organisation.
"""

from dataclasses import dataclass

import pytest
from django.test import Client

from secops.enums import RegionGroup
from secops.models import Account, Organisation
from tests import factories

PASSWORD = "correct-horse-9"


@dataclass
class Tenancy:
    org: Organisation
    other_org: Organisation
    account_a: Account
    account_b: Account
    account_c: Account
    account_x: Account
    alice: object
    bob: object
    charlie: object

    def client_for(self, user) -> Client:
        client = Client()
        client.force_login(user)
        return client


@pytest.fixture
def tenancy(db) -> Tenancy:
    org = factories.make_organisation("Acme")
    other = factories.make_organisation("Umbrella")
    a = factories.make_account(
        org, uid="1111111111111111", name="Acme Prod", region=RegionGroup.CHINA
    )
    b = factories.make_account(
        org, uid="2222222222222222", name="Acme Intl", region=RegionGroup.OUTSIDE_CHINA
    )
    c = factories.make_account(
        org, uid="3333333333333333", name="Acme Lab", region=RegionGroup.CHINA, managed=False
    )
    x = factories.make_account(
        other, uid="9999999999999999", name="Umbrella Prod", region=RegionGroup.CHINA
    )
    alice = factories.make_user(org, "alice", password=PASSWORD, accounts=[a], global_admin=True)
    bob = factories.make_user(org, "bob", password=PASSWORD, accounts=[a])
    charlie = factories.make_user(other, "charlie", password=PASSWORD, accounts=[x])
    return Tenancy(org, other, a, b, c, x, alice, bob, charlie)
