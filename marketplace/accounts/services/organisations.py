"""Organisations: the authority creates commissioners, edits, activates and deactivates them."""

from __future__ import annotations

from marketplace.accounts.models import (
    COMMISSIONER_TYPES,
    PROVIDER_TYPES,
    Organisation,
    OrganisationType,
    User,
)
from marketplace.accounts.permissions import can_edit_organisation, can_manage_organisations
from marketplace.accounts.services.common import ORGANISATION_FIELDS
from marketplace.core import audit
from marketplace.core.db import db
from marketplace.core.errors import BusinessRuleViolation, PermissionDenied
from marketplace.reference.models import PccArea


def _check_area_links(
    type: OrganisationType, region_id: int | None, pcc_area_id: int | None
) -> None:
    """A PCC belongs to a PCC area and a probation region organisation to a region."""
    if type == OrganisationType.PCC and pcc_area_id is None:
        raise BusinessRuleViolation({"pcc_area_id": ["Choose the PCC area"]})
    if type == OrganisationType.PROBATION_REGION and region_id is None:
        raise BusinessRuleViolation({"region_id": ["Choose the probation region"]})


def create_organisation(
    actor: User,
    *,
    name: str,
    type: OrganisationType,
    charity_number: str | None = None,
    companies_house_number: str | None = None,
    region_id: int | None = None,
    pcc_area_id: int | None = None,
) -> Organisation:
    """The authority creates a commissioning organisation (providers register themselves)."""
    if not can_manage_organisations(actor):
        raise PermissionDenied()
    _check_area_links(type, region_id, pcc_area_id)
    organisation = Organisation(
        name=name.strip(),
        type=type,
        charity_number=charity_number or None,
        companies_house_number=companies_house_number or None,
        region_id=region_id,
        pcc_area_id=pcc_area_id,
    )
    if organisation.type == OrganisationType.PCC and pcc_area_id is not None and region_id is None:
        area = db.session.get(PccArea, pcc_area_id)
        organisation.region_id = area.region_id if area else None
    db.session.add(organisation)
    db.session.flush()
    audit.record(
        actor,
        "organisation.created",
        organisation,
        after=audit.snapshot(organisation, ORGANISATION_FIELDS),
    )
    return organisation


def update_organisation(actor: User, organisation: Organisation, **changes) -> Organisation:
    """Change an organisation's details (not its type once people work in it)."""
    if not can_edit_organisation(actor, organisation):
        raise PermissionDenied()
    new_type = changes.get("type", organisation.type)
    if new_type != organisation.type and (
        (organisation.is_provider and new_type not in PROVIDER_TYPES)
        or (organisation.is_commissioner and new_type not in COMMISSIONER_TYPES)
        or organisation.is_authority
    ):
        raise BusinessRuleViolation(
            {"type": ["An organisation cannot move between provider, commissioner and authority"]}
        )
    _check_area_links(
        new_type,
        changes.get("region_id", organisation.region_id),
        changes.get("pcc_area_id", organisation.pcc_area_id),
    )
    before = audit.snapshot(organisation, ORGANISATION_FIELDS)
    # Every audited field but the active flag, which has its own service.
    for field in (f for f in ORGANISATION_FIELDS if f != "active"):
        if field in changes:
            value = changes[field]
            setattr(organisation, field, value.strip() if isinstance(value, str) else value)
    organisation.charity_number = organisation.charity_number or None
    organisation.companies_house_number = organisation.companies_house_number or None
    after = audit.snapshot(organisation, ORGANISATION_FIELDS)
    if before != after:
        audit.record(actor, "organisation.updated", organisation, before=before, after=after)
    return organisation


def set_organisation_active(actor: User, organisation: Organisation, active: bool) -> None:
    if not can_manage_organisations(actor):
        raise PermissionDenied()
    if organisation.is_authority and not active:
        raise BusinessRuleViolation({"active": ["The contracting authority cannot be deactivated"]})
    if organisation.active == active:
        return
    organisation.active = active
    audit.record(
        actor,
        "organisation.activated" if active else "organisation.deactivated",
        organisation,
        before={"active": not active},
        after={"active": active},
    )
