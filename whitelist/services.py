"""The whitelist matcher the pipeline calls for every batch."""


def whitelisted_alerts(alerts) -> set[int]:
    """Ids of the alerts of a batch that a whitelist rule group matches.

    Matching alerts are stored flagged as whitelisted and never aggregated.
    Whitelist rule groups (scenarios, conditions, operators) are not part of
    the product yet, so no alert matches.
    """
    return set()
