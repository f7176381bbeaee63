"""The built-in scenarios: what the console can do to an IP, a file or a process,
and through which cloud service. They are rows (``Scenario``), kept in step with
this table after every migration, so that policies, the Handle panel and
playbooks all read one list."""

from dataclasses import dataclass, field

from alerts.models import EntityType
from disposal.models import CloudService, Operation, Scenario

# How long a block lasts unless the analyst says otherwise.
DEFAULT_BLOCK_DAYS = 7
# The longest validity anyone may choose.
MAX_VALIDITY_DAYS = 365


@dataclass(frozen=True)
class BuiltIn:
    key: str
    name: str
    description: str
    entity_type: str
    cloud_service: str
    operation: str
    parameters: dict = field(default_factory=dict)
    takes_validity: bool = False
    per_host: bool = False


BUILT_IN = [
    BuiltIn(
        "block-ip-cloud-firewall-inbound",
        "Block inbound traffic from the IP on Cloud Firewall",
        "An access control policy that drops traffic from the IP to the account's assets.",
        EntityType.IP,
        CloudService.CLOUD_FIREWALL,
        Operation.BLOCK_IP,
        {"direction": "in"},
        takes_validity=True,
    ),
    BuiltIn(
        "block-ip-cloud-firewall-outbound",
        "Block outbound traffic to the IP on Cloud Firewall",
        "An access control policy that drops traffic from the account's assets to the IP.",
        EntityType.IP,
        CloudService.CLOUD_FIREWALL,
        Operation.BLOCK_IP,
        {"direction": "out"},
        takes_validity=True,
    ),
    BuiltIn(
        "block-ip-waf",
        "Block the IP on Web Application Firewall",
        "Adds the IP to the IP blacklist of the account's WAF protection.",
        EntityType.IP,
        CloudService.WAF,
        Operation.BLOCK_IP,
        takes_validity=True,
    ),
    BuiltIn(
        "block-ip-security-center",
        "Block the IP on the host through Security Center",
        "The Security Center agent blocks the IP on each host the alerts name.",
        EntityType.IP,
        CloudService.SECURITY_CENTER,
        Operation.BLOCK_IP,
        takes_validity=True,
        per_host=True,
    ),
    BuiltIn(
        "quarantine-file",
        "Quarantine the file through Security Center",
        "The Security Center agent moves the file into quarantine on each host it was seen on.",
        EntityType.FILE,
        CloudService.SECURITY_CENTER,
        Operation.QUARANTINE_FILE,
        per_host=True,
    ),
    BuiltIn(
        "kill-process",
        "Kill the process through Security Center",
        "The Security Center agent ends the process on each host it was seen on.",
        EntityType.PROCESS,
        CloudService.SECURITY_CENTER,
        Operation.KILL_PROCESS,
        per_host=True,
    ),
    BuiltIn(
        "kill-process-and-quarantine",
        "Kill the process and quarantine its file through Security Center",
        "Ends the process and quarantines its executable on each host it was seen on.",
        EntityType.PROCESS,
        CloudService.SECURITY_CENTER,
        Operation.KILL_AND_QUARANTINE,
        per_host=True,
    ),
]

# What "Use Recommended Handling Policy" chooses for a malicious entity of each type.
RECOMMENDED = {
    EntityType.IP: "block-ip-cloud-firewall-inbound",
    EntityType.FILE: "quarantine-file",
    EntityType.PROCESS: "kill-process",
}

# The entity types the Handle panel has tabs for, in order.
HANDLED_TYPES = (EntityType.IP, EntityType.FILE, EntityType.PROCESS)


def sync_builtin_scenarios(**_kwargs) -> None:
    """Create or update the built-in scenarios (after every migrate)."""
    for position, spec in enumerate(BUILT_IN):
        Scenario.objects.update_or_create(
            key=spec.key,
            defaults={
                "name": spec.name,
                "description": spec.description,
                "entity_type": spec.entity_type,
                "cloud_service": spec.cloud_service,
                "operation": spec.operation,
                "parameters": spec.parameters,
                "takes_validity": spec.takes_validity,
                "default_validity_days": DEFAULT_BLOCK_DAYS if spec.takes_validity else None,
                "per_host": spec.per_host,
                "built_in": True,
                "organisation": None,
                "position": position,
            },
        )


def scenarios_for(scope, entity_type: str | None = None):
    """The scenarios the scope may use: the built-in ones and its organisation's."""
    from django.db.models import Q

    qs = Scenario.objects.filter(
        Q(organisation__isnull=True) | Q(organisation_id=scope.organisation_id)
    )
    if entity_type:
        qs = qs.filter(entity_type=entity_type)
    return qs
