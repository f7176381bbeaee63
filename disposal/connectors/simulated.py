"""The simulated cloud: the embedded default connector.

Nothing leaves the console. What a real cloud would hold in force (a block, a
quarantine, a killed process) is kept per account in ``SimulatedAction`` rows,
so that the Disposal Center and the simulated cloud's page show the same
state, and an undo removes exactly what was done. It fails on request: a
``SimulatedFailure`` row (for an entity value, an account, or a share of the
calls) or ``SIMULATED_CLOUD_FAILURE_PERCENT`` make calls fail, so that
Failed, Retry and Unblock can be shown and tested.
"""

import random
import uuid

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from disposal.connectors import ActionRequest, ActionResult, Connector, ConnectorError, register
from disposal.models import ConnectorKind, SimulatedAction, SimulatedFailure


@register
class SimulatedCloud(Connector):
    kind = ConnectorKind.SIMULATED
    simulated = True

    def perform(self, request: ActionRequest) -> ActionResult:
        self._maybe_fail(request, undo=False)
        reference = uuid.uuid4().hex
        SimulatedAction.objects.create(
            account_id=request.account_id,
            cloud_service=request.cloud_service,
            operation=request.operation,
            target=request.value,
            host=request.host_uuid,
            parameters=request.parameters,
            reference=reference,
            expires_at=request.expires_at,
        )
        return ActionResult(
            reference=reference,
            answer={"simulated": True, "reference": reference, "operation": request.operation},
        )

    def undo(self, request: ActionRequest) -> ActionResult:
        self._maybe_fail(request, undo=True)
        removed = SimulatedAction.objects.filter(
            reference=request.reference, account_id=request.account_id, removed_at__isnull=True
        ).update(removed_at=timezone.now())
        # Undoing what is no longer in force succeeds: the goal (not blocked) holds.
        return ActionResult(
            reference=request.reference,
            answer={"simulated": True, "removed": removed, "reference": request.reference},
        )

    def _maybe_fail(self, request: ActionRequest, *, undo: bool) -> None:
        rules = SimulatedFailure.objects.filter(enabled=True).filter(
            Q(account__isnull=True) | Q(account_id=request.account_id)
        )
        if undo:
            rules = rules.filter(applies_to_undo=True)
        for rule in rules:
            if rule.target and rule.target != request.value:
                continue
            if random.random() < rule.share:
                raise ConnectorError(
                    f"{rule.message} (simulated cloud)",
                    retryable=rule.retryable,
                    answer={"simulated": True, "failure_rule": rule.pk},
                )
        percent = settings.SIMULATED_CLOUD_FAILURE_PERCENT
        if percent and random.random() * 100 < percent:
            raise ConnectorError(
                "The simulated cloud failed this call (SIMULATED_CLOUD_FAILURE_PERCENT).",
                retryable=True,
                answer={"simulated": True},
            )
