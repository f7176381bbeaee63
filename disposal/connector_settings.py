"""Who may see and change an account's connector settings and its simulated
cloud's failure instructions, and the settings page's connection check;
shared by the pages and the API."""

from dataclasses import dataclass, field

from disposal.connectors import ConnectorError
from disposal.models import AccountConnector, ConnectorKind, SimulatedFailure
from secops.models import Account
from secops.scope import Scope, get_for_change_or_404

SIMULATED_CLOUD_ADMINISTRATORS_ONLY = (
    "Only administrators of the account may instruct its simulated cloud."
)


@dataclass
class ConnectionCheck:
    ok: bool
    message: str
    answer: dict = field(default_factory=dict)


def get_account_for_connector_change_or_404(scope: Scope, account_id) -> Account:
    """An account of the scope (else 404) that the caller administers (else 403):
    its settings hold secrets, so even reading them takes an administrator."""
    return get_for_change_or_404(
        Account,
        scope,
        lambda s, account: s.may_configure([account.id]),
        "Only administrators of the account can see and change its connector settings.",
        id=account_id,
    )


def get_simulated_failure_for_change_or_404(scope: Scope, failure_id) -> SimulatedFailure:
    return get_for_change_or_404(
        SimulatedFailure,
        scope,
        lambda s, failure: s.may_configure([failure.account_id]),
        SIMULATED_CLOUD_ADMINISTRATORS_ONLY,
        id=failure_id,
    )


def check_connection(account: Account, config: AccountConnector | None) -> ConnectionCheck:
    """A harmless read with the stored settings, where the connector offers one."""
    if config is None or config.kind == ConnectorKind.SIMULATED:
        return ConnectionCheck(True, "The simulated cloud needs no connection.")
    if config.kind != ConnectorKind.ALIBABA:
        return ConnectionCheck(
            False, f"The {config.get_kind_display()} connector has no connection test."
        )
    # Imported here: the cloud SDKs are large, and only this action needs them.
    from disposal.connectors.alibaba import AlibabaCloud

    try:
        answer = AlibabaCloud(account=account, config=config).check_connection()
    except ConnectorError as exc:
        return ConnectionCheck(False, exc.message, exc.answer)
    return ConnectionCheck(
        True,
        "Cloud Firewall answered DescribeControlPolicy"
        + (" as the assumed role." if answer.get("role_assumed") else "."),
        answer,
    )
