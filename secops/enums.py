"""Vocabularies shared by every app."""

from django.db import models


class RegionGroup(models.TextChoices):
    CHINA = "cn", "China"
    OUTSIDE_CHINA = "intl", "Outside China"

    @classmethod
    def for_cloud_region(cls, cloud_region: str | None, fallback: "RegionGroup | str") -> str:
        """The region group of a cloud region id such as ``cn-hangzhou`` or ``ap-southeast-1``.

        Mainland regions all start with ``cn-``; without a region the account's
        home region decides.
        """
        if cloud_region:
            return (
                cls.CHINA if cloud_region.strip().lower().startswith("cn-") else cls.OUTSIDE_CHINA
            )
        return cls(fallback)


class RiskLevel(models.IntegerChoices):
    """Ordered so that the highest risk of a set of alerts is simply their Max()."""

    LOW = 1, "Low"
    MEDIUM = 2, "Medium"
    HIGH = 3, "High"

    @classmethod
    def parse(cls, value: str) -> "RiskLevel":
        """Our vocabulary (high/medium/low) and the cloud's (serious/suspicious/remind)."""
        try:
            return _RISK_WORDS[value.strip().lower()]
        except (KeyError, AttributeError):
            raise ValueError(
                f"unknown level {value!r}: use high, medium, low (or serious, suspicious, remind)"
            ) from None


_RISK_WORDS = {
    "high": RiskLevel.HIGH,
    "serious": RiskLevel.HIGH,
    "critical": RiskLevel.HIGH,
    "medium": RiskLevel.MEDIUM,
    "suspicious": RiskLevel.MEDIUM,
    "low": RiskLevel.LOW,
    "remind": RiskLevel.LOW,
}


class Role(models.TextChoices):
    ADMIN = "admin", "Administrator"
    ANALYST = "analyst", "Analyst"
    VIEWER = "viewer", "Viewer"


class View(models.TextChoices):
    CURRENT = "current", "Current Account View"
    GLOBAL = "global", "Global Account View"
