"""An account's connector settings over the API, and the simulated cloud's
failure instructions.

Connector settings are read and changed by administrators of the account, as
on its settings page, through the page's own form: the secrets (webhook
signing secret, AccessKey secret) are write-only; an answer says only
whether one is stored, and a blank one keeps it.

The simulated cloud is a simulation: it records what handling tasks would
have done and can be told to fail, so that Failed, Retry and Unblock can be
shown. Its failure instructions are listed, added and removed here.
"""

from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.http import QueryDict
from ninja import Router, Schema, Status
from pydantic import Field

from disposal import queries
from disposal.center_forms import SimulatedFailureForm
from disposal.connector_forms import ENDPOINT_FIELDS, ConnectorForm
from disposal.connector_settings import (
    SIMULATED_CLOUD_ADMINISTRATORS_ONLY,
    check_connection,
    get_account_for_connector_change_or_404,
    get_simulated_failure_for_change_or_404,
)
from disposal.models import AccountConnector, ConnectorKind, SimulatedFailure
from secops.api_common import FieldsRefused, Message, Refused, form_errors
from secops.models import Account
from secops.scope import require

router = Router(tags=["connectors"])
SIMULATION_TAGS = ["simulated cloud (simulation)"]

ENDPOINT_KEYS = [key for _name, key, _label in ENDPOINT_FIELDS]


class ConnectorOut(Schema):
    account: str = Field(description="The account's uid.")
    configured: bool = Field(
        description="Settings are stored; otherwise the account uses the default connector."
    )
    kind: str = Field(description=", ".join(ConnectorKind.values) + ".")
    webhook_url: str
    webhook_secret_set: bool = Field(description="A signing secret is stored (never shown).")
    access_key_id: str
    access_key_secret_set: bool = Field(description="An AccessKey secret is stored (never shown).")
    role_arn: str
    cloud_region: str
    waf_instance_id: str
    waf_template_id: int | None
    endpoints: dict[str, str] = Field(
        description="Endpoint overrides by service: " + ", ".join(ENDPOINT_KEYS) + "."
    )
    protocol: str = Field(description="https, or http for private endpoint overrides.")
    updated_at: datetime | None


class ConnectorIn(Schema):
    """Every setting of the account's connector, as its settings page takes them;
    those of the other kinds are kept."""

    kind: str = Field(description=", ".join(ConnectorKind.values) + ".")
    webhook_url: str = Field("", max_length=2000)
    webhook_secret: str = Field(
        "", max_length=2000, description="Write-only; empty keeps the stored one."
    )
    access_key_id: str = Field("", max_length=500)
    access_key_secret: str = Field(
        "", max_length=2000, description="Write-only; empty keeps the stored one."
    )
    role_arn: str = Field("", max_length=1000)
    cloud_region: str = Field("", max_length=200)
    waf_instance_id: str = Field("", max_length=500)
    waf_template_id: int | None = Field(None, ge=1, le=2**31 - 1)
    endpoints: dict[str, str] = Field(
        default_factory=dict,
        description="Endpoint overrides by service: " + ", ".join(ENDPOINT_KEYS) + ".",
    )
    protocol: str = Field("https", max_length=16)


class ConnectionCheckOut(Schema):
    ok: bool
    message: str
    answer: dict = Field(description="What the cloud answered, if it did.")


class SimulatedFailureOut(Schema):
    id: int
    account: str | None = Field(
        description="The account's uid; none: set by the operator for every account."
    )
    target: str = Field(description="The entity value whose calls fail; empty: every entity.")
    percent: float = Field(description="Share of the matching calls that fail.")
    applies_to_undo: bool = Field(description="Unblocking a matching block fails as well.")
    retryable: bool = Field(description="The failure says that trying again may help.")
    message: str = Field(description="The error the task shows.")
    enabled: bool
    created_at: datetime


class SimulatedFailureIn(Schema):
    account: str = Field(max_length=64, description="The uid of an account the key administers.")
    target: str = Field("", max_length=2000, description="Empty: every entity.")
    percent: Decimal = Field(Decimal(100), description="0 to 100.")
    applies_to_undo: bool = False
    retryable: bool = True
    message: str = Field(max_length=1000, description="The error the task shows.")


def _connector_out(account: Account, config: AccountConnector | None) -> dict:
    shown = ConnectorForm.initial_from(config) if config is not None else {}
    return {
        "account": account.uid,
        "configured": config is not None,
        "kind": shown.get("kind", settings.DISPOSAL_DEFAULT_CONNECTOR),
        "webhook_url": shown.get("webhook_url", ""),
        "webhook_secret_set": bool(config and config.webhook_secret),
        "access_key_id": shown.get("access_key_id", ""),
        "access_key_secret_set": bool(config and config.access_key_secret),
        "role_arn": shown.get("role_arn", ""),
        "cloud_region": shown.get("cloud_region", ""),
        "waf_instance_id": shown.get("waf_instance_id", ""),
        "waf_template_id": int(shown["waf_template_id"]) if shown.get("waf_template_id") else None,
        "endpoints": {key: shown[name] for name, key, _label in ENDPOINT_FIELDS if shown.get(name)},
        "protocol": shown.get("protocol", "https"),
        "updated_at": config.updated_at if config else None,
    }


def _form_data(payload: ConnectorIn) -> QueryDict:
    unknown = sorted(set(payload.endpoints) - set(ENDPOINT_KEYS))
    if unknown:
        raise FieldsRefused(
            {"endpoints": [f"Unknown service {unknown[0]!r}: " + ", ".join(ENDPOINT_KEYS) + "."]}
        )
    data = QueryDict(mutable=True)
    data.update(payload.model_dump(exclude={"endpoints", "waf_template_id"}))
    if payload.waf_template_id is not None:
        data["waf_template_id"] = str(payload.waf_template_id)
    for name, key, _label in ENDPOINT_FIELDS:
        data[name] = payload.endpoints.get(key, "")
    return data


def _stored(account: Account) -> AccountConnector | None:
    return AccountConnector.objects.filter(account=account).first()


@router.get("/accounts/{account_id}/connector", response={200: ConnectorOut, 403: Message})
def get_connector(request, account_id: int):
    """How the account's handling tasks reach its cloud, without the secrets."""
    account = get_account_for_connector_change_or_404(request.scope, account_id)
    return _connector_out(account, _stored(account))


@router.put(
    "/accounts/{account_id}/connector",
    response={200: ConnectorOut, 403: Message, 422: Refused},
)
def set_connector(request, account_id: int, payload: ConnectorIn):
    """Change the account's connector settings, checked as the settings page
    checks them; an empty secret keeps the stored one."""
    account = get_account_for_connector_change_or_404(request.scope, account_id)
    form = ConnectorForm(_form_data(payload), instance=_stored(account))
    if not form.is_valid():
        errors = form_errors(form)
        # The API names the endpoint overrides as one field.
        for name, key, _label in ENDPOINT_FIELDS:
            if name in errors:
                errors.setdefault("endpoints", []).extend(
                    f"{key}: {message}" for message in errors.pop(name)
                )
        raise FieldsRefused(errors)
    saved = form.save(account=account, user=None)
    return _connector_out(account, saved)


@router.post(
    "/accounts/{account_id}/connector/check",
    response={200: ConnectionCheckOut, 403: Message},
)
def check_connector(request, account_id: int):
    """The settings page's connection test: a harmless read with the stored settings."""
    account = get_account_for_connector_change_or_404(request.scope, account_id)
    check = check_connection(account, _stored(account))
    return {"ok": check.ok, "message": check.message, "answer": check.answer}


# --- the simulated cloud (a simulation) --------------------------------------------


def _failure_out(failure: SimulatedFailure) -> dict:
    return {
        "id": failure.id,
        "account": failure.account.uid if failure.account_id else None,
        "target": failure.target,
        "percent": round(failure.share * 100, 2),
        "applies_to_undo": failure.applies_to_undo,
        "retryable": failure.retryable,
        "message": failure.message,
        "enabled": failure.enabled,
        "created_at": failure.created_at,
    }


@router.get("/simulated-cloud/failures", response=list[SimulatedFailureOut], tags=SIMULATION_TAGS)
def list_simulated_failures(request):
    """Simulation only: the instructions that make the simulated cloud of the
    key's accounts fail, newest first."""
    return [_failure_out(f) for f in queries.simulated_failures(request.scope)]


@router.post(
    "/simulated-cloud/failures",
    response={201: SimulatedFailureOut, 403: Message, 422: Refused},
    tags=SIMULATION_TAGS,
)
def add_simulated_failure(request, payload: SimulatedFailureIn):
    """Simulation only: tell the simulated cloud of an account to fail the calls
    for one entity value (or for any), all of them or a share."""
    configurable = queries.configurable_accounts(request.scope)
    require(bool(configurable), SIMULATED_CLOUD_ADMINISTRATORS_ONLY)
    choosable = Account.objects.filter(id__in=[a.id for a in configurable])
    account = (
        choosable.filter(uid=payload.account).first() if "\x00" not in payload.account else None
    )
    if account is None:
        raise FieldsRefused({"account": ["Name the uid of an account you administer."]})
    data = payload.model_dump()
    data["account"] = str(account.id)
    form = SimulatedFailureForm(data, accounts=choosable)
    if not form.is_valid():
        raise FieldsRefused(form_errors(form))
    return Status(201, _failure_out(form.save()))


@router.delete(
    "/simulated-cloud/failures/{failure_id}",
    response={204: None, 403: Message, 404: Message},
    tags=SIMULATION_TAGS,
)
def remove_simulated_failure(request, failure_id: int):
    """Simulation only: remove a failure instruction."""
    failure = get_simulated_failure_for_change_or_404(request.scope, failure_id)
    failure.delete()
    return Status(204, None)
