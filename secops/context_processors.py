from django.urls import NoReverseMatch, reverse
from django.utils.functional import SimpleLazyObject

from secops import services
from secops.enums import RegionGroup, View

# The console's pages in menu order. An entry shows only once its page exists
# (its URL name resolves), so the menu never links to a page still to come.
NAVIGATION = [
    ("Overview", "home"),
    ("Security Event Handling", "events:list"),
    ("Alert", "alerts:list"),
    ("Disposal Center", "disposal:center"),
    ("Whitelist", "whitelist:settings"),
    ("SOAR", "soar:playbooks"),
    ("Detection Rules", "events:rules"),
    ("Data Sources", "alerts:data_sources"),
]


def _navigation():
    entries = []
    for label, name in NAVIGATION:
        try:
            entries.append((label, reverse(name)))
        except NoReverseMatch:
            continue
    return entries


def _selector(request):
    user = request.user
    return {
        "accounts": list(services.selectable_accounts(user).order_by("name")),
        "can_use_global_view": services.can_use_global_view(user),
        "regions": RegionGroup.choices,
    }


def scope(request):
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    return {
        "scope": request.scope,
        "View": View,
        "navigation": SimpleLazyObject(_navigation),
        "scope_selector": SimpleLazyObject(lambda: _selector(request)),
    }
