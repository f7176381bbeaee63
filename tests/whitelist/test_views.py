"""The whitelist pages: Incident Whitelist Settings, a scenario's policy groups,
the group editor (from scratch and from "Add to Whitelist" on an event), its
preview, enable/disable/delete, and what the Alert page shows."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from alerts.models import Alert
from events.models import SecurityEvent, WhitelistGroupOrigin
from tests import factories
from tests.conftest import native_alert, organisation_scope
from whitelist.models import Revision, RuleGroup
from whitelist.services import ConditionSpec, GroupSpec, save_group

pytestmark = pytest.mark.usefixtures("fast_password_hashing")

SETTINGS = reverse("whitelist:settings")
NEW = reverse("whitelist:group_create")
PREVIEW = reverse("whitelist:preview")
HOST = "f6170c02-d55f-4c42-b73f-a394d7a2aaaa"


def form(**fields):
    data = {
        "name": "Scanner of the ops team",
        "scenario": "rootkit",
        "condition_object": ["host_uuid", "file_path"],
        "condition_operator": ["equals", "contains"],
        "condition_value": [HOST, "/root/md5/4ff73477"],
        "applies_to": "global",
        "enabled": "on",
        "expires_at": "",
        "description": "",
    }
    data.update(fields)
    return data


def make_group(tenancy, *, scenario="rootkit", account=None, name="Known rootkit scanner"):
    return save_group(
        GroupSpec(
            name=name,
            scenario=scenario,
            conditions=[ConditionSpec("host_uuid", "equals", HOST)],
            is_global=account is None,
            account_ids=[account.id] if account else [],
        ),
        organisation_scope(tenancy.org),
        allow_global=True,
    )


def test_it_lists_every_scenario_with_its_groups(tenancy):
    make_group(tenancy)

    html = tenancy.client_for(tenancy.bob).get(SETTINGS).content.decode()

    assert "Incident Whitelist Settings" in html
    assert "Compromised basic software" in html and "Reverse shell" in html
    assert 'data-scenario="rootkit"' in html and "Known rootkit scanner" in html
    assert 'data-testid="create-group"' not in html  # bob is an analyst


def test_it_names_the_scenario_of_recent_groups(tenancy):
    make_group(tenancy, scenario="abnormal_network", name="Backup traffic")

    html = tenancy.client_for(tenancy.bob).get(SETTINGS).content.decode()

    table = html[html.index('data-testid="group-table"') :]
    assert 'title="abnormal_network">Abnormal network connection</a>' in table


def test_it_narrows_the_settings_to_one_scenario(tenancy):
    html = tenancy.client_for(tenancy.alice).get(SETTINGS, {"scenario": "mining"}).content.decode()

    assert 'data-scenario="mining"' in html and 'data-scenario="rootkit"' not in html


def test_it_marks_an_unknown_scenario_and_shows_every_scenario(tenancy):
    make_group(tenancy)

    response = tenancy.client_for(tenancy.alice).get(SETTINGS, {"scenario": "no-such-thing"})

    html = response.content.decode()
    assert response.status_code == 200
    assert 'data-scenario="mining"' in html and 'data-scenario="rootkit"' in html
    assert "There is no such scenario: every scenario is shown." in html
    assert 'id="error-scenario"' in html


def test_it_shows_an_outsider_no_group_of_the_organisation(tenancy):
    make_group(tenancy)

    html = tenancy.client_for(tenancy.charlie).get(SETTINGS, {"scenario": "rootkit"}).text

    assert "Known rootkit scanner" not in html


def test_it_shows_a_scenarios_groups_with_hits_and_state(tenancy):
    group = make_group(tenancy)
    RuleGroup.objects.filter(id=group.id).update(
        hit_count=42, last_hit_at=timezone.now(), expires_at=timezone.now() - timedelta(hours=1)
    )

    html = (
        tenancy.client_for(tenancy.bob)
        .get(reverse("whitelist:scenario", args=["rootkit"]))
        .content.decode()
    )

    assert "Known rootkit scanner" in html and ">42<" in html and "Expired" in html
    assert HOST in html


def test_it_hides_groups_limited_to_accounts_outside_the_view(tenancy):
    make_group(tenancy, account=tenancy.account_b, name="Only for Intl")
    make_group(tenancy, account=tenancy.account_a, name="Only for Prod")

    html = (
        tenancy.client_for(tenancy.bob)
        .get(reverse("whitelist:scenario", args=["rootkit"]))
        .content.decode()
    )

    assert "Only for Prod" in html and "Only for Intl" not in html


def test_it_creates_a_group_from_the_form(tenancy):
    before = Revision.objects.filter(organisation=tenancy.org).first()

    response = tenancy.client_for(tenancy.alice).post(NEW, form())

    assert response.status_code == 302
    assert response.url == reverse("whitelist:scenario", args=["rootkit"])
    group = RuleGroup.objects.get(organisation=tenancy.org)
    assert [(c.object, c.operator, c.value) for c in group.conditions.all()] == [
        ("host_uuid", "equals", HOST),
        ("file_path", "contains", "/root/md5/4ff73477"),
    ]
    assert (group.is_global, group.enabled, group.created_by) == (True, True, tenancy.alice)
    assert before is None
    assert Revision.objects.get(organisation=tenancy.org).number == 1


def test_it_takes_another_alert_type_as_scenario(tenancy):
    response = tenancy.client_for(tenancy.alice).post(
        NEW,
        form(
            scenario="__other__",
            scenario_other="sql_injection",
            condition_object=["source_ip"],
            condition_operator=["in_cidr"],
            condition_value=["192.0.2.0/24\n198.51.100.0/24"],
        ),
    )

    assert response.status_code == 302
    assert RuleGroup.objects.get().scenario == "sql_injection"


@pytest.mark.parametrize(
    ("objects", "operators", "values", "message"),
    [
        (["command_line"], ["regex"], ["(unclosed"], "Invalid regular expression"),
        (["command_line"], ["regex"], ["(?=look)ahead"], "Look-around"),
        (["source_ip"], ["in_cidr"], ["10.0.0.0/33"], "is not a CIDR block"),
        (["source_ip"], ["equals"], ["not-an-ip"], "is not an IP address"),
        (["destination_port"], ["equals"], ["70000"], "is not a port"),
        (["host_uuid"], ["equals"], ["   "], "Enter a condition value."),
        (["url"], ["equals"], ["https://x"], "is not an object of the scenario"),
    ],
)
def test_it_shows_a_condition_error_on_its_row_and_saves_nothing(
    tenancy, objects, operators, values, message
):
    data = form(
        scenario="reverse_shell",
        condition_object=objects,
        condition_operator=operators,
        condition_value=values,
    )

    response = tenancy.client_for(tenancy.alice).post(NEW, data)

    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="condition-error"' in html and message in html
    assert not RuleGroup.objects.exists()


def test_it_names_each_problem_of_the_group(tenancy):
    data = form(
        name="",
        scenario="Not A Key",
        condition_object=[],
        condition_operator=[],
        condition_value=[],
        expires_at="yesterday",
    )

    html = tenancy.client_for(tenancy.alice).post(NEW, data).content.decode()

    assert 'data-field="expires_at"' in html and "Enter a date and time" in html
    assert not RuleGroup.objects.exists()

    html = tenancy.client_for(tenancy.alice).post(NEW, {**data, "expires_at": ""}).content.decode()

    assert 'data-field="name"' in html and "Enter a name." in html
    assert 'data-field="scenario"' in html
    assert "Add at least one condition." in html


def test_it_refuses_an_expiry_in_the_past(tenancy):
    past = (timezone.localtime() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")

    html = tenancy.client_for(tenancy.alice).post(NEW, form(expires_at=past)).content.decode()

    assert "The expiry must be in the future." in html
    assert not RuleGroup.objects.exists()


def test_it_saves_an_expiry(tenancy):
    soon = (timezone.localtime() + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M")

    tenancy.client_for(tenancy.alice).post(NEW, form(expires_at=soon))

    expires_at = RuleGroup.objects.get().expires_at
    assert timedelta(days=2) < expires_at - timezone.now() <= timedelta(days=3)


def test_it_keeps_analysts_out_of_the_editor(tenancy):
    client = tenancy.client_for(tenancy.bob)

    assert client.get(NEW).status_code == 403
    assert client.post(NEW, form()).status_code == 403
    assert not RuleGroup.objects.exists()


def test_it_lets_an_account_admin_whitelist_only_its_own_account(tenancy):
    carol = factories.make_user(tenancy.org, "carol", accounts=[tenancy.account_a], role="admin")
    client = tenancy.client_for(carol)

    refused = client.post(NEW, form()).content.decode()
    made = client.post(NEW, form(applies_to="accounts", accounts=[str(tenancy.account_a.id)]))
    smuggled = client.post(
        NEW, form(name="B too", applies_to="accounts", accounts=[str(tenancy.account_b.id)])
    ).content.decode()

    assert "Only a global administrator" in refused
    assert made.status_code == 302
    assert "Unknown account" in smuggled
    group = RuleGroup.objects.get()
    assert (group.is_global, list(group.accounts.all())) == (False, [tenancy.account_a])


def test_it_edits_a_group(tenancy):
    group = make_group(tenancy)
    url = reverse("whitelist:group_edit", args=[group.id])
    client = tenancy.client_for(tenancy.alice)

    page = client.get(url).content.decode()
    response = client.post(
        url,
        form(
            name="Renamed",
            condition_object=["host_uuid"],
            condition_operator=["in_list"],
            condition_value=[f"{HOST}\nother-host"],
        ),
    )

    assert HOST in page and "Known rootkit scanner" in page
    assert response.status_code == 302
    group.refresh_from_db()
    assert group.name == "Renamed"
    assert [(c.operator, c.value) for c in group.conditions.all()] == [
        ("in_list", f"{HOST}\nother-host")
    ]


def test_it_enables_disables_and_deletes_a_group(tenancy):
    group = make_group(tenancy)
    client = tenancy.client_for(tenancy.alice)

    client.post(reverse("whitelist:group_toggle", args=[group.id]))
    group.refresh_from_db()
    disabled = group.enabled
    client.post(reverse("whitelist:group_toggle", args=[group.id]), {"enabled": "on"})
    group.refresh_from_db()
    enabled = group.enabled
    client.post(reverse("whitelist:group_delete", args=[group.id]))

    assert (disabled, enabled) == (False, True)
    assert not RuleGroup.objects.exists()
    assert Revision.objects.get(organisation=tenancy.org).number == 4


def test_it_hides_other_organisations_groups_from_an_outsider(tenancy):
    group = make_group(tenancy)
    client = tenancy.client_for(tenancy.charlie)

    assert client.get(reverse("whitelist:group_edit", args=[group.id])).status_code in (403, 404)
    assert "Known rootkit scanner" not in client.get(SETTINGS).content.decode()
    assert (
        "Known rootkit scanner"
        not in client.get(reverse("whitelist:scenario", args=["rootkit"])).content.decode()
    )
    assert RuleGroup.objects.filter(id=group.id, enabled=True).exists()


def test_it_answers_404_for_a_scenario_that_cannot_exist(tenancy):
    response = tenancy.client_for(tenancy.bob).get(
        reverse("whitelist:scenario", args=["Not-A-Type"])
    )

    assert response.status_code == 404


# --- "Add to Whitelist" from an event ------------------------------------------------


@pytest.fixture
def rootkit_event(tenancy, ingest_and_aggregate):
    alerts = [
        native_alert(
            tenancy.account_a,
            type="rootkit",
            name="Rootkit module loaded",
            level="high",
            # Recent, so that the 7-day preview sees it whenever the suite runs.
            occurred_at=(timezone.now() - timedelta(hours=1)).isoformat(),
            asset={"uuid": HOST, "name": "web-01"},
            entities=[{"type": "file", "path": "/root/md5/4ff73477a06a3412145d1a7e6d9c0001"}],
        )
    ]
    result = ingest_and_aggregate(alerts, scope=organisation_scope(tenancy.org))
    assert result.errors == []
    return SecurityEvent.objects.filter(account=tenancy.account_a).order_by("id").first()


def test_it_offers_add_to_whitelist_on_each_event_row_to_administrators(tenancy, rootkit_event):
    alice_html = tenancy.client_for(tenancy.alice).get(reverse("events:list")).content.decode()
    bob_html = tenancy.client_for(tenancy.bob).get(reverse("events:list")).content.decode()

    link = reverse("events:add_to_whitelist", args=[rootkit_event.id])
    assert link in alice_html and "Incident Whitelist Settings" in alice_html
    assert link not in bob_html and "Incident Whitelist Settings" in bob_html


def test_it_offers_add_to_whitelist_on_the_event_details_to_administrators(tenancy, rootkit_event):
    url = reverse("events:detail", args=[rootkit_event.id])
    link = reverse("events:add_to_whitelist", args=[rootkit_event.id])

    assert link in tenancy.client_for(tenancy.alice).get(url).content.decode()
    assert link not in tenancy.client_for(tenancy.bob).get(url).content.decode()


def test_it_prefills_the_group_from_the_events_alerts(tenancy, rootkit_event):
    url = reverse("events:add_to_whitelist", args=[rootkit_event.id])
    html = tenancy.client_for(tenancy.alice).get(url).content.decode()

    assert f"Add to Whitelist: event #{rootkit_event.id}" in html
    assert '<option value="rootkit" selected>' in html
    assert f">{HOST}</textarea>" in html
    assert "/root/md5/4ff73477a06a3412145d1a7e6d9c0001</textarea>" in html
    assert f'value="{tenancy.account_a.id}" checked' in html


def test_it_links_the_group_to_its_event_and_whitelists_the_next_alert(
    tenancy, rootkit_event, ingest_and_aggregate
):
    client = tenancy.client_for(tenancy.alice)
    data = form(
        applies_to="accounts",
        accounts=[str(tenancy.account_a.id)],
        condition_object=["host_uuid"],
        condition_operator=["equals"],
        condition_value=[HOST],
    )

    events_before = SecurityEvent.objects.count()
    url = reverse("events:add_to_whitelist", args=[rootkit_event.id])
    assert client.post(url, data).status_code == 302
    again = native_alert(
        tenancy.account_a, type="rootkit", level="high", asset={"uuid": HOST, "name": "web-01"}
    )
    ingest_and_aggregate([again], scope=organisation_scope(tenancy.org))

    group = RuleGroup.objects.get()
    assert WhitelistGroupOrigin.objects.get(group=group).event == rootkit_event
    alert = Alert.objects.get(source_uuid=again["uuid"])
    assert alert.whitelisted and alert.whitelist_match.group == group
    assert SecurityEvent.objects.count() == events_before
    detail = client.get(reverse("alerts:detail", args=[alert.id])).content.decode()
    assert "by policy group" in detail and group.name in detail


def test_it_refuses_to_prefill_from_an_event_of_another_tenant(tenancy):
    event = factories.make_event(tenancy.account_x)

    client = tenancy.client_for(tenancy.alice)
    url = reverse("events:add_to_whitelist", args=[event.id])

    assert client.get(url).status_code == 404
    assert client.post(url, form(condition_value=["x"])).status_code == 404
    assert not RuleGroup.objects.exists()


# --- preview ---------------------------------------------------------------------


def test_it_previews_what_the_group_would_have_matched(tenancy, rootkit_event):
    client = tenancy.client_for(tenancy.alice)

    hit = client.post(
        PREVIEW,
        form(condition_object=["host_uuid"], condition_operator=["equals"], condition_value=[HOST]),
    ).content.decode()
    miss = client.post(
        PREVIEW,
        form(
            condition_object=["host_uuid"],
            condition_operator=["equals"],
            condition_value=["someone-else"],
        ),
    ).content.decode()
    broken = client.post(
        PREVIEW,
        form(condition_object=["host_uuid"], condition_operator=["regex"], condition_value=["("]),
    ).content.decode()

    assert "<strong>1</strong> of 1 alert" in hit and "Rootkit module loaded" in hit
    assert "<strong>0</strong> of 1 alert" in miss
    assert "Invalid regular expression" in broken


def test_it_counts_every_group_of_a_scenario_on_the_settings_page(tenancy):
    make_group(tenancy, name="One")
    make_group(tenancy, name="Two")

    html = tenancy.client_for(tenancy.bob).get(SETTINGS, {"scenario": "rootkit"}).content.decode()

    row = html[
        html.index('data-scenario="rootkit"') : html.index(
            "</tr>", html.index('data-scenario="rootkit"')
        )
    ]
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", row)
    assert cells == ["Rootkit", "rootkit", "2", "2", "0"]  # ..., policy groups, enabled, hits
