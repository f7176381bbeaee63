"""Whitelist rule groups for the pipeline scenario's comparison run.

The groups look like what a tenant accumulates: most are spread over the
alert types the bench generates, in proportion to how noisy each type is, a
few sit on types the bench never sends. Most never match (an unknown host,
an office CIDR block, a scheduler's command line, a list of partner IPs),
several pass their first condition for a share of the alerts and fail on the
second, and one group in twenty is written to match: together those whitelist
a few percent of the alerts, so the flag update, the match rows and the hit
counters run too. Everything derives from the seed, so two runs with the same
options build the same groups.
"""

import ipaddress
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.db.models import F
from django.utils import timezone

from secops.scope import Scope
from whitelist import services
from whitelist.models import Operator, Revision, RuleGroup
from whitelist.scenarios import scenario

# Alert types by how many groups they get out of 100: the noisiest types
# first, then a few types no generated alert has (their groups cost nothing).
SCENARIO_WEIGHTS = {
    "web_attack": 18,
    "brute_force": 14,
    "abnormal_network": 10,
    "malicious_process": 10,
    "suspicious_login": 7,
    "webshell": 6,
    "mining": 6,
    "reverse_shell": 5,
    "malicious_file": 5,
    "vulnerability_exploit": 5,
    "suspicious_process": 3,
    "rootkit": 3,
    "compromised_software": 2,
    "scanning": 2,
    "http_flood": 2,
    "threat_intelligence": 2,
}
DOCUMENTATION_NETWORKS = [
    ipaddress.ip_network("192.0.2.0/24"),
    ipaddress.ip_network("198.51.100.0/24"),
    ipaddress.ip_network("203.0.113.0/24"),
]
# One group in this many is one of the matching groups.
MATCHING_EVERY = 20


def condition(object_key: str, operator: str, value: str) -> services.ConditionSpec:
    return services.ConditionSpec(object_key, operator, value)


@dataclass(frozen=True)
class Template:
    """Conditions for the ``index``-th group made from this template."""

    name: str
    scenarios: tuple[str, ...] | None  # None: any scenario that has the objects
    build: Callable[["Values", int], list[services.ConditionSpec]]

    def objects(self, values: "Values") -> set[str]:
        return {c.object for c in self.build(values, 0)}

    def fits(self, scenario_key: str, values: "Values") -> bool:
        if self.scenarios is not None and scenario_key not in self.scenarios:
            return False
        return self.objects(values) <= set(scenario(scenario_key).objects)


class Values:
    """Values no generated alert carries (unknown hosts, documentation IPs,
    unknown hashes), drawn from the seed."""

    def __init__(self, seed: int):
        self.seed = seed

    def _rng(self, kind: str, index: int) -> random.Random:
        return random.Random(f"{kind}-{self.seed}-{index}")

    def unknown_uuid(self, index: int) -> str:
        return str(uuid.UUID(int=self._rng("uuid", index).getrandbits(128), version=4))

    def unknown_uuids(self, index: int, count: int) -> str:
        return "\n".join(self.unknown_uuid(index * 1_000 + n) for n in range(count))

    def documentation_ips(self, index: int, count: int) -> str:
        """Addresses of the TEST-NET blocks, which no generated attacker uses."""
        rng = self._rng("ips", index)
        return "\n".join(
            str(DOCUMENTATION_NETWORKS[n % 3][rng.randrange(1, 255)]) for n in range(count)
        )

    def unknown_hash(self, index: int) -> str:
        return self._rng("hash", index).randbytes(32).hex()


NEVER_MATCHING = [
    Template(
        "Backup agent on a decommissioned host",
        None,
        lambda v, i: [
            condition("host_uuid", Operator.EQUALS, v.unknown_uuid(i)),
            condition("file_path", Operator.CONTAINS, "/opt/backup/"),
        ],
    ),
    Template(
        "Office and VPN ranges",
        None,
        lambda v, i: [
            condition(
                "source_ip",
                Operator.IN_CIDR,
                f"192.0.2.0/24\n198.51.100.0/24\n10.{i % 256}.0.0/16\n100.64.0.0/10",
            )
        ],
    ),
    Template(
        "Configuration management runs",
        None,
        lambda v, i: [
            condition(
                "command_line", Operator.REGEX, rf"^/opt/(ansible|salt)/bin/\w+ .*--check-{i}\b"
            )
        ],
    ),
    Template(
        "Partner addresses",
        None,
        lambda v, i: [condition("source_ip", Operator.IN_LIST, v.documentation_ips(i, 50))],
    ),
    Template(
        "Status page checks",
        None,
        lambda v, i: [condition("domain", Operator.EQUALS, f"status-{i}.internal.example")],
    ),
    Template(
        "Bastion logons from the partner network",
        None,
        lambda v, i: [
            condition("host_name", Operator.STARTS_WITH, "bastion-"),
            condition("source_ip", Operator.IN_LIST, v.documentation_ips(i, 50)),
        ],
    ),
    Template(
        "Health check of the shop",
        ("web_attack", "vulnerability_exploit"),
        lambda v, i: [
            condition("alert_name", Operator.EQUALS, "SQL injection"),
            condition("url", Operator.STARTS_WITH, f"https://shop.example.com/healthz/{i}"),
        ],
    ),
    Template(
        "Vendor agent on the build hosts",
        None,
        lambda v, i: [
            condition("process_path", Operator.EQUALS, "/usr/bin/.sshd"),
            condition("host_uuid", Operator.IN_LIST, v.unknown_uuids(i, 30)),
        ],
    ),
    Template(
        "Alternative SSH port of the lab",
        None,
        lambda v, i: [
            condition("destination_port", Operator.EQUALS, str(2200 + i)),
            condition("source_ip", Operator.IN_CIDR, "203.0.113.0/24"),
        ],
    ),
    Template(
        "Known test sample",
        None,
        lambda v, i: [condition("file_hash", Operator.EQUALS, v.unknown_hash(i))],
    ),
    Template(
        "Metrics endpoint",
        None,
        lambda v, i: [condition("url", Operator.CONTAINS, f"/internal/metrics/{i}")],
    ),
    Template(
        "Carrier-grade NAT",
        None,
        lambda v, i: [condition("any_ip", Operator.IN_CIDR, "100.64.0.0/10")],
    ),
    Template(
        "Hosts of the lab network",
        None,
        lambda v, i: [condition("host_ip", Operator.IN_CIDR, f"10.{20 + i % 200}.0.0/16")],
    ),
    Template(
        "Puppet runs",
        None,
        lambda v, i: [condition("parent_process", Operator.CONTAINS, "/usr/local/bin/puppet")],
    ),
    Template(
        "Users other than root on a retired host",
        None,
        lambda v, i: [
            condition("user", Operator.NOT_EQUALS, "root"),
            condition("host_uuid", Operator.EQUALS, v.unknown_uuid(10_000 + i)),
        ],
    ),
    Template(
        "Load balancer probes",
        None,
        lambda v, i: [
            condition("destination_ip", Operator.IN_CIDR, "192.0.2.0/24"),
            condition("source_ip", Operator.EQUALS, "198.51.100.7"),
        ],
    ),
]

MATCHING = [
    Template(
        "Scanner of the pentest vendor",
        ("web_attack",),
        lambda v, i: [
            condition("alert_name", Operator.EQUALS, "Scanner behaviour"),
            condition("url", Operator.CONTAINS, "/.env"),
        ],
    ),
    Template(
        "Logons of the ops team on the bastions",
        ("brute_force",),
        lambda v, i: [
            condition("host_name", Operator.STARTS_WITH, "bastion-"),
            condition("user", Operator.IN_LIST, "deploy\ngit\nansible\nubuntu\nadmin"),
        ],
    ),
    Template(
        "Sanctioned miners of the research team",
        ("mining",),
        lambda v, i: [
            condition("command_line", Operator.CONTAINS, "--donate-level"),
            condition("domain", Operator.IN_LIST, "pool.supportxmr.com\nca.minexmr.com"),
        ],
    ),
    Template(
        "TLS checks of the monitoring provider",
        ("abnormal_network",),
        lambda v, i: [
            condition("destination_port", Operator.EQUALS, "443"),
            condition("host_ip", Operator.IN_CIDR, "47.96.0.0/12"),
        ],
    ),
    Template(
        "Loader of the vulnerability scanner",
        ("malicious_process",),
        lambda v, i: [
            condition("command_line", Operator.REGEX, r"^curl -fsSL http://[0-9.]+/ldr\.sh"),
            condition("host_name", Operator.STARTS_WITH, "k8s-node-"),
        ],
    ),
]


def scenario_sequence(count: int) -> list[str]:
    """``count`` scenarios in the proportions of ``SCENARIO_WEIGHTS``, interleaved."""
    total = sum(SCENARIO_WEIGHTS.values())
    picked: list[str] = []
    credit = dict.fromkeys(SCENARIO_WEIGHTS, 0.0)
    for _ in range(count):
        for key, weight in SCENARIO_WEIGHTS.items():
            credit[key] += weight / total
        key = max(credit, key=credit.get)
        credit[key] -= 1
        picked.append(key)
    return picked


def group_specs(count: int, seed: int) -> list[services.GroupSpec]:
    """``count`` global groups; every ``MATCHING_EVERY``-th one (the first
    included) is one of the matching groups, in turn."""
    values = Values(seed)
    expires_at = timezone.now() + timedelta(days=365)
    specs = []
    used: dict[str, int] = {}
    scenarios = scenario_sequence(count)
    for index in range(count):
        if index % MATCHING_EVERY == 0:
            template = MATCHING[(index // MATCHING_EVERY) % len(MATCHING)]
            scenario_key = template.scenarios[0]
        else:
            scenario_key = scenarios[index]
            fitting = [t for t in NEVER_MATCHING if t.fits(scenario_key, values)]
            template = fitting[used.get(scenario_key, 0) % len(fitting)]
            used[scenario_key] = used.get(scenario_key, 0) + 1
        specs.append(
            services.GroupSpec(
                name=f"{template.name} #{index + 1}",
                scenario=scenario_key,
                description="Made by the pipeline bench.",
                conditions=template.build(values, index),
                # Some groups expire, as groups made for a maintenance window do.
                expires_at=expires_at if index % 7 == 3 else None,
                is_global=True,
            )
        )
    return specs


def create_groups(scope: Scope, count: int, seed: int) -> list[RuleGroup]:
    """Store the groups as an organisation API key would (global groups allowed)."""
    return [
        services.save_group(spec, scope, allow_global=True) for spec in group_specs(count, seed)
    ]


def remove_groups(scope: Scope) -> int:
    """Delete the organisation's groups and move its revision, so no process
    keeps matching with a compiled copy of them."""
    groups = RuleGroup.objects.filter(organisation_id=scope.organisation_id)
    deleted = groups.count()
    groups.delete()
    Revision.objects.filter(organisation_id=scope.organisation_id).update(number=F("number") + 1)
    services.clear_cache()
    return deleted
