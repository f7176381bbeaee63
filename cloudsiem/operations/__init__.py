"""The supported actions, one module per theme; importing this package
registers them in ``cloudsiem.protocol.OPERATIONS``."""

from cloudsiem.operations import (  # noqa: F401
    alerts,
    automation,
    disposal,
    entities,
    events,
    whitelist,
)
