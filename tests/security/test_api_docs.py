"""The API's documentation: only for a console user (the Swagger UI page) or
also an API key (the OpenAPI document), and served from our own static files."""

import json
import re

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders
from django.test import Client

from secops.models import ApiKey
from secops.services import create_api_key

pytestmark = pytest.mark.usefixtures("fast_password_hashing")

DOCS = "/api/v1/docs"
OPENAPI = "/api/v1/openapi.json"


@pytest.fixture
def api_key(tenancy) -> str:
    _, key = create_api_key(organisation=tenancy.org, account=None, name="Docs reader")
    return key


def test_it_sends_an_anonymous_visitor_of_the_docs_to_the_login_page(db):
    response = Client().get(DOCS)

    assert response.status_code == 302
    assert response["Location"] == f"/login/?next={DOCS}"


@pytest.mark.parametrize("authorization", [None, "Bearer not-a-key", "Basic YWxpY2U6cGFzc3dvcmQ="])
def test_it_refuses_the_openapi_document_without_a_login_or_a_key(db, authorization):
    headers = {"Authorization": authorization} if authorization else {}

    response = Client().get(OPENAPI, headers=headers)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert "paths" not in response.json()


def test_it_refuses_the_openapi_document_to_a_revoked_key(tenancy, api_key):
    ApiKey.objects.update(revoked_at="2026-01-01T00:00:00Z")

    response = Client().get(OPENAPI, headers={"Authorization": f"Bearer {api_key}"})

    assert response.status_code == 401


def test_it_gives_the_openapi_document_to_an_api_key(tenancy, api_key):
    response = Client().get(OPENAPI, headers={"Authorization": f"Bearer {api_key}"})

    assert response.status_code == 200
    assert "/api/v1/alerts" in response.json()["paths"]


@pytest.mark.parametrize("user", ["alice", "bob", "charlie"])
def test_it_gives_the_docs_and_the_document_to_any_console_user(tenancy, user):
    client = tenancy.client_for(getattr(tenancy, user))

    docs = client.get(DOCS)
    document = client.get(OPENAPI)

    assert docs.status_code == 200
    assert document.status_code == 200
    assert document.json()["info"]["title"] == "SecOps Console API"


def test_it_serves_swagger_ui_from_our_static_files_only(tenancy):
    html = tenancy.client_for(tenancy.bob).get(DOCS).content.decode()

    references = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert references, html
    assert not re.search(r"https?://", html)
    static_url = "/" + settings.STATIC_URL.lstrip("/")
    assert all(reference.startswith(static_url) for reference in references), references
    for reference in references:
        assert finders.find(reference.removeprefix(static_url)), f"{reference} is not shipped"
    assert any(reference.endswith("swagger-ui-bundle.js") for reference in references)


def test_it_points_swagger_ui_at_the_document_and_at_no_outside_validator(tenancy):
    html = tenancy.client_for(tenancy.bob).get(DOCS).content.decode()

    swagger_settings = json.loads(
        re.search(
            r'<script type="application/json" id="swagger-settings">(.*?)</script>', html, re.S
        )[1]
    )
    assert swagger_settings["url"] == OPENAPI
    assert swagger_settings["validatorUrl"] is None


def test_it_runs_no_inline_script_on_the_docs_page(tenancy):
    html = tenancy.client_for(tenancy.bob).get(DOCS).content.decode()

    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S)
    executable = [
        (attributes, body)
        for attributes, body in scripts
        if 'type="application/json"' not in attributes and body.strip()
    ]
    assert not executable
    assert not re.search(r"\son[a-z]+=", html)
