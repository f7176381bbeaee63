"""The AccessKey page: the caller's own AccessKey pairs for the cloud SIEM
compatible API. Everyone may hold keys (they act with the holder's own
scope and roles); nobody sees or revokes anyone else's."""

from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from cloudsiem import services
from cloudsiem.forms import AccessKeyForm
from cloudsiem.models import AccessKey


def _page(request, new_key=None, new_secret=None):
    context = {
        "keys": AccessKey.objects.of_user(request.user),
        "new_key": new_key,
        "new_secret": new_secret,
        "endpoint": request.get_host(),
    }
    return render(request, "cloudsiem/access_keys.html", context)


@require_GET
def access_keys(request):
    return _page(request)


@require_POST
def create_access_key(request):
    form = AccessKeyForm(request.POST)
    if not form.is_valid():
        for error in form.errors["name"]:
            messages.error(request, f"AccessKey name: {error}")
        return redirect("cloudsiem:access_keys")
    key, secret = services.create_access_key(request.user, name=form.cleaned_data["name"])
    messages.success(request, f"AccessKey {key.access_key_id} created.")
    # Rendered in this response only: the secret is never shown again.
    return _page(request, new_key=key, new_secret=secret)


@require_POST
def revoke_access_key(request, access_key_id: int):
    key = services.get_own_key_or_404(request.user, access_key_id)
    services.revoke(key)
    messages.success(request, f"AccessKey {key.access_key_id} revoked.")
    return redirect("cloudsiem:access_keys")
