"""Web Application Firewall (``waf_access_log``): attack alerts and HTTP logs.

One topic carries every request WAF saw. ``waf`` turns the requests WAF
blocked, or flagged in observation mode, into alerts and refuses the rest
with ``NotAnAttackRecord``; ``waf_access`` turns every request into an
``http`` log. Three generations of decision fields may appear in one stream:
the ``final_*`` set (WAF 2.0 and 3.0), per-module ``<module>_action`` /
``<module>_test`` pairs, and the legacy block flags, read in that order.
"""

from dataclasses import dataclass

from alerts.adapters.base import (
    ATTACKER,
    MAX_DESCRIPTION_LENGTH,
    MAX_NAME_LENGTH,
    RELATED,
    VICTIM,
    Adapter,
    EntityList,
    NotAnAttackRecord,
    Record,
    alert_uuid,
    cap,
    clean_ip,
    without_empty,
)
from alerts.models import AlertSource, EntityType, LogType

TOPICS = frozenset({"waf_access_log"})
# ``user_id`` is the WAF owner's account in WAF's own Logstore.
ACCOUNT_KEYS = ("owner_id", "aliuid", "user_id")
# ``time`` is ISO-8601 with an offset; WAF 3.0 adds ``start_time`` (epoch seconds).
TIME_KEYS = ("time", "start_time", "__time__")

# Protection modules that write ``<module>_action`` / ``<module>_rule_id`` /
# ``<module>_rule_type`` / ``<module>_test``.
MODULES = (
    "waf",
    "deeplearning",
    "acl",
    "cc",
    "antiscan",
    "account",
    "normalized",
    "scene",
    "intelligence",
    "algorithm",
    "wxbb",
    "antifraud",
    "dlp",
)
CHALLENGE_ACTIONS = frozenset({"captcha_strict", "captcha", "sigchl", "js"})
ATTACK_CLASS_KEYS = (
    "final_rule_type",
    "waf_rule_type",
    "deeplearning_rule_type",
    "web_attack_type",
)

# Scenario keys by the module that decided (``final_plugin``, the module of a
# ``<module>_action``, or the legacy ``block_action``). ``tmd`` and ``geo``
# are the legacy names of HTTP-flood and region blocking.
MODULE_SCENARIOS = {
    "waf": "web_attack",
    "deeplearning": "web_attack",
    "sema": "web_attack",
    "normalized": "web_attack",
    "major_protection": "web_attack",
    "cc": "http_flood",
    "tmd": "http_flood",
    "scc_gdrl": "http_flood",
    "antiscan": "scanning",
    "acl": "access_control",
    "geo": "access_control",
    "scene": "bot",
    "intelligence": "bot",
    "algorithm": "bot",
    "antibot": "bot",
    "wxbb": "bot",
    "antifraud": "bot",
    "account": "account_security",
    "dlp": "data_leak",
}
SCENARIO_TITLES = {
    "web_attack": "web attack",
    "http_flood": "HTTP flood",
    "scanning": "scanning",
    "access_control": "access control rule",
    "bot": "bot traffic",
    "account_security": "account attack",
    "data_leak": "data leak",
}
SCENARIO_ATTCK = {
    "web_attack": {"tactic": "TA0001", "technique": "T1190"},
    "scanning": {"tactic": "TA0043", "technique": "T1595"},
    "http_flood": {"tactic": "TA0040", "technique": "T1499"},
}
# A blocked request is stopped at the edge; one that was only observed
# (observation mode) reached the origin and deserves a closer look.
BLOCKED_LEVEL = "low"
OBSERVED_LEVEL = "medium"


@dataclass(frozen=True)
class WafVerdict:
    blocked: bool
    module: str
    rule_id: str | None
    attack_class: str | None

    @property
    def outcome(self) -> str:
        return "blocked" if self.blocked else "detected"

    @property
    def scenario(self) -> str:
        if self.module in MODULE_SCENARIOS:
            return MODULE_SCENARIOS[self.module]
        return "web_attack" if self.attack_class else "waf_protection"


class WafAlertAdapter(Adapter):
    name = "waf"
    kind = "alert"
    topics = TOPICS
    account_keys = ACCOUNT_KEYS

    def convert(self, entry: Record, account: str) -> dict:
        verdict = verdict_of(entry)
        request = HttpRequest.of(entry)
        native = {
            "source": AlertSource.WAF.value,
            "uuid": alert_uuid(entry.text("request_traceid"), entry.raw),
            "account": account,
            "type": verdict.scenario,
            "name": alert_name(verdict),
            "level": BLOCKED_LEVEL if verdict.blocked else OBSERVED_LEVEL,
            "occurred_at": entry.time(*TIME_KEYS),
            "entities": request.entities(entry),
        }
        if verdict.scenario in SCENARIO_ATTCK:
            native["attck"] = dict(SCENARIO_ATTCK[verdict.scenario])
        native["description"] = description(verdict, request)
        native["exceptions"] = []
        return native


class WafAccessLogAdapter(Adapter):
    name = "waf_access"
    kind = "log"
    topics = TOPICS
    account_keys = ACCOUNT_KEYS

    def convert(self, entry: Record, account: str) -> dict:
        request = HttpRequest.of(entry)
        return {
            "type": LogType.HTTP.value,
            "account": account,
            # WAF protects domains, not agent hosts.
            "host_uuid": "",
            "time": entry.time(*TIME_KEYS),
            **without_empty(
                {
                    "method": request.method,
                    "host": request.host,
                    "path": request.path,
                    "status": request.status,
                    "src_ip": request.client_ip,
                    "user_agent": entry.text("http_user_agent"),
                }
            ),
        }


def verdict_of(entry: Record) -> WafVerdict:
    """What WAF decided about the request; ``NotAnAttackRecord`` if it decided nothing."""
    attack_class = entry.text(*ATTACK_CLASS_KEYS, limit=64)
    final_action = (entry.text("final_action") or "").lower()
    if final_action == "block":
        plugin = (entry.text("final_plugin") or "").lower()
        return WafVerdict(
            blocked=True,
            module=plugin or "waf",
            rule_id=entry.text("final_rule_id"),
            attack_class=attack_class,
        )
    observed = None
    for module in MODULES:
        if (entry.text(f"{module}_action") or "").lower() != "block":
            continue
        verdict = WafVerdict(
            # ``<module>_test`` true is observation mode: logged, not enforced.
            blocked=not entry.flag(f"{module}_test"),
            module=module,
            rule_id=entry.text(f"{module}_rule_id"),
            attack_class=entry.text(f"{module}_rule_type", limit=64) or attack_class,
        )
        if verdict.blocked:
            return verdict
        observed = observed or verdict
    legacy_module = legacy_blocking_module(entry)
    if legacy_module:
        return WafVerdict(
            blocked=True,
            module=legacy_module,
            rule_id=entry.text(f"{legacy_module}_rule_id", "waf_rule_id"),
            attack_class=attack_class,
        )
    if observed:
        return observed
    if entry.text("web_attack_type") and entry.text("waf_rule_id"):
        # A legacy web rule matched but let the request pass.
        return WafVerdict(False, "waf", entry.text("waf_rule_id"), attack_class)
    if final_action in CHALLENGE_ACTIONS:
        raise NotAnAttackRecord(
            "final_action",
            f"WAF challenged the request ({final_action}) and this line does not say whether "
            "the client failed; store it with format=waf_access",
        )
    raise NotAnAttackRecord(
        "final_action",
        "no WAF module blocked or flagged this request (no final_action=block, no "
        "<module>_action=block, no legacy block flag); store it with format=waf_access",
    )


def legacy_blocking_module(entry: Record) -> str | None:
    """The module that blocked the request according to the legacy fields."""
    if entry.text("acl_blocks") == "1" or (entry.text("acl_action") or "").lower() == "drop":
        return "acl"
    if entry.text("cc_blocks") == "1" or (entry.text("cc_action") or "").lower() == "close":
        return "cc"
    if (entry.text("antibot_action") or "").lower() == "drop":
        return "antibot"
    # ``block_action`` names the module that blocked (deprecated for final_plugin).
    block_action = (entry.text("block_action", limit=64) or "").lower()
    return block_action or None


def alert_name(verdict: WafVerdict) -> str:
    title = SCENARIO_TITLES.get(verdict.scenario, f"{verdict.module} rule")
    name = f"WAF {verdict.outcome}: {title}"
    if verdict.attack_class and verdict.scenario == "web_attack":
        name = f"{name} ({verdict.attack_class})"
    return cap(name, MAX_NAME_LENGTH)


@dataclass(frozen=True)
class HttpRequest:
    """The request a WAF line describes, as far as the line tells."""

    method: str | None
    host: str | None
    path: str | None
    target: str | None
    url: str | None
    status: int | None
    client_ip: str | None

    @classmethod
    def of(cls, entry: Record) -> "HttpRequest":
        host = entry.text("host")
        path = entry.text("request_path")
        query = entry.text("querystring")
        target = entry.text("request_uri")
        if target is None and path is not None:
            target = f"{path}?{query}" if query else path
        if path is None and target is not None:
            path = target.split("?", 1)[0]
        scheme = "https" if entry.flag("https") else "http"
        url = f"{scheme}://{host}{target or '/'}" if host else target
        return cls(
            method=entry.text("request_method", limit=16),
            host=host,
            path=path,
            target=target,
            url=cap(url) if url else None,
            status=entry.integer("status", minimum=100, maximum=999),
            client_ip=client_ip(entry),
        )

    def entities(self, entry: Record) -> list[dict]:
        entities = EntityList()
        entities.ip(ATTACKER, self.client_ip)
        host_name = host_without_port(self.host) if self.host else None
        if host_name and clean_ip(host_name):
            entities.ip(VICTIM, host_name)
        elif host_name:
            entities.value(EntityType.DOMAIN, VICTIM, host_name.lower())
        entities.value(EntityType.URL, RELATED, self.url)
        # Where an injection or exploit travels: the query string and any captured body.
        entities.value(EntityType.PAYLOAD, RELATED, entry.text("querystring"))
        entities.value(EntityType.PAYLOAD, RELATED, entry.text("request_body"))
        return entities.items


def client_ip(entry: Record) -> str | None:
    """The client as WAF worked it out, else the connecting peer, else the first XFF hop."""
    address = entry.ip("real_client_ip", "src_ip", "remote_addr")
    if address:
        return address
    forwarded = entry.text("http_x_forwarded_for") or ""
    return clean_ip(forwarded.split(",", 1)[0])


def host_without_port(host: str) -> str:
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    if host.count(":") == 1:
        return host.split(":", 1)[0]
    return host


def description(verdict: WafVerdict, request: HttpRequest) -> str:
    parts = [
        f"{request.method or 'Request'} {request.url or '(unknown URL)'}",
        f"from {request.client_ip}" if request.client_ip else None,
        f"{verdict.outcome} by WAF module {verdict.module}",
        f"rule {verdict.rule_id}" if verdict.rule_id else None,
        f"attack type {verdict.attack_class}" if verdict.attack_class else None,
        f"HTTP status {request.status}" if request.status is not None else None,
    ]
    return cap("; ".join(part for part in parts if part) + ".", MAX_DESCRIPTION_LENGTH)
