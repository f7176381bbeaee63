"""The account's connector settings page: for administrators of the account.

An account outside the caller's scope does not exist (404); inside it, only
an administrator of that account may see or change the settings (403). The
secrets posted here are kept out of Django's error reports
(``sensitive_post_parameters``) and never rendered back.
"""

from dataclasses import dataclass, field

from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods

from disposal.connector_forms import SECRET_FIELDS, ConnectorForm
from disposal.connectors import ConnectorError
from disposal.models import AccountConnector, ConnectorKind
from secops.models import Account
from secops.scope import get_for_change_or_404


@dataclass
class ConnectionCheck:
    ok: bool
    message: str
    answer: dict = field(default_factory=dict)


def _account_for_change(request, account_id: int) -> Account:
    return get_for_change_or_404(
        Account,
        request.scope,
        lambda scope, account: scope.may_configure([account.id]),
        "Only administrators of the account can see and change its connector settings.",
        id=account_id,
    )


def _check_connection(account: Account, config: AccountConnector | None) -> ConnectionCheck:
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


@sensitive_post_parameters(*SECRET_FIELDS)
@require_http_methods(["GET", "POST"])
def connector_settings(request, account_id: int):
    account = _account_for_change(request, account_id)
    config = AccountConnector.objects.filter(account=account).first()
    check = None
    if request.method == "POST" and request.POST.get("action") == "check":
        form = ConnectorForm(instance=config)
        check = _check_connection(account, config)
    elif request.method == "POST":
        form = ConnectorForm(request.POST, instance=config)
        if form.is_valid():
            saved = form.save(account=account, user=request.user)
            messages.success(
                request,
                f"Connector settings of {account.name} saved: {saved.get_kind_display()}.",
            )
            return redirect("disposal:connector_settings", account_id=account.id)
    else:
        form = ConnectorForm(instance=config)
    context = {"account": account, "config": config, "form": form, "check": check}
    return render(request, "disposal/connector_settings.html", context)
