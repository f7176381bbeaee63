"""The account's connector settings: which connector carries out its handling
tasks, and what that connector needs.

Secrets (the webhook signing secret, the AccessKey secret) are written
encrypted (``secops.crypto``) and never given back: the form renders their
inputs empty, says whether one is stored, and a blank input keeps it.
Everything the Alibaba Cloud connector reads beyond the model's own fields
(WAF instance and template, endpoint overrides, protocol) is kept in
``AccountConnector.endpoints`` (its keys: docs/connectors.md).
"""

from django import forms
from django.core.validators import RegexValidator
from django.db import transaction

from disposal.models import AccountConnector, ConnectorKind
from secops.crypto import encrypt

SECRET_FIELDS = ("webhook_secret", "access_key_secret")

# The endpoint overrides: (form field, key in AccountConnector.endpoints, label).
ENDPOINT_FIELDS = (
    ("endpoint_cloudfw", "cloudfw", "Cloud Firewall endpoint"),
    ("endpoint_sas", "sas", "Security Center endpoint"),
    ("endpoint_waf", "waf", "WAF endpoint"),
    ("endpoint_sts", "sts", "STS endpoint"),
)

_host = RegexValidator(
    r"^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::\d{1,5})?$",
    "A host name or address with an optional port (e.g. cloudfw.aliyuncs.com or "
    "10.0.0.5:8443), without a scheme or path.",
)
_region = RegexValidator(
    r"^[a-z]{2,}(?:-[a-z0-9]+)+$", "A region id such as cn-hangzhou or ap-southeast-1."
)
_role_arn = RegexValidator(
    r"^acs:ram::\d{6,32}:role/[A-Za-z0-9.@_+=,-]{1,64}$",
    "A RAM role ARN looks like acs:ram::1234567890123456:role/secops-response.",
)
_access_key_id = RegexValidator(r"^[A-Za-z0-9.]{8,128}$", "An AccessKey ID is letters and digits.")


def _secret_input():
    # render_value=False: a stored or submitted secret never goes back to the browser.
    return forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"})


class ConnectorForm(forms.Form):
    kind = forms.ChoiceField(
        label="Connector", choices=ConnectorKind.choices, widget=forms.RadioSelect
    )
    # Webhook
    webhook_url = forms.URLField(label="Webhook URL", max_length=500, required=False)
    webhook_secret = forms.CharField(
        label="Signing secret", max_length=500, required=False, widget=_secret_input()
    )
    # Alibaba Cloud
    access_key_id = forms.CharField(
        label="AccessKey ID", max_length=128, required=False, validators=[_access_key_id]
    )
    access_key_secret = forms.CharField(
        label="AccessKey secret", max_length=500, required=False, widget=_secret_input()
    )
    role_arn = forms.CharField(
        label="RAM role ARN to assume",
        max_length=300,
        required=False,
        validators=[_role_arn],
        help_text="Optional. With it, every call runs as this role (STS AssumeRole).",
    )
    cloud_region = forms.CharField(
        label="Region", max_length=64, required=False, validators=[_region]
    )
    waf_instance_id = forms.CharField(label="WAF instance ID", max_length=128, required=False)
    waf_template_id = forms.IntegerField(
        label="WAF protection template ID",
        min_value=1,
        required=False,
        help_text="The template whose IP blacklist takes the blocks.",
    )
    endpoint_cloudfw = forms.CharField(max_length=255, required=False, validators=[_host])
    endpoint_sas = forms.CharField(max_length=255, required=False, validators=[_host])
    endpoint_waf = forms.CharField(max_length=255, required=False, validators=[_host])
    endpoint_sts = forms.CharField(max_length=255, required=False, validators=[_host])
    protocol = forms.ChoiceField(
        choices=[("https", "HTTPS"), ("http", "Plain HTTP (private endpoints only)")],
        initial="https",
        required=False,
    )

    def __init__(self, *args, instance: AccountConnector | None = None, **kwargs):
        self.instance = instance
        if instance is not None and "initial" not in kwargs:
            kwargs["initial"] = self.initial_from(instance)
        super().__init__(*args, **kwargs)
        for name, _key, label in ENDPOINT_FIELDS:
            self.fields[name].label = label
            self.fields[name].help_text = "Optional; blank: the public endpoint for the region."
        for name in SECRET_FIELDS:
            self.fields[name].help_text = (
                "Set — leave blank to keep it." if self.secret_is_stored(name) else "Not set."
            )

    @staticmethod
    def initial_from(instance: AccountConnector) -> dict:
        """What the page shows of the stored settings: everything but the secrets."""
        endpoints = instance.endpoints if isinstance(instance.endpoints, dict) else {}
        initial = {
            "kind": instance.kind,
            "webhook_url": instance.webhook_url,
            "access_key_id": instance.access_key_id,
            "role_arn": instance.role_arn,
            "cloud_region": instance.cloud_region,
            "waf_instance_id": endpoints.get("waf_instance_id", ""),
            "waf_template_id": endpoints.get("waf_template_id") or None,
            "protocol": "http" if endpoints.get("protocol") == "http" else "https",
        }
        for name, key, _label in ENDPOINT_FIELDS:
            initial[name] = endpoints.get(key, "")
        return initial

    def secret_is_stored(self, name: str) -> bool:
        return bool(self.instance and getattr(self.instance, name))

    def endpoint_fields(self):
        return [self[name] for name, _key, _label in ENDPOINT_FIELDS]

    def clean(self):
        data = super().clean()
        kind = data.get("kind")
        if kind == ConnectorKind.WEBHOOK:
            if not data.get("webhook_url") and "webhook_url" not in self.errors:
                self.add_error("webhook_url", "The webhook connector needs a URL.")
            if not data.get("webhook_secret") and not self.secret_is_stored("webhook_secret"):
                self.add_error("webhook_secret", "Choose a signing secret.")
        elif kind == ConnectorKind.ALIBABA:
            self._clean_alibaba(data)
        return data

    def _clean_alibaba(self, data: dict) -> None:
        key_id = data.get("access_key_id")
        if not key_id and "access_key_id" not in self.errors:
            self.add_error("access_key_id", "The Alibaba Cloud connector needs an AccessKey ID.")
        # A new AccessKey ID needs its own secret: the stored one belongs to the old key.
        same_key = self.instance is not None and key_id == self.instance.access_key_id
        stored = self.secret_is_stored("access_key_secret")
        if not data.get("access_key_secret") and not (same_key and stored):
            self.add_error(
                "access_key_secret",
                "Enter the AccessKey secret of the new AccessKey ID."
                if stored
                else "Enter the AccessKey secret.",
            )
        if not data.get("cloud_region") and "cloud_region" not in self.errors:
            self.add_error("cloud_region", "Choose the account's region, e.g. cn-hangzhou.")
        overridden = any(data.get(name) for name, _key, _label in ENDPOINT_FIELDS)
        if data.get("protocol") == "http" and not overridden:
            self.add_error(
                "protocol",
                "Plain HTTP is only for endpoint overrides (a private endpoint or a test "
                "stub); Alibaba Cloud's public endpoints take HTTPS.",
            )
        if bool(data.get("waf_instance_id")) != bool(data.get("waf_template_id")):
            field = "waf_template_id" if data.get("waf_instance_id") else "waf_instance_id"
            self.add_error(field, "Blocking on WAF needs both the instance ID and the template ID.")

    def endpoints(self) -> dict:
        """The ``endpoints`` JSON to store: only what was given."""
        data = self.cleaned_data
        endpoints = {key: data[name] for name, key, _label in ENDPOINT_FIELDS if data.get(name)}
        if data.get("protocol") == "http":
            endpoints["protocol"] = "http"
        if data.get("waf_instance_id"):
            endpoints["waf_instance_id"] = data["waf_instance_id"]
        if data.get("waf_template_id"):
            endpoints["waf_template_id"] = str(data["waf_template_id"])
        return endpoints

    @transaction.atomic
    def save(self, *, account, user) -> AccountConnector:
        """Store the settings; a blank secret keeps the stored one. Settings of
        the other kinds are kept too, so switching back needs no retyping."""
        data = self.cleaned_data
        stored = AccountConnector.objects.select_for_update().filter(account=account)
        config = stored.first() or AccountConnector(account=account)
        config.kind = data["kind"]
        config.webhook_url = data.get("webhook_url") or ""
        config.access_key_id = data.get("access_key_id") or ""
        config.role_arn = data.get("role_arn") or ""
        config.cloud_region = data.get("cloud_region") or config.cloud_region
        config.endpoints = self.endpoints()
        for name in SECRET_FIELDS:
            if data.get(name):
                setattr(config, name, encrypt(data[name]))
        if not config.access_key_id:
            # A secret without its key id is of no use to anyone.
            config.access_key_secret = ""
        config.updated_by = user
        config.save()
        return config
