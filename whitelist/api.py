"""Whitelist rule groups over the API: the scenario catalogue, and list, read,
create, replace, change, delete and preview rule groups.

Every group is read through ``RuleGroup.objects.in_scope``: a group of another
organisation, or one limited to accounts the key does not cover, is a 404.
Accounts are named by their uid. An organisation API key may make global
groups; an account's key only groups limited to its own account.
"""

from datetime import datetime

from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from ninja import Query, Router, Schema, Status
from ninja.errors import HttpError
from pydantic import AwareDatetime, Field

from secops.api_common import TOTAL_HEADER
from secops.models import Account
from whitelist import services
from whitelist.extensions import origins_of
from whitelist.matching import OPERATORS_BY_KIND
from whitelist.models import RuleGroup
from whitelist.scenarios import OBJECTS, SCENARIOS, scenario

router = Router(tags=["whitelist"])

MAX_PAGE = 500
# Deeper than any organisation's groups go; bounded so the database never sees
# an offset past its integer range.
MAX_OFFSET = 1_000_000


class WhitelistCondition(Schema):
    object: str = Field(description="An object key of the group's scenario, e.g. host_uuid.")
    operator: str = Field(description="One of the operators the object takes, e.g. equals.")
    value: str = Field(description="For in_list and in_cidr: one entry per line.")


class WhitelistObjectOut(Schema):
    key: str
    label: str
    kind: str
    help: str
    operators: list[str]


class WhitelistScenarioOut(Schema):
    key: str
    label: str
    objects: list[WhitelistObjectOut]


class WhitelistGroupOut(Schema):
    id: int
    name: str
    scenario: str
    scenario_label: str
    description: str
    enabled: bool
    active: bool = Field(description="Enabled and not expired: the pipeline applies it.")
    expires_at: datetime | None
    is_global: bool
    accounts: list[str] = Field(description="Uids of the accounts the group is limited to.")
    conditions: list[WhitelistCondition]
    hit_count: int
    last_hit_at: datetime | None
    created_at: datetime
    updated_at: datetime
    source_event: int | None = Field(description="The event the group was made from.")


class WhitelistGroupIn(Schema):
    name: str
    scenario: str = Field(description="The alert type the group applies to.")
    description: str = ""
    enabled: bool = True
    expires_at: AwareDatetime | None = Field(None, description="Empty: never expires.")
    accounts: list[str] = Field(
        default_factory=list, description="Uids of the accounts to limit the group to."
    )
    is_global: bool | None = Field(
        None,
        description="Applies to every account of the organisation. "
        "Default: true when no accounts are given.",
    )
    conditions: list[WhitelistCondition] = Field(description="All must be met (AND).")


class WhitelistGroupPatch(Schema):
    """Only the fields sent change. Defaults are not validated, so an omitted
    field is left alone while an explicit null is refused where null is not allowed."""

    name: str = None
    scenario: str = None
    description: str = None
    enabled: bool = None
    expires_at: AwareDatetime | None = None
    accounts: list[str] = None
    is_global: bool = None
    conditions: list[WhitelistCondition] = None


class WhitelistPreviewIn(WhitelistGroupIn):
    name: str = ""


class WhitelistPreviewAlert(Schema):
    id: int
    name: str
    occurred_at: datetime


class WhitelistPreviewOut(Schema):
    matched: int
    examined: int
    capped: bool = Field(
        description=f"More alerts of the window exist than the {services.PREVIEW_MAX_ALERTS} "
        "latest examined."
    )
    sample: list[WhitelistPreviewAlert]


class WhitelistErrors(Schema):
    errors: dict[str, list[str]] = Field(description="Messages by field, e.g. conditions[0].value.")


class WhitelistBodyErrors(Schema):
    """A body without the documented shape (a missing field, a wrong type),
    refused before the group is looked at."""

    detail: list[dict] = Field(description="One entry per problem: its type, loc and msg.")


WhitelistInvalid = WhitelistErrors | WhitelistBodyErrors


class WhitelistDetail(Schema):
    detail: str


# --- helpers ---------------------------------------------------------------------


def _allow_global(request) -> bool:
    return request.scope.may_manage_organisation()


def _get(request, group_id: int) -> RuleGroup:
    return get_object_or_404(services.groups_in_scope(request.scope), id=group_id)


def _out(group: RuleGroup, request, now, origins=None) -> dict:
    """The group as the API shows it; ``origins`` from ``origins_of`` when listing many."""
    origin = (origins if origins is not None else origins_of([group.id])).get(group.id)
    return {
        "id": group.id,
        "name": group.name,
        "scenario": group.scenario,
        "scenario_label": scenario(group.scenario).label,
        "description": group.description,
        "enabled": group.enabled,
        "active": group.is_active(now),
        "expires_at": group.expires_at,
        "is_global": group.is_global,
        # A key of one account does not learn the uids of the organisation's other accounts.
        "accounts": sorted(
            a.uid for a in group.accounts.all() if a.id in request.scope.account_ids
        ),
        "conditions": [
            {"object": c.object, "operator": c.operator, "value": c.value}
            for c in group.conditions.all()
        ],
        "hit_count": group.hit_count,
        "last_hit_at": group.last_hit_at,
        "created_at": group.created_at,
        "updated_at": group.updated_at,
        "source_event": origin.object_id if origin else None,
    }


def _account_ids(request, uids: list[str]) -> tuple[list[int], list[str]]:
    """The ids of the accounts named, and the uids the key cannot reach."""
    # A text with a NUL is no uid, and PostgreSQL refuses to compare one.
    comparable = [uid for uid in uids if "\x00" not in uid]
    found = dict(
        Account.objects.in_scope(request.scope).filter(uid__in=comparable).values_list("uid", "id")
    )
    unique = list(dict.fromkeys(uids))
    return [found[uid] for uid in unique if uid in found], [u for u in unique if u not in found]


def _conditions(items) -> list[services.ConditionSpec]:
    return [services.ConditionSpec(c.object, c.operator, c.value) for c in items]


def _spec(request, payload: WhitelistGroupIn) -> tuple[services.GroupSpec, list[str]]:
    account_ids, unknown = _account_ids(request, payload.accounts)
    is_global = payload.is_global if payload.is_global is not None else not payload.accounts
    return (
        services.GroupSpec(
            name=payload.name,
            scenario=payload.scenario,
            description=payload.description,
            enabled=payload.enabled,
            expires_at=payload.expires_at,
            is_global=is_global,
            account_ids=account_ids,
            conditions=_conditions(payload.conditions),
        ),
        unknown,
    )


def _errors(
    error: services.GroupValidationError | None, unknown_accounts: list[str]
) -> dict[str, list[str]]:
    """The service's errors with the API's field names, and the accounts the key
    cannot reach."""
    errors: dict[str, list[str]] = {}
    for name, messages in (error.errors if error else {}).items():
        errors.setdefault("accounts" if name == "account_ids" else name, []).extend(messages)
    if unknown_accounts:
        errors.setdefault("accounts", []).insert(
            0,
            "Unknown accounts, or outside this API key's accounts: " + ", ".join(unknown_accounts),
        )
    return errors


def _invalid(errors: dict[str, list[str]]) -> Status:
    return Status(422, {"errors": errors})


def _validation_error(request, spec, *, allow_global: bool):
    try:
        services.validate(spec, request.scope, allow_global=allow_global)
    except services.GroupValidationError as exc:
        return exc
    return None


def _save(request, spec: services.GroupSpec, unknown: list[str], accounts_given: bool, group=None):
    """Validate and save; returns the saved group, or the 422 to answer."""
    allow_global = _allow_global(request)
    try:
        if group is not None:
            # Refused before any validation: a key that may not change the group
            # learns nothing more from the errors of its body.
            services.check_may_change(group, request.scope, allow_global=allow_global)
        if unknown or (spec.is_global and accounts_given):
            errors = _errors(_validation_error(request, spec, allow_global=allow_global), unknown)
            if spec.is_global and accounts_given:
                errors.setdefault("accounts", []).append(
                    "A global group applies to every account: send no accounts."
                )
            return _invalid(errors)
        saved = services.save_group(spec, request.scope, allow_global=allow_global, group=group)
    except services.WhitelistPermissionError as exc:
        raise HttpError(403, str(exc)) from None
    except services.GroupValidationError as exc:
        return _invalid(_errors(exc, []))
    return _get(request, saved.id)


# --- endpoints -------------------------------------------------------------------


@router.get("/whitelist/scenarios", response=list[WhitelistScenarioOut])
def list_scenarios(request):
    """The catalogue: each scenario (alert type) with the objects its conditions
    may test and each object's operators. A group may also name an alert type
    not listed here; its conditions may then test every object."""
    return [
        {
            "key": s.key,
            "label": s.label,
            "objects": [
                {
                    "key": key,
                    "label": OBJECTS[key].label,
                    "kind": OBJECTS[key].kind,
                    "help": OBJECTS[key].help,
                    "operators": [str(o) for o in OPERATORS_BY_KIND[OBJECTS[key].kind]],
                }
                for key in s.objects
            ],
        }
        for s in SCENARIOS.values()
    ]


@router.get("/whitelist/groups", response=list[WhitelistGroupOut])
def list_groups(
    request,
    response: HttpResponse,
    scenario: str | None = Query(None, pattern=r"^[a-z0-9_]{0,64}$"),
    limit: int = Query(100, ge=1, le=MAX_PAGE),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
):
    """Groups in the key's scope, by scenario and name; page with ``offset``.
    The total is in the X-Total-Count header."""
    groups = services.groups_in_scope(request.scope)
    if scenario:
        groups = groups.filter(scenario=scenario)
    response[TOTAL_HEADER] = str(groups.count())
    now = timezone.now()
    page = list(groups[offset : offset + limit])
    origins = origins_of([g.id for g in page])
    return [_out(g, request, now, origins) for g in page]


@router.post(
    "/whitelist/groups/preview",
    response={200: WhitelistPreviewOut, 422: WhitelistInvalid},
)
def preview_group(request, payload: WhitelistPreviewIn):
    """How many alerts of the last 7 days in scope the group would have matched
    (at most the latest alerts of the scenario are examined: see ``capped``)."""
    spec, unknown = _spec(request, payload)
    error = _validation_error(request, spec, allow_global=True)
    # A draft needs no name yet and may be previewed with a past expiry.
    errors = {
        name: messages
        for name, messages in _errors(error, unknown).items()
        if name not in ("name", "expires_at")
    }
    if errors:
        return _invalid(errors)
    result = services.preview(spec, request.scope)
    if result.error:
        return _invalid({"conditions": [result.error]})
    return {
        "matched": result.matched,
        "examined": result.examined,
        "capped": result.capped,
        "sample": result.sample,
    }


@router.get("/whitelist/groups/{group_id}", response=WhitelistGroupOut)
def get_group(request, group_id: int):
    return _out(_get(request, group_id), request, timezone.now())


@router.post(
    "/whitelist/groups",
    response={201: WhitelistGroupOut, 403: WhitelistDetail, 422: WhitelistInvalid},
)
def create_group(request, payload: WhitelistGroupIn):
    return create_group_answer(request, payload)


def create_group_answer(request, payload: WhitelistGroupIn, on_saved=None) -> Status:
    """Create a group from the body: 201 with the group, or the refusal.
    ``on_saved(group)`` runs in the save's transaction (an app above whitelist
    recording where the group came from, as the editor's ``DraftOrigin`` does)."""
    spec, unknown = _spec(request, payload)
    with transaction.atomic():
        saved = _save(request, spec, unknown, bool(payload.accounts))
        if isinstance(saved, Status):
            return saved
        if on_saved is not None:
            on_saved(saved)
    return Status(201, _out(saved, request, timezone.now()))


def condition_out(spec: services.ConditionSpec) -> dict:
    return {"object": spec.object, "operator": spec.operator, "value": spec.value}


@router.put(
    "/whitelist/groups/{group_id}",
    response={200: WhitelistGroupOut, 403: WhitelistDetail, 422: WhitelistInvalid},
)
def replace_group(request, group_id: int, payload: WhitelistGroupIn):
    """Replace the whole group: fields not sent take their defaults."""
    group = _get(request, group_id)
    spec, unknown = _spec(request, payload)
    saved = _save(request, spec, unknown, bool(payload.accounts), group)
    if isinstance(saved, Status):
        return saved
    return _out(saved, request, timezone.now())


@router.patch(
    "/whitelist/groups/{group_id}",
    response={200: WhitelistGroupOut, 403: WhitelistDetail, 422: WhitelistInvalid},
)
def change_group(request, group_id: int, payload: WhitelistGroupPatch):
    """Change the fields sent. Sending ``accounts`` alone limits the group to
    them (or, empty, makes it global); ``{"enabled": false}`` switches it off."""
    group = _get(request, group_id)
    changes = payload.model_dump(exclude_unset=True)
    if set(changes) == {"enabled"}:
        # Switching a group on or off leaves the rest alone, even an expiry
        # that has passed.
        try:
            services.set_group_enabled(
                group, changes["enabled"], request.scope, allow_global=_allow_global(request)
            )
        except services.WhitelistPermissionError as exc:
            raise HttpError(403, str(exc)) from None
        return _out(_get(request, group_id), request, timezone.now())

    spec = services.spec_of(group)
    for name in ("name", "scenario", "description", "enabled", "expires_at"):
        if name in changes:
            setattr(spec, name, changes[name])
    if "conditions" in changes:
        spec.conditions = _conditions(payload.conditions)
    unknown = []
    if "accounts" in changes:
        spec.account_ids, unknown = _account_ids(request, payload.accounts)
        spec.is_global = not payload.accounts
    if "is_global" in changes:
        spec.is_global = payload.is_global
        if payload.is_global and "accounts" not in changes:
            spec.account_ids = []
    saved = _save(request, spec, unknown, bool(changes.get("accounts")), group)
    if isinstance(saved, Status):
        return saved
    return _out(saved, request, timezone.now())


@router.delete("/whitelist/groups/{group_id}", response={204: None, 403: WhitelistDetail})
def delete_group(request, group_id: int):
    group = _get(request, group_id)
    try:
        services.delete_group(group, request.scope, allow_global=_allow_global(request))
    except services.WhitelistPermissionError as exc:
        raise HttpError(403, str(exc)) from None
    return Status(204, None)
