"""The extension points of the whitelist pages and API, filled by the apps above.

- ``whitelist.group_origins``: provider(group_ids) -> {group id: GroupOrigin},
  where a group was made from (the events app: the event whose "Add to
  Whitelist" made it).
"""

from dataclasses import dataclass

from secops.extensions import ExtensionPoint, Link


@dataclass(frozen=True)
class GroupOrigin:
    object_id: int
    link: Link


group_origins = ExtensionPoint("whitelist.group_origins")


def origins_of(group_ids) -> dict[int, GroupOrigin]:
    found = {}
    if group_ids:
        for origins in group_origins.collect(list(group_ids)):
            found.update(origins)
    return found
