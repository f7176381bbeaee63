"""The console's icon: linked from every page and answered at /favicon.ico,
which browsers ask for on their own, before anyone logs in."""

from pathlib import Path

from django.contrib.staticfiles import finders
from django.templatetags.static import static
from django.test import Client
from django.urls import reverse


def test_it_points_favicon_ico_to_the_icon_without_a_login(db):
    response = Client().get("/favicon.ico")

    assert response.status_code == 301
    assert response["Location"] == static("img/favicon.svg")


def test_it_keeps_the_icon_among_the_static_files():
    found = finders.find("img/favicon.svg")

    assert found and "<svg" in Path(found).read_text()


def test_it_links_the_icon_from_the_pages(tenancy, fast_password_hashing):
    for client in (Client(), tenancy.client_for(tenancy.charlie)):
        response = client.get(reverse("login"), follow=True)

        assert f'<link rel="icon" href="{static("img/favicon.svg")}"' in response.content.decode()


def test_it_takes_only_get(db):
    assert Client().post("/favicon.ico").status_code == 405
