"""The view scope: how it is built from the session and how it filters every model."""

import pytest
from django.contrib.auth import get_user_model
from django.http import Http404

from alerts.models import Alert, Asset, LogRecord
from events.models import SecurityEvent
from secops.enums import RegionGroup, View
from secops.models import Account, AccountMembership, OrganisationMembership
from secops.scope import Scope, get_in_scope_or_404
from secops.services import (
    SESSION_ACCOUNT,
    SESSION_REGION,
    SESSION_VIEW,
    ScopeChange,
    build_scope,
    change_scope,
    selectable_accounts,
)
from tests import factories

CHINA = RegionGroup.CHINA
OUTSIDE_CHINA = RegionGroup.OUTSIDE_CHINA


def current_scope(account, region):
    return Scope(
        organisation_id=account.organisation_id,
        view=View.CURRENT,
        account_id=account.id,
        account_ids=frozenset({account.id}),
        region=region,
    )


# --- build_scope --------------------------------------------------------------


def test_it_defaults_to_the_first_account_and_its_home_region(tenancy):
    scope = build_scope(tenancy.bob, {})

    assert scope.view == View.CURRENT
    assert scope.organisation_id == tenancy.org.id
    assert scope.account_id == tenancy.account_a.id
    assert scope.account_ids == {tenancy.account_a.id}
    assert scope.region == CHINA


def test_it_defaults_to_the_home_region_of_the_chosen_account(tenancy):
    dave = factories.make_user(tenancy.org, "dave", accounts=[tenancy.account_b])

    scope = build_scope(dave, {})

    assert scope.account_id == tenancy.account_b.id
    assert scope.region == OUTSIDE_CHINA


def test_it_keeps_a_region_chosen_in_the_session(tenancy):
    scope = build_scope(tenancy.bob, {SESSION_REGION: OUTSIDE_CHINA})

    assert scope.account_id == tenancy.account_a.id
    assert scope.region == OUTSIDE_CHINA


def test_it_ignores_an_unknown_region_in_the_session(tenancy):
    scope = build_scope(tenancy.bob, {SESSION_REGION: "mars"})

    assert scope.region == CHINA


def test_it_gives_the_global_view_to_a_global_admin(tenancy):
    scope = build_scope(tenancy.alice, {SESSION_VIEW: View.GLOBAL})

    assert scope.is_global
    assert scope.account_id is None
    assert scope.organisation_id == tenancy.org.id


def test_it_makes_the_global_view_of_the_managed_accounts_of_the_organisation_only(tenancy):
    scope = build_scope(tenancy.alice, {SESSION_VIEW: View.GLOBAL})

    # C is not managed, X belongs to another organisation.
    assert scope.account_ids == {tenancy.account_a.id, tenancy.account_b.id}


def test_it_gives_the_current_view_to_an_analyst_asking_for_the_global_view(tenancy):
    scope = build_scope(tenancy.bob, {SESSION_VIEW: View.GLOBAL})

    assert not scope.is_global
    assert scope.account_ids == {tenancy.account_a.id}


def test_it_falls_back_to_the_current_view_when_the_global_admin_right_is_taken_away(tenancy):
    session = {SESSION_VIEW: View.GLOBAL}
    OrganisationMembership.objects.filter(user=tenancy.alice).update(is_global_admin=False)
    alice = get_user_model().objects.get(pk=tenancy.alice.pk)

    scope = build_scope(alice, session)

    assert not scope.is_global
    assert scope.account_ids == {tenancy.account_a.id}


def test_it_falls_back_when_the_stored_account_membership_was_removed(tenancy):
    AccountMembership.objects.create(user=tenancy.bob, account=tenancy.account_b)
    session = {SESSION_ACCOUNT: tenancy.account_b.id}
    assert build_scope(tenancy.bob, session).account_ids == {tenancy.account_b.id}

    AccountMembership.objects.filter(user=tenancy.bob, account=tenancy.account_b).delete()
    scope = build_scope(tenancy.bob, session)

    assert scope.account_ids == {tenancy.account_a.id}
    assert scope.account_id == tenancy.account_a.id


def test_it_never_lets_a_session_reach_another_organisations_account(tenancy):
    scope = build_scope(tenancy.alice, {SESSION_ACCOUNT: tenancy.account_x.id})

    assert scope.account_ids == {tenancy.account_a.id}


def test_it_gives_a_user_without_organisation_an_empty_scope(tenancy):
    factories.make_event(tenancy.account_a)
    user = get_user_model().objects.create_user("loner", password="correct-horse-9")

    scope = build_scope(user, {})

    assert scope == Scope.empty()
    assert not SecurityEvent.objects.in_scope(scope).exists()


def test_it_gives_a_member_of_no_account_a_scope_without_accounts(tenancy):
    eve = factories.make_user(tenancy.org, "eve")
    factories.make_event(tenancy.account_a)

    scope = build_scope(eve, {})

    assert scope.organisation_id == tenancy.org.id
    assert scope.account_ids == frozenset()
    assert not SecurityEvent.objects.in_scope(scope).exists()


# --- selectable accounts and change_scope -------------------------------------------


def test_it_lets_a_global_admin_select_every_account_of_the_organisation(tenancy):
    accounts = set(selectable_accounts(tenancy.alice))

    assert accounts == {tenancy.account_a, tenancy.account_b, tenancy.account_c}


def test_it_lets_an_analyst_select_only_the_accounts_they_are_a_member_of(tenancy):
    assert list(selectable_accounts(tenancy.bob)) == [tenancy.account_a]
    assert list(selectable_accounts(tenancy.charlie)) == [tenancy.account_x]


def test_it_stores_a_valid_scope_change(tenancy):
    session = {}

    errors = change_scope(
        tenancy.alice,
        session,
        ScopeChange(account_id=tenancy.account_b.id, region=OUTSIDE_CHINA),
    )

    assert errors == []
    assert session == {
        SESSION_ACCOUNT: tenancy.account_b.id,
        SESSION_VIEW: View.CURRENT,
        SESSION_REGION: OUTSIDE_CHINA,
    }


def test_it_refuses_the_global_view_to_an_analyst(tenancy):
    session = {}

    errors = change_scope(tenancy.bob, session, ScopeChange(view=View.GLOBAL))

    assert errors == ["Only global administrators can use the Global Account View."]
    assert session == {}


def test_it_refuses_an_account_of_another_organisation(tenancy):
    session = {}

    errors = change_scope(tenancy.alice, session, ScopeChange(account_id=tenancy.account_x.id))

    assert errors == ["You are not a member of that account."]
    assert session == {}


def test_it_refuses_an_unknown_view_and_region(tenancy):
    session = {}

    errors = change_scope(tenancy.alice, session, ScopeChange(view="everything", region="mars"))

    assert len(errors) == 2
    assert session == {}


# --- in_scope on every tenant-owned model --------------------------------------------


@pytest.fixture
def rows_in_both_regions(tenancy):
    """One asset, alert, event and log line per (account, region) of A, B and X."""
    rows = {}
    for account in (tenancy.account_a, tenancy.account_b, tenancy.account_x):
        for region in (CHINA, OUTSIDE_CHINA):
            asset = factories.make_asset(account, region=region)
            rows[account.id, region] = {
                Asset: asset,
                Alert: factories.make_alert(account, asset=asset),
                SecurityEvent: factories.make_event(account, region=region),
                LogRecord: factories.make_log_record(account, asset=asset),
            }
    return rows


SCOPED_MODELS = [Asset, Alert, SecurityEvent, LogRecord]


@pytest.mark.parametrize("model", SCOPED_MODELS, ids=lambda model: model.__name__)
def test_it_filters_by_account_and_region(tenancy, rows_in_both_regions, model):
    account_a = tenancy.account_a

    in_china = set(model.objects.in_scope(current_scope(account_a, CHINA)))
    outside = set(model.objects.in_scope(current_scope(account_a, OUTSIDE_CHINA)))

    assert in_china == {rows_in_both_regions[account_a.id, CHINA][model]}
    assert outside == {rows_in_both_regions[account_a.id, OUTSIDE_CHINA][model]}


@pytest.mark.parametrize("model", SCOPED_MODELS, ids=lambda model: model.__name__)
def test_it_filters_the_global_view_by_region(tenancy, rows_in_both_regions, model):
    scope = build_scope(tenancy.alice, {SESSION_VIEW: View.GLOBAL, SESSION_REGION: OUTSIDE_CHINA})

    rows = set(model.objects.in_scope(scope))

    assert rows == {
        rows_in_both_regions[tenancy.account_a.id, OUTSIDE_CHINA][model],
        rows_in_both_regions[tenancy.account_b.id, OUTSIDE_CHINA][model],
    }


@pytest.mark.parametrize("model", SCOPED_MODELS, ids=lambda model: model.__name__)
def test_it_covers_every_region_of_the_accounts_of_an_api_scope(
    tenancy, rows_in_both_regions, model
):
    scope = Scope.for_accounts(tenancy.org.id, [tenancy.account_a.id])

    rows = set(model.objects.in_scope(scope))

    assert scope.region is None
    assert rows == {
        rows_in_both_regions[tenancy.account_a.id, CHINA][model],
        rows_in_both_regions[tenancy.account_a.id, OUTSIDE_CHINA][model],
    }


@pytest.mark.parametrize("model", SCOPED_MODELS, ids=lambda model: model.__name__)
def test_it_shows_nothing_in_an_empty_scope(rows_in_both_regions, model):
    assert not model.objects.in_scope(Scope.empty()).exists()


def test_it_limits_accounts_to_the_scope(tenancy):
    scope = build_scope(tenancy.alice, {SESSION_VIEW: View.GLOBAL})

    assert set(Account.objects.in_scope(scope)) == {tenancy.account_a, tenancy.account_b}


# --- get_in_scope_or_404 ----------------------------------------------------------


def test_it_fetches_an_object_in_scope(tenancy):
    event = factories.make_event(tenancy.account_a)

    found = get_in_scope_or_404(SecurityEvent, build_scope(tenancy.bob, {}), pk=event.pk)

    assert found == event


def test_it_accepts_a_queryset(tenancy):
    event = factories.make_event(tenancy.account_a)
    scope = build_scope(tenancy.bob, {})

    assert get_in_scope_or_404(SecurityEvent.objects.all(), scope, pk=event.pk) == event
    with pytest.raises(Http404):
        get_in_scope_or_404(SecurityEvent.objects.exclude(pk=event.pk), scope, pk=event.pk)


def test_it_raises_404_for_another_tenants_object(tenancy):
    event_of_x = factories.make_event(tenancy.account_x)

    with pytest.raises(Http404):
        get_in_scope_or_404(SecurityEvent, build_scope(tenancy.alice, {}), pk=event_of_x.pk)


def test_it_raises_404_for_an_object_of_another_account_of_the_same_organisation(tenancy):
    event_of_b = factories.make_event(tenancy.account_b)

    with pytest.raises(Http404):
        get_in_scope_or_404(SecurityEvent, build_scope(tenancy.bob, {}), pk=event_of_b.pk)


def test_it_raises_404_for_an_object_of_the_other_region(tenancy):
    event_outside = factories.make_event(tenancy.account_a, region=OUTSIDE_CHINA)
    scope = build_scope(tenancy.bob, {})

    with pytest.raises(Http404):
        get_in_scope_or_404(SecurityEvent, scope, pk=event_outside.pk)


@pytest.mark.parametrize("garbage", ["abc", "", "1; DROP TABLE x", "1.5", None, [1]])
def test_it_raises_404_for_a_garbage_id(tenancy, garbage):
    factories.make_event(tenancy.account_a)

    with pytest.raises(Http404):
        get_in_scope_or_404(SecurityEvent, build_scope(tenancy.bob, {}), pk=garbage)
