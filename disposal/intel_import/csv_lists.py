"""CSV IOC lists: a header row naming the columns, then one indicator per row."""

import csv
import ipaddress
import re
from collections.abc import Iterator
from datetime import UTC, datetime, time
from pathlib import Path

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from alerts.models import EntityType
from alerts.schemas import scrub_nul
from disposal.intel_import.rows import (
    CSV_SOURCE,
    SOURCE_LENGTH,
    IndicatorRow,
    IntelFileError,
    ParsedFile,
    Problem,
)
from disposal.intel_import.values import (
    HASH_BY_LENGTH,
    HEX,
    VERDICT_BY_WORD,
    check_confidence,
    check_validity,
    digest_of,
    normalise,
    refang,
    shown,
    verdict_of,
)

# Header names (lower-case, "-" and " " read as "_") -> the column they fill.
_CSV_COLUMNS = {
    "type": "type",
    "indicator_type": "type",
    "ioc_type": "type",
    "value": "value",
    "indicator": "value",
    "ioc": "value",
    "observable": "value",
    "verdict": "verdict",
    "confidence": "confidence",
    "source": "source",
    "valid_from": "valid_from",
    "valid_until": "valid_until",
    "valid_to": "valid_until",
    "expires": "valid_until",
    "description": "description",
    "comment": "description",
}
# Type names of IOC lists -> (entity type, what a file value is; see ``normalise``).
CSV_TYPES = {
    "ip": (EntityType.IP, None),
    "ipv4": (EntityType.IP, None),
    "ipv6": (EntityType.IP, None),
    "ip_address": (EntityType.IP, None),
    "ipv4_addr": (EntityType.IP, None),
    "ipv6_addr": (EntityType.IP, None),
    "ip_addr": (EntityType.IP, None),
    "domain": (EntityType.DOMAIN, None),
    "domain_name": (EntityType.DOMAIN, None),
    "hostname": (EntityType.DOMAIN, None),
    "fqdn": (EntityType.DOMAIN, None),
    "url": (EntityType.URL, None),
    "uri": (EntityType.URL, None),
    "md5": (EntityType.FILE, "md5"),
    "sha1": (EntityType.FILE, "sha1"),
    "sha_1": (EntityType.FILE, "sha1"),
    "sha256": (EntityType.FILE, "sha256"),
    "sha_256": (EntityType.FILE, "sha256"),
    "hash": (EntityType.FILE, "hash"),
    "file_hash": (EntityType.FILE, "hash"),
    "filehash": (EntityType.FILE, "hash"),
    "file": (EntityType.FILE, None),
    "file_name": (EntityType.FILE, "path"),
    "filename": (EntityType.FILE, "path"),
    "file_path": (EntityType.FILE, "path"),
    "path": (EntityType.FILE, "path"),
}
# Confidence words of STIX's "None, Low, Med, High" scale.
_CONFIDENCE_WORDS = {"none": 0, "low": 15, "med": 50, "medium": 50, "high": 85}


def _header_name(text: str) -> str:
    return re.sub(r"[\s-]+", "_", text.strip().lower())


def _guess_type(value: str) -> tuple[str, str | None]:
    """The type of a value in a list without a type column: an IP, a hash, a URL
    or else a domain."""
    text = refang(value.strip())
    try:
        ipaddress.ip_address(text)
        return EntityType.IP, None
    except ValueError:
        pass
    if HEX.fullmatch(text) and len(text) in HASH_BY_LENGTH:
        return EntityType.FILE, "hash"
    if "://" in text:
        return EntityType.URL, None
    return EntityType.DOMAIN, None


def _csv_time(text: str, column: str) -> datetime | None:
    text = text.strip()
    if not text:
        return None
    try:
        parsed = parse_datetime(text.replace("Z", "+00:00"))
        if parsed is None and (day := parse_date(text)) is not None:
            parsed = datetime.combine(day, time.min)
    except ValueError:
        parsed = None
    if parsed is None:
        raise ValueError(f"{column}: not an ISO-8601 date or time: {shown(text)}")
    if timezone.is_naive(parsed):
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def _csv_confidence(text: str) -> int | None:
    text = text.strip().lower()
    if not text:
        return None
    if text in _CONFIDENCE_WORDS:
        return _CONFIDENCE_WORDS[text]
    if not (text.isascii() and text.isdigit()):
        raise ValueError(f"confidence must be a whole number from 0 to 100, not {shown(text)}")
    return check_confidence(int(text))


def _csv_lines(handle) -> Iterator[str]:
    """The file's lines without comment lines (``#``), which many IOC lists start with."""
    for line in handle:
        if not line.lstrip().startswith("#"):
            yield line


def read_csv(path, *, source: str | None = None) -> ParsedFile:
    """The indicators of a CSV IOC list with a header row. A row that cannot be
    used is a ``Problem`` naming its line."""
    name = Path(path).name
    parsed = ParsedFile(str(path), "csv")
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            numbered = _NumberedLines(handle)
            reader = csv.reader(numbered, delimiter=_delimiter(path))
            header = next((cells for cells in reader if any(c.strip() for c in cells)), None)
            if header is None:
                raise IntelFileError(path, "the file is empty: a header row is needed")
            columns = _csv_header(path, header)
            for cells in reader:
                line = numbered.line
                if not any(cell.strip() for cell in cells):
                    continue
                record = {columns[i]: cells[i] for i in columns if i < len(cells)}
                try:
                    parsed.rows.append(_csv_row(record, source))
                except ValueError as exc:
                    parsed.problems.append(Problem(f"{name} line {line}", str(exc)))
    except OSError as exc:
        raise IntelFileError(path, f"cannot be read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise IntelFileError(path, "not UTF-8 text") from None
    except csv.Error as exc:
        raise IntelFileError(path, f"not a readable CSV file: {exc}") from None
    return parsed


class _NumberedLines:
    """Lines of a file minus comment lines, knowing the number of the last line given."""

    def __init__(self, handle):
        self._handle = handle
        self.line = 0

    def __iter__(self):
        for number, line in enumerate(self._handle, start=1):
            if line.lstrip().startswith("#"):
                continue
            self.line = number
            yield line


def _delimiter(path) -> str:
    """Comma, or the semicolon, tab or bar the header row is split by."""
    with open(path, encoding="utf-8-sig", newline="") as handle:
        header = next(_csv_lines(handle), "")
    counts = {d: header.count(d) for d in ",;\t|"}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def _csv_header(path, header: list[str]) -> dict[int, str]:
    columns = {}
    for index, text in enumerate(header):
        column = _CSV_COLUMNS.get(_header_name(text))
        if column and column not in columns.values():
            columns[index] = column
    if "value" not in columns.values():
        raise IntelFileError(
            path,
            "the header row names no value column (value, indicator or ioc); "
            f"it reads {', '.join(repr(h) for h in header[:10])}",
        )
    return columns


def _csv_row(record: dict[str, str], source: str | None) -> IndicatorRow:
    record = {key: scrub_nul(text) for key, text in record.items()}
    raw_value = record.get("value", "")
    if not raw_value.strip():
        raise ValueError("the value is empty")
    type_name = _header_name(record.get("type", ""))
    if not type_name:
        entity_type, hash_kind = _guess_type(raw_value)
    elif type_name in CSV_TYPES:
        entity_type, hash_kind = CSV_TYPES[type_name]
    else:
        raise ValueError(
            f"unknown type {shown(record['type'].strip())}; "
            "use ip, domain, url, md5, sha1, sha256, hash or file"
        )
    value = normalise(entity_type, raw_value, hash_kind)
    verdict_text = record.get("verdict", "").strip().lower()
    if verdict_text and verdict_text not in VERDICT_BY_WORD:
        raise ValueError(
            f"unknown verdict {shown(verdict_text)}; use malicious, suspicious, benign or unknown"
        )
    valid_from = _csv_time(record.get("valid_from", ""), "valid_from")
    valid_until = _csv_time(record.get("valid_until", ""), "valid_until")
    check_validity(valid_from, valid_until)
    return IndicatorRow(
        entity_type=entity_type,
        value=value,
        digest=digest_of(entity_type, value),
        verdict=verdict_of([verdict_text]),
        source=(source or record.get("source", "").strip() or CSV_SOURCE)[:SOURCE_LENGTH],
        confidence=_csv_confidence(record.get("confidence", "")),
        description=record.get("description", "").strip(),
        valid_from=valid_from,
        valid_until=valid_until,
    )
