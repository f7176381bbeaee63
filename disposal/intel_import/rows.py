"""What reading a file gives: indicator rows, the problems met, and the file's
failure when it cannot be read at all."""

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from alerts.models import EntityType
from disposal.models import ThreatIndicator

# The entity types an indicator can describe.
INDICATOR_TYPES = (EntityType.IP, EntityType.FILE, EntityType.DOMAIN, EntityType.URL)
STIX_SOURCE = "STIX import"
CSV_SOURCE = "CSV import"
SOURCE_LENGTH = ThreatIndicator._meta.get_field("source").max_length
EXTERNAL_ID_LENGTH = ThreatIndicator._meta.get_field("external_id").max_length


class IntelFileError(Exception):
    """A file that cannot be read or parsed at all; nothing of it is imported."""

    def __init__(self, path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class IndicatorRow:
    entity_type: str
    value: str
    digest: str
    verdict: str
    source: str
    confidence: int | None = None
    description: str = ""
    external_id: str = ""
    valid_from: datetime | None = None
    valid_until: datetime | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.entity_type, self.digest, self.source)


@dataclass(frozen=True)
class Problem:
    """An item left out: where it is (file and STIX id or CSV line) and why."""

    where: str
    message: str

    def __str__(self):
        return f"{self.where}: {self.message}"


@dataclass
class ParsedFile:
    path: str
    format: str
    rows: list[IndicatorRow] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    # STIX objects that are not indicators (observed-data, SCOs, custom objects, ...), by type.
    ignored: Counter = field(default_factory=Counter)
