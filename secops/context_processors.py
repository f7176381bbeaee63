from django.urls import NoReverseMatch, reverse
from django.utils.functional import SimpleLazyObject

from secops import audit_log, services
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
    ("AccessKeys", "cloudsiem:access_keys"),
]
# Shown only to those who may open it (administrators).
AUDIT_LOG_ENTRY = ("Audit Log", "audit_log")


def _navigation(path: str, scope=None):
    """(label, url, current) of each existing page; the current one is the
    entry whose URL is the longest prefix of the path (so sub-pages count)."""
    pages = list(NAVIGATION)
    if scope is not None and audit_log.may_read(scope):
        pages.append(AUDIT_LOG_ENTRY)
    entries = []
    for label, name in pages:
        try:
            entries.append((label, reverse(name)))
        except NoReverseMatch:
            continue
    matches = [url for _, url in entries if url == path or (url != "/" and path.startswith(url))]
    current = max(matches, key=len, default=None)
    return [(label, url, url == current) for label, url in entries]


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
        "navigation": SimpleLazyObject(
            lambda: _navigation(request.path, getattr(request, "scope", None))
        ),
        "scope_selector": SimpleLazyObject(lambda: _selector(request)),
    }
