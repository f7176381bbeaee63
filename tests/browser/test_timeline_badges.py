"""The Attack Timeline's stage badges: each says what it stands for (a
tooltip, and a legend on the tab), and its number sits inside its circle,
two-digit stages included."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from events.models import EventAlert
from events.queries import ATTACK_STAGES
from secops.enums import RiskLevel
from tests import factories
from tests.browser.test_event_pages import log_in_as_global_admin

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# One alert per stage, the widest numbers among them (10 to 14), one by its id.
TACTICS = ("Initial Access", "Lateral Movement", "TA0011", "Exfiltration", "Impact")

# Where a badge's number lies against its circle: every corner of the text's
# box within the circle's radius (half a pixel for rounding).
MEASURE = """badge => {
    const circle = badge.getBoundingClientRect();
    const range = document.createRange();
    range.selectNodeContents(badge);
    const text = range.getBoundingClientRect();
    const cx = circle.left + circle.width / 2, cy = circle.top + circle.height / 2;
    const radius = Math.min(circle.width, circle.height) / 2;
    const corners = [[text.left, text.top], [text.right, text.top],
                     [text.left, text.bottom], [text.right, text.bottom]];
    const farthest = Math.max(...corners.map(([x, y]) => Math.hypot(x - cx, y - cy)));
    return {text: badge.textContent, radius, farthest, width: text.width, height: text.height,
            round: getComputedStyle(badge).borderRadius};
}"""


@pytest.fixture
def staged_event(tenancy):
    now = timezone.now()
    event = factories.make_event(
        tenancy.account_a, name="Intrusion in stages", risk=RiskLevel.HIGH, alert_count=5
    )
    for position, tactic in enumerate(TACTICS):
        alert = factories.make_alert(
            tenancy.account_a,
            name=f"Step {position + 1}",
            tactic=tactic,
            occurred_at=now - timedelta(minutes=50 - position * 10),
        )
        EventAlert.objects.create(event=event, alert=alert)
    return event


def test_stage_badges_are_explained_and_their_numbers_fit_their_circles(
    page, tenancy, staged_event, screenshot
):
    log_in_as_global_admin(page)
    page.goto(f"/events/{staged_event.pk}/?tab=timeline")

    badges = page.get_by_test_id("stage-badge")
    expect(badges).to_have_text(["3", "10", "12", "13", "14"])
    expect(badges.nth(2)).to_have_attribute(
        "title", f"ATT&CK stage 12 of {len(ATTACK_STAGES)}: Command and Control"
    )
    legend = page.get_by_test_id("stage-legend")
    expect(legend.locator("li")).to_have_count(len(ATTACK_STAGES))
    expect(legend.locator("li").nth(9)).to_have_text("10Lateral Movement")
    expect(legend.locator("li.present")).to_have_count(len(TACTICS))
    screenshot("timeline-badges")

    for badge in [*badges.all(), *legend.locator(".stage-no").all()]:
        found = badge.evaluate(MEASURE)
        assert found["width"] > 0 and found["height"] > 0, found
        assert found["farthest"] <= found["radius"] + 0.5, found


def test_an_outsider_sees_no_timeline_of_another_tenant(page, tenancy, staged_event):
    page.goto("/")
    page.get_by_label("Username").fill("charlie")
    page.get_by_label("Password").fill("correct-horse-9")
    page.get_by_role("button", name="Log in").click()

    response = page.goto(f"/events/{staged_event.pk}/?tab=timeline")

    assert response.status == 404
    expect(page.get_by_test_id("stage-badge")).to_have_count(0)
