"""Assets, entities, alerts and raw logs: what the cloud products tell us."""

import hashlib
import json
from datetime import UTC

from django.db import models
from django.db.models import Value

from secops.enums import RegionGroup, RiskLevel
from secops.models import Account
from secops.scope import ScopedQuerySet
from secops.tenancy import TenantForeignKey, TenantQuerySet, organisation_field


class AlertSource(models.TextChoices):
    SECURITY_CENTER = "security_center", "Security Center"
    WAF = "waf", "Web Application Firewall"
    CLOUD_FIREWALL = "cloud_firewall", "Cloud Firewall"
    SIEM = "siem", "SIEM"


class AlertType(models.TextChoices):
    """The alert types the console knows, each with the name analysts read.

    An alert's type is the whitelist scenario; it is open-ended (a custom
    source may send any type), so the Alert column takes any value and an
    unknown one is shown as it is: see ``alert_type_label``.
    """

    ABNORMAL_NETWORK = "abnormal_network", "Abnormal network connection"
    ACCESS_CONTROL = "access_control", "Access control"
    ACCOUNT_SECURITY = "account_security", "Account attack"
    ANOMALOUS_EVENT = "anomalous_event", "Anomalous event"
    APPLICATION_INTRUSION = "application_intrusion", "Application intrusion"
    BOT = "bot", "Bot traffic"
    BRUTE_FORCE = "brute_force", "Brute force"
    BUFFER_OVERFLOW = "buffer_overflow", "Buffer overflow"
    CLOUD_THREAT = "cloud_threat", "Cloud product threat"
    CLUSTER_ANOMALY = "cluster_anomaly", "Cluster anomaly"
    COMMAND_EXECUTION = "command_execution", "Command execution"
    COMPROMISED_SOFTWARE = "compromised_software", "Compromised basic software"
    DATA_LEAK = "data_leak", "Data leak"
    DOS = "dos", "Denial of service"
    HTTP_FLOOD = "http_flood", "HTTP flood"
    INFORMATION_LEAK = "information_leak", "Information leak"
    LOG_TAMPERING = "log_tampering", "Log tampering"
    MALICIOUS_FILE = "malicious_file", "Malicious file"
    MALICIOUS_PROCESS = "malicious_process", "Malicious process"
    MALICIOUS_SCRIPT = "malicious_script", "Malicious script"
    MINING = "mining", "Mining"
    NETWORK_ATTACK = "network_attack", "Network attack"
    PERSISTENCE = "persistence", "Persistence"
    PRIVILEGE_ESCALATION = "privilege_escalation", "Privilege escalation"
    RANSOMWARE = "ransomware", "Ransomware"
    REVERSE_SHELL = "reverse_shell", "Reverse shell"
    ROOTKIT = "rootkit", "Rootkit"
    SCANNING = "scanning", "Scanning"
    SECURITY_CENTER_ALERT = "security_center_alert", "Security Center alert"
    SENSITIVE_FILE_TAMPERING = "sensitive_file_tampering", "Sensitive file tampering"
    SIEM_DETECTION = "siem_detection", "SIEM detection"
    SUSPICIOUS_ACCOUNT = "suspicious_account", "Suspicious account"
    SUSPICIOUS_LOGIN = "suspicious_login", "Suspicious login"
    SUSPICIOUS_PROCESS = "suspicious_process", "Suspicious process"
    THREAT_INTELLIGENCE = "threat_intelligence", "Threat intelligence"
    TROJAN = "trojan", "Trojan or backdoor"
    VULNERABILITY_EXPLOIT = "vulnerability_exploit", "Vulnerability exploitation"
    WEB_ATTACK = "web_attack", "Web attack"
    WEBSHELL = "webshell", "Webshell"
    WORM = "worm", "Worm"


_ALERT_TYPE_LABELS = dict(AlertType.choices)


def alert_type_label(value) -> str:
    """The name of an alert type; an unknown type (a custom source's) as it is."""
    return _ALERT_TYPE_LABELS.get(value, "" if value is None else str(value))


class EntityType(models.TextChoices):
    IP = "ip", "IP address"
    FILE = "file", "File"
    PROCESS = "process", "Process"
    HOST = "host", "Host"
    DOMAIN = "domain", "Domain"
    URL = "url", "URL"
    USER = "user", "User / logon"
    PAYLOAD = "payload", "Attack payload"


class EntityRole(models.TextChoices):
    ATTACKER = "attacker", "Attacker"
    VICTIM = "victim", "Victim"
    RELATED = "related", "Related"


class LogType(models.TextChoices):
    PROCESS = "process", "Process"
    NETWORK = "network", "Network"
    LOGIN = "login", "Login"
    FILE = "file", "File"
    DNS = "dns", "DNS"
    HTTP = "http", "HTTP"


class Asset(models.Model):
    """A host (ECS instance or server) of an account."""

    scope_region_field = "region"

    organisation = organisation_field()
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="assets")
    uuid = models.CharField(max_length=64, help_text="The host uuid the agent reports.")
    instance_id = models.CharField(max_length=64, blank=True)
    name = models.CharField(max_length=255, blank=True)
    public_ip = models.GenericIPAddressField(null=True, blank=True)
    private_ip = models.GenericIPAddressField(null=True, blank=True)
    os = models.CharField(max_length=128, blank=True)
    cloud_region = models.CharField(max_length=64, blank=True)
    region = models.CharField(max_length=8, choices=RegionGroup.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ScopedQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "account", "uuid"], name="asset_unique_uuid_per_account"
            )
        ]
        indexes = [models.Index(fields=["account", "instance_id"], name="asset_instance_idx")]

    def __str__(self):
        return self.name or self.instance_id or self.uuid


class Entity(models.Model):
    """Something an alert is about: an IP, a file, a process, a logon, ...

    ``value`` is the normalised identity (lower-cased domain, the file's
    sha256 or md5 or path, ...); ``digest`` is its sha256 so that long values
    (command lines, URLs, payloads) can still be unique per account.
    """

    organisation = organisation_field()
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="entities")
    type = models.CharField(max_length=16, choices=EntityType.choices)
    value = models.TextField()
    digest = models.CharField(max_length=64)
    attributes = models.JSONField(default=dict, blank=True)
    malicious = models.BooleanField(default=False)
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()

    objects = ScopedQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "entities"
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "account", "type", "digest"],
                name="entity_unique_per_account",
            )
        ]
        # "Related alerts" and the several-events graph look entities up by value.
        indexes = [models.Index(fields=["type", "digest"], name="entity_type_digest_idx")]

    def __str__(self):
        return f"{self.get_type_display()}: {self.value[:80]}"

    @staticmethod
    def digest_for(entity_type: str, value: str) -> str:
        return hashlib.sha256(f"{entity_type}\x00{value}".encode()).hexdigest()


class Alert(models.Model):
    scope_region_field = "region"
    # Partitioned by this column on PostgreSQL (alerts.partitions).
    partitioned_by = "occurred_at"

    organisation = organisation_field()
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="alerts")
    asset = TenantForeignKey(
        Asset, on_delete=models.SET_NULL, null=True, blank=True, related_name="alerts"
    )
    source = models.CharField(max_length=32, choices=AlertSource.choices)
    source_uuid = models.CharField(max_length=128)
    type = models.CharField(
        max_length=64, help_text="The alert type, which is the whitelist scenario."
    )
    name = models.CharField(max_length=255)
    level = models.PositiveSmallIntegerField(choices=RiskLevel.choices)
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField(auto_now_add=True)
    region = models.CharField(max_length=8, choices=RegionGroup.choices)
    tactic = models.CharField(max_length=128, blank=True)
    technique = models.CharField(max_length=128, blank=True)
    description = models.TextField(blank=True)
    exceptions = models.JSONField(default=list, blank=True, help_text="Associated exceptions.")
    raw = models.JSONField(default=dict, blank=True, help_text="The original data, verbatim.")
    whitelisted = models.BooleanField(default=False)
    entities = models.ManyToManyField(Entity, through="AlertEntity", related_name="alerts")

    objects = ScopedQuerySet.as_manager()

    class Meta:
        constraints = [
            # Ingestion is idempotent on (account, source, source uuid), which
            # AlertKey decides: on PostgreSQL this table is partitioned by
            # occurred_at, and a unique key of a partitioned table must include
            # that column. This one also serves lookups by source uuid.
            models.UniqueConstraint(
                fields=["organisation", "account", "source", "source_uuid", "occurred_at"],
                name="alert_unique_source_uuid_per_account",
            )
        ]
        indexes = [
            # The Alert page: newest first in scope, optionally by source/level/type.
            models.Index(fields=["account", "region", "-occurred_at"], name="alert_scope_time_idx"),
            models.Index(
                fields=["account", "source", "-occurred_at"], name="alert_source_time_idx"
            ),
            models.Index(fields=["account", "type", "-occurred_at"], name="alert_type_time_idx"),
            # Retention deletes by age.
            models.Index(fields=["occurred_at"], name="alert_occurred_idx"),
        ]

    def __str__(self):
        return f"{self.name} ({self.get_source_display()})"

    @property
    def type_label(self) -> str:
        return alert_type_label(self.type)


class AlertKey(models.Model):
    """The identity of every stored alert: (account, source, source uuid).

    Ingestion inserts the key first and stores the alert only when the key is
    new, so a re-sent or concurrently sent alert is stored once. The account
    is part of the key so that what one tenant sends can never collide with,
    reveal or pre-empt another tenant's alerts. It is a table of its own
    because the alerts table is partitioned by time, where a unique key would
    have to include the alert's time (and an alert re-sent with another time
    would then be stored twice). Retention removes a key once its alert is gone.
    """

    organisation = organisation_field()
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+")
    source = models.CharField(max_length=32, choices=AlertSource.choices)
    source_uuid = models.CharField(max_length=128)
    occurred_at = models.DateTimeField()

    objects = TenantQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "account", "source", "source_uuid"],
                name="alert_key_unique_source_uuid_per_account",
            )
        ]
        indexes = [models.Index(fields=["occurred_at"], name="alert_key_occurred_idx")]

    def __str__(self):
        return f"{self.source} {self.source_uuid}"


class AlertEntity(models.Model):
    partitioned_by = "occurred_at"
    # Alerts are partitioned by time on PostgreSQL, where a foreign key to
    # them would need the partition key too: the link is kept by the ORM
    # (deletes cascade through Django) rather than by a database constraint.
    organisation = organisation_field()
    alert = TenantForeignKey(Alert, on_delete=models.CASCADE, related_name="entity_links")
    entity = TenantForeignKey(Entity, on_delete=models.CASCADE, related_name="alert_links")
    role = models.CharField(max_length=16, choices=EntityRole.choices)
    # What this alert says of the entity (a process's pid and user, a file's
    # path, ...). The entity row keeps the first alert's attributes for the
    # whole account; rules and the whitelist must judge each alert by its own.
    attributes = models.JSONField(
        default=dict, db_default=Value({}, output_field=models.JSONField()), blank=True
    )
    # The alert's time: the links are partitioned with their alerts, so that
    # retention drops both together.
    occurred_at = models.DateTimeField()

    objects = TenantQuerySet.as_manager()

    class Meta:
        constraints = [
            # The alert determines occurred_at: the key is (alert, entity, role).
            models.UniqueConstraint(
                fields=["organisation", "alert", "entity", "role", "occurred_at"],
                name="alert_entity_role_unique",
            )
        ]
        indexes = [models.Index(fields=["entity", "alert"], name="alert_entity_by_entity_idx")]

    def __str__(self):
        return f"{self.get_role_display()} {self.entity_id} of alert {self.alert_id}"

    def save(self, *args, **kwargs):
        if self.occurred_at is None:
            self.occurred_at = self.alert.occurred_at
        super().save(*args, **kwargs)


class LogRecord(models.Model):
    """One host or network log line; the input of SIEM rules and source tracing."""

    scope_region_field = "region"
    partitioned_by = "time"

    organisation = organisation_field()
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="log_records")
    asset = TenantForeignKey(
        Asset, on_delete=models.SET_NULL, null=True, blank=True, related_name="log_records"
    )
    host_uuid = models.CharField(max_length=64, blank=True)
    log_type = models.CharField(max_length=16, choices=LogType.choices)
    time = models.DateTimeField()
    received_at = models.DateTimeField(auto_now_add=True)
    region = models.CharField(max_length=8, choices=RegionGroup.choices)
    fields = models.JSONField(default=dict)
    # Identity of the record's content: resending a log batch stores nothing twice.
    digest = models.CharField(max_length=40)

    objects = ScopedQuerySet.as_manager()

    class Meta:
        constraints = [
            # The digest covers the record's time, so (account, digest) is
            # the identity; time is in the key because logs are partitioned
            # by it on PostgreSQL.
            models.UniqueConstraint(
                fields=["organisation", "account", "digest", "time"],
                name="log_unique_content_per_account",
            )
        ]
        indexes = [
            # Source tracing reads one host's logs around the alerts' times.
            models.Index(fields=["account", "host_uuid", "time"], name="log_host_time_idx"),
            models.Index(fields=["account", "log_type", "time"], name="log_type_time_idx"),
            models.Index(fields=["time"], name="log_time_idx"),
        ]

    def __str__(self):
        return f"{self.log_type} log on {self.host_uuid} at {self.time:%Y-%m-%d %H:%M:%S}"

    @staticmethod
    def digest_for(log_type: str, host_uuid: str, time, fields: dict) -> str:
        canonical = json.dumps(
            [log_type, host_uuid, time.astimezone(UTC).isoformat(), fields],
            sort_keys=True,
            default=str,
        )
        return hashlib.sha1(canonical.encode(), usedforsecurity=False).hexdigest()

    @staticmethod
    def reference_for(digest: str) -> str:
        """How a record is named to its tenant (in tracing, dry runs and SIEM
        alerts): part of its content digest. Row ids are a sequence shared by
        every tenant, which would tell one tenant how much others log."""
        return digest[:16]


_SOURCE_LABELS = dict(AlertSource.choices) | dict(LogType.choices)


def source_label(value) -> str:
    """The name of a data source (or, for logs, of a log type); others as they are."""
    return _SOURCE_LABELS.get(value, "" if value is None else str(value))


class IngestionKind(models.TextChoices):
    ALERT = "alert", "Alerts"
    LOG = "log", "Logs"


class IngestionStat(models.Model):
    """What arrived per account, kind, source (or log type) and day, for the
    Data Sources page; updated once per batch."""

    organisation = organisation_field()
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="ingestion_stats")
    kind = models.CharField(max_length=8, choices=IngestionKind.choices)
    source = models.CharField(max_length=32)
    day = models.DateField()
    count = models.PositiveIntegerField(default=0)
    last_received_at = models.DateTimeField()

    objects = ScopedQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "account", "kind", "source", "day"],
                name="ingestion_stat_unique_day",
            )
        ]

    def __str__(self):
        return f"{self.count} {self.kind}s of {self.source} on {self.day}"


class IngestionRejectionQuerySet(models.QuerySet):
    def in_scope(self, scope):
        # Items naming an unknown account have none; they belong to the
        # organisation whose key sent them and show in its global view only.
        own = models.Q(account_id__in=scope.account_ids)
        if scope.is_global:
            own |= models.Q(account__isnull=True)
        return self.filter(organisation_id=scope.organisation_id).filter(own)


class IngestionRejection(models.Model):
    """An item the ingestion refused, with the reason, for the Data Sources page."""

    organisation = models.ForeignKey(
        "secops.Organisation", on_delete=models.CASCADE, related_name="ingestion_rejections"
    )
    account = models.ForeignKey(
        Account,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="ingestion_rejections",
    )
    kind = models.CharField(max_length=8, choices=IngestionKind.choices)
    source = models.CharField(max_length=32, blank=True)
    index = models.PositiveIntegerField()
    field = models.CharField(max_length=200, blank=True)
    message = models.TextField()
    excerpt = models.TextField(blank=True, help_text="The start of the refused item, as JSON.")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = IngestionRejectionQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(fields=["organisation", "-created_at"], name="rejection_recent_idx")
        ]

    def __str__(self):
        return f"item {self.index}: {self.field} {self.message}"


from alerts.detection_models import (  # noqa: E402, F401
    CorrelationState,
    DetectionCursor,
    DetectionRule,
    DetectionRuleStats,
)


class PendingAlertBatch(models.Model):
    """Alerts stored by one ingestion call and not yet through the pipeline.

    Created in the ingestion's transaction and deleted in the transaction of
    whoever consumes it, so it exists exactly while its alerts wait: the
    durable half of the hand-off in ``alerts.handoff``.
    """

    alert_ids = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self):
        return f"batch {self.pk} of {len(self.alert_ids)} alerts"
