"""Every page carries a Content-Security-Policy that allows scripts only from
our own origin or with the response's nonce, and the templates need nothing
more: no inline handlers, inline scripts without the nonce, or inline styles."""

import json
import re
from pathlib import Path

import pytest
from django.test import Client

from tests.test_deployment import run_python

pytestmark = pytest.mark.usefixtures("fast_password_hashing")

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def policy_of(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    directives = (part.split() for part in header.split(";") if part.strip())
    return {name: values for name, *values in directives}


def nonce_in(policy: dict[str, list[str]]) -> str:
    (nonce,) = [value for value in policy["script-src"] if value.startswith("'nonce-")]
    return nonce.removeprefix("'nonce-").removesuffix("'")


@pytest.mark.parametrize("path", ["/login/", "/", "/events/", "/whitelist/", "/data-sources/"])
def test_it_sends_a_policy_with_a_nonce_and_no_unsafe_inline(tenancy, path):
    client = tenancy.client_for(tenancy.alice) if path != "/login/" else Client()

    response = client.get(path)

    assert response.status_code == 200
    policy = policy_of(response)
    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"][0] == "'self'"
    assert nonce_in(policy)
    for directive in ("script-src", "style-src", "default-src"):
        assert "'unsafe-inline'" not in policy[directive]
        assert "'unsafe-eval'" not in policy[directive]
    assert policy["img-src"] == ["'self'", "data:", "blob:"]
    assert policy["object-src"] == ["'none'"]
    assert policy["base-uri"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["form-action"] == ["'self'"]


def test_it_puts_the_headers_nonce_on_the_pages_scripts_and_a_new_one_each_time(db):
    first, second = Client().get("/login/"), Client().get("/login/")

    nonce = nonce_in(policy_of(first))
    assert f'nonce="{nonce}"' in first.content.decode()
    assert nonce != nonce_in(policy_of(second))


def test_it_sends_the_same_policy_with_debug_off(tmp_path):
    show_policy = (
        "import json, django\n"
        "django.setup()\n"
        "from django.conf import settings\n"
        "print(json.dumps([settings.DEBUG, settings.SECURE_CSP,"
        " 'django.middleware.csp.ContentSecurityPolicyMiddleware' in settings.MIDDLEWARE]))\n"
    )
    policies = {}
    for debug in ("true", "false"):
        result = run_python(
            ["-c", show_policy], {"DEBUG": debug, "SECRET_KEY": "k" * 50}, tmp_path / debug
        )
        assert result.returncode == 0, result.stderr
        loaded_debug, policy, enforced = json.loads(result.stdout.strip().splitlines()[-1])
        assert loaded_debug is (debug == "true")
        assert enforced
        policies[debug] = policy

    assert policies["true"] == policies["false"]
    assert "<CSP_NONCE_SENTINEL>" in policies["false"]["script-src"]


# --- what the templates may contain -------------------------------------------------

INLINE_HANDLER = re.compile(r"<[^>]*\son[a-z]+\s*=", re.I)
INLINE_STYLE = re.compile(r"<style\b|\sstyle\s*=", re.I)
SCRIPT_TAG = re.compile(r"<script\b([^>]*)>", re.I)
TEMPLATE_COMMENT = re.compile(r"\{#.*?#\}|\{% comment %\}.*?\{% endcomment %\}", re.S)


def template_sources():
    return sorted(TEMPLATES.rglob("*.html"))


@pytest.mark.parametrize(
    "template", template_sources(), ids=lambda p: str(p.relative_to(TEMPLATES))
)
def test_it_keeps_scripts_and_styles_out_of_the_markup(template):
    source = TEMPLATE_COMMENT.sub("", template.read_text())

    assert not INLINE_HANDLER.search(source), "an inline event handler (on...=)"
    assert not INLINE_STYLE.search(source), "an inline <style> or style attribute"
    for attributes in SCRIPT_TAG.findall(source):
        runs_inline = "src=" not in attributes and 'type="application/json"' not in attributes
        assert not runs_inline or "csp_nonce" in attributes, f"<script{attributes}> has no nonce"
