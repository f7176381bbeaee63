"""The account's connector settings page: for administrators of the account.

An account outside the caller's scope does not exist (404); inside it, only
an administrator of that account may see or change the settings (403). The
secrets posted here are kept out of Django's error reports
(``sensitive_post_parameters``) and never rendered back.
"""

from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods

from disposal.connector_forms import SECRET_FIELDS, ConnectorForm
from disposal.connector_settings import check_connection, get_account_for_connector_change_or_404
from disposal.models import AccountConnector


@sensitive_post_parameters(*SECRET_FIELDS)
@require_http_methods(["GET", "POST"])
def connector_settings(request, account_id: int):
    account = get_account_for_connector_change_or_404(request.scope, account_id)
    config = AccountConnector.objects.filter(account=account).first()
    check = None
    if request.method == "POST" and request.POST.get("action") == "check":
        form = ConnectorForm(instance=config)
        check = check_connection(account, config)
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
