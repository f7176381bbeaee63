"""Values as alert entities hold them, and the other fields of an indicator.

Values are normalised by the alerts' own entity schema (``EntityIn``), so an
indicator's digest is the digest of the entity it describes and the two meet
on (entity type, digest): an IP in its canonical form, hashes lower-case, a
domain lower-case without its final dot, a URL as given.
"""

import ipaddress
import re
from collections.abc import Iterable

from pydantic import ValidationError

from alerts.models import Entity, EntityType
from alerts.schemas import EntityIn, scrub_nul
from disposal.models import Verdict

SHOWN_VALUE_LENGTH = 80
HEX = re.compile(r"[0-9a-fA-F]+")
HASH_LENGTHS = {"md5": 32, "sha1": 40, "sha256": 64}
HASH_BY_LENGTH = {length: kind for kind, length in HASH_LENGTHS.items()}
_HASH_NAMES = {"md5": "an MD5", "sha1": "a SHA-1", "sha256": "a SHA-256"}
# Feeds "defang" values so that nobody clicks them: 203.0.113[.]7, hxxps://...
_DEFANGED_DOTS = re.compile(r"\[\.\]|\(\.\)|\{\.\}|\[dot\]|\(dot\)", re.IGNORECASE)
_DEFANGED_SCHEME = re.compile(r"^h(?:xx|\[tt\])p(s?)(?:\[:\]|:)//", re.IGNORECASE)
_DOMAIN_FORBIDDEN = re.compile(r"[\s/\\@:?#*\"<>]")


def shown(value: str) -> str:
    return repr(value if len(value) <= SHOWN_VALUE_LENGTH else value[:SHOWN_VALUE_LENGTH] + "…")


def refang(value: str) -> str:
    value = _DEFANGED_DOTS.sub(".", value)
    value = _DEFANGED_SCHEME.sub(lambda m: f"http{m.group(1).lower()}://", value)
    return value.replace("[:]", ":").replace("[://]", "://")


def _identity(**fields) -> str:
    """The value as the alerts' ingestion stores an entity with these fields."""
    return EntityIn(**fields).identity()


def normalise(entity_type: str, value: str, hash_kind: str | None = None) -> str:
    """``value`` as an entity of ``entity_type`` holds it, else ValueError saying why.

    For files, ``hash_kind`` says what the value is: "md5", "sha1" or
    "sha256"; "hash" for any of them (told apart by length); "path" for a
    path or file name; None for a hash if the value looks like one, else a path.
    """
    text = scrub_nul(value).strip()
    if not text:
        raise ValueError("the value is empty")
    if entity_type == EntityType.IP:
        return _normalise_ip(refang(text))
    if entity_type == EntityType.DOMAIN:
        domain = refang(text).lower().rstrip(".")
        if not domain or _DOMAIN_FORBIDDEN.search(domain) or len(domain) > 253:
            raise ValueError(f"not a domain name: {shown(text)}")
        try:
            ipaddress.ip_address(domain)
        except ValueError:
            return _identity(type="domain", value=domain)
        raise ValueError(f"{shown(text)} is an IP address: give it the type ip")
    if entity_type == EntityType.URL:
        url = refang(text)
        if re.search(r"\s", url):
            raise ValueError(f"not a URL (it holds white space): {shown(text)}")
        return _identity(type="url", value=url)
    if entity_type == EntityType.FILE:
        return _normalise_file(text, hash_kind)
    raise ValueError(f"a {entity_type} cannot be an indicator")


def _normalise_ip(text: str) -> str:
    if "/" in text:
        # A CIDR naming one address is that address; a range matches no entity.
        try:
            network = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise ValueError(f"not an IP address: {shown(text)}") from None
        if network.num_addresses != 1:
            raise ValueError(f"{shown(text)} is a network range; indicators name single addresses")
        text = str(network.network_address)
    try:
        return _identity(type="ip", value=text)
    except ValidationError:
        raise ValueError(f"not an IP address: {shown(text)}") from None


def _normalise_file(text: str, hash_kind: str | None) -> str:
    looks_like_hash = bool(HEX.fullmatch(text)) and len(text) in HASH_BY_LENGTH
    if hash_kind == "path" or (hash_kind is None and not looks_like_hash):
        return _identity(type="file", path=text)
    if hash_kind in (None, "hash"):
        if not looks_like_hash:
            raise ValueError(
                f"not an MD5, SHA-1 or SHA-256 hash (32, 40 or 64 hex digits): {shown(text)}"
            )
        hash_kind = HASH_BY_LENGTH[len(text)]
    length = HASH_LENGTHS[hash_kind]
    if len(text) != length or not HEX.fullmatch(text):
        raise ValueError(f"not {_HASH_NAMES[hash_kind]} hash ({length} hex digits): {shown(text)}")
    if hash_kind == "sha1":
        # Alerts name files by SHA-256 or MD5; a SHA-1 matches a file's sha1 attribute.
        return text.lower()
    return _identity(type="file", **{hash_kind: text})


# Verdict words of STIX's indicator-type vocabulary and of common IOC lists.
# An indicator with several takes the gravest.
_VERDICT_WORDS = {
    Verdict.MALICIOUS: {
        "malicious",
        "malicious-activity",
        "compromised",
        "attribution",
        "malware",
        "bad",
        "block",
    },
    Verdict.SUSPICIOUS: {"suspicious", "anomalous-activity", "anonymization"},
    Verdict.BENIGN: {"benign", "clean", "safe", "good", "allow"},
    Verdict.UNKNOWN: {"unknown"},
}
VERDICT_BY_WORD = {word: verdict for verdict, words in _VERDICT_WORDS.items() for word in words}
_GRAVITY = [Verdict.MALICIOUS, Verdict.SUSPICIOUS, Verdict.BENIGN, Verdict.UNKNOWN]


def verdict_of(words: Iterable[str]) -> str:
    """The gravest verdict the words name; malicious when they name none (an IOC
    list's entries are indicators of compromise unless they say otherwise)."""
    found = {VERDICT_BY_WORD.get(str(word).strip().lower()) for word in words}
    return next((verdict for verdict in _GRAVITY if verdict in found), Verdict.MALICIOUS)


def check_confidence(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
        raise ValueError(f"confidence must be a whole number from 0 to 100, not {value!r}")
    return value


def check_validity(valid_from, valid_until) -> None:
    if valid_from and valid_until and valid_until <= valid_from:
        raise ValueError("valid_until is not after valid_from")


def digest_of(entity_type: str, value: str) -> str:
    return Entity.digest_for(entity_type, value)
