"""Connectors: how a handling task reaches a cloud.

Each connector does one thing per cloud-service operation, in both directions
(``perform`` and, for what can be undone, ``undo``), and reports failure with a
``ConnectorError`` that says whether trying again can help. Every call has a
timeout (``DISPOSAL_CONNECTOR_TIMEOUT``) and calls are paced per account and
cloud service (``pace``).

Which connector an account uses is its ``AccountConnector`` row, or
``DISPOSAL_DEFAULT_CONNECTOR`` without one.
"""

import abc
import time
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.core.cache import cache


@dataclass(frozen=True)
class ActionRequest:
    """Everything a connector needs to carry out (or undo) one handling task."""

    task_id: int
    account_id: int
    account_uid: str
    cloud_service: str
    operation: str
    entity_type: str
    value: str
    parameters: dict = field(default_factory=dict)
    # The host the action works on (its uuid and instance id), for host actions.
    host_uuid: str = ""
    host_instance_id: str = ""
    # The entity's attributes (file path and hashes, process id and path, ...).
    attributes: dict = field(default_factory=dict)
    # The source's ids of the alerts that name the entity in this account
    # (Security Center handles its own alerts by id).
    alert_refs: tuple[str, ...] = ()
    expires_at: datetime | None = None
    # What ``perform`` answered that undoing needs.
    reference: str = ""


@dataclass(frozen=True)
class ActionResult:
    reference: str = ""
    answer: dict = field(default_factory=dict)


class ConnectorError(Exception):
    """A call that did not do what was asked. ``retryable`` says whether the
    same call may succeed later (throttling, a timeout, a network error) or not
    (a missing permission, a bad parameter)."""

    def __init__(self, message: str, *, retryable: bool, answer: dict | None = None):
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.answer = answer or {}


class Connector(abc.ABC):
    """The interface; ``kind`` is the ConnectorKind value it serves."""

    kind = ""
    simulated = False

    def __init__(self, *, account, config=None):
        # ``config`` is the account's AccountConnector row (None: the default).
        self.account = account
        self.config = config

    @abc.abstractmethod
    def perform(self, request: ActionRequest) -> ActionResult:
        """Carry the action out; ConnectorError when it did not happen."""

    @abc.abstractmethod
    def undo(self, request: ActionRequest) -> ActionResult:
        """Undo what ``perform`` did (``request.reference``); ConnectorError
        when it is still in force."""


def timeout_seconds() -> int:
    return settings.DISPOSAL_CONNECTOR_TIMEOUT


def pace(account_id: int, cloud_service: str, *, per_second: int | None = None) -> None:
    """Wait until this account may call this cloud service again.

    Each second is cut into ``per_second`` slots; a call takes the first free
    slot (an atomic ``cache.add``, shared by every worker through Redis), so
    the account's calls never exceed the cloud's rate limit, however many
    workers run. A wait longer than the connector timeout is reported as
    retryable throttling rather than held.
    """
    per_second = per_second or settings.DISPOSAL_CALLS_PER_SECOND
    deadline = time.monotonic() + timeout_seconds()
    while True:
        slot = int(time.time() * per_second)
        if cache.add(f"disposal:pace:{account_id}:{cloud_service}:{slot}", 1, timeout=5):
            return
        if time.monotonic() >= deadline:
            raise ConnectorError(
                "Too many calls to this account's cloud service; try again shortly.",
                retryable=True,
            )
        time.sleep(max(0.0, (slot + 1) / per_second - time.time()))


_registry: dict[str, type[Connector]] = {}


def register(connector_class: type[Connector]) -> type[Connector]:
    _registry[connector_class.kind] = connector_class
    return connector_class


def connector_for(account) -> Connector:
    """The connector that carries out tasks in ``account``."""
    from disposal.models import AccountConnector

    config = AccountConnector.objects.filter(account=account).first()
    kind = config.kind if config else settings.DISPOSAL_DEFAULT_CONNECTOR
    if kind not in _registry:
        _load_builtin(kind)
    try:
        connector_class = _registry[kind]
    except KeyError:
        raise ConnectorError(
            f"No connector named {kind!r} exists (DISPOSAL_DEFAULT_CONNECTOR or the "
            "account's connector settings).",
            retryable=False,
        ) from None
    return connector_class(account=account, config=config)


def _load_builtin(kind: str) -> None:
    """Import the built-in connector of ``kind`` (it registers itself), and
    only that one: the Alibaba Cloud SDKs take seconds to import, which no
    account on the simulated cloud or a webhook should wait for."""
    import importlib

    if kind not in ("simulated", "webhook", "alibaba"):
        return
    try:
        importlib.import_module(f"disposal.connectors.{kind}")
    except ModuleNotFoundError as exc:
        if exc.name != f"disposal.connectors.{kind}":
            raise
