"""Publishing a competition: the last checks, the frozen invited list, the reference, the emails;
and the invitation of a provider admitted to the lot in an area of an open competition before
its bid deadline (on ``accreditation.signals.lot_membership_admitted``).

The invited list is frozen at publication: every provider with an ACTIVE membership of the lot
in an area the competition reaches (``services.areas``) at that moment, recorded with the time.
A suspended or removed member is not invited; one admitted later is invited only if admitted
before the bid deadline. Providers with an application pending for the lot in those areas are
assessed first until the bid deadline (``Application.prioritised_until``).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from marketplace.accounts.models import Organisation, User
from marketplace.accreditation.models import (
    Application,
    ApplicationArea,
    ApplicationLot,
    ApplicationStatus,
    LotDecision,
    LotMembership,
    MembershipStatus,
)
from marketplace.accreditation.services.applications import provider_admins
from marketplace.accreditation.signals import lot_membership_admitted
from marketplace.competitions import permissions
from marketplace.competitions.models import (
    COMPETITION_TRANSITIONS,
    Competition,
    CompetitionStatus,
    InvitedBecause,
    InvitedProvider,
)
from marketplace.competitions.services.areas import area_matches, in_areas, membership_in_areas
from marketplace.competitions.services.setup import publish_errors
from marketplace.core import audit
from marketplace.core.clock import utcnow
from marketplace.core.db import db
from marketplace.core.errors import BusinessRuleViolation, NotFound
from marketplace.core.notifications.services import queue_email
from marketplace.core.state import check_transition, transition

PENDING_APPLICATION_STATUSES = (ApplicationStatus.SUBMITTED, ApplicationStatus.UNDER_ASSESSMENT)


def competition_reference(competition: Competition, published_at: datetime) -> str:
    """``FC-YYYY-NNNNN``: the year published and the competition's key (unique with it)."""
    return f"FC-{published_at.year}-{competition.id:05d}"


def eligible_provider_ids(competition: Competition) -> list[int]:
    """Providers with an active membership of the lot in an area the competition reaches."""
    return list(
        db.session.scalars(
            sa.select(LotMembership.organisation_id)
            .where(
                LotMembership.lot_id == competition.lot_id,
                LotMembership.status == MembershipStatus.ACTIVE,
                membership_in_areas(competition),
            )
            .distinct()
            .order_by(LotMembership.organisation_id)
        )
    )


def pending_applications_query(competition: Competition) -> sa.Select:
    """Applications submitted or under assessment with the lot still undecided, in an area the
    competition reaches: the providers the authority should assess first."""
    return (
        sa.select(Application)
        .where(
            Application.status.in_(PENDING_APPLICATION_STATUSES),
            Application.id.in_(
                sa.select(ApplicationLot.application_id).where(
                    ApplicationLot.lot_id == competition.lot_id,
                    ApplicationLot.decision == LotDecision.PENDING,
                )
            ),
            Application.id.in_(
                sa.select(ApplicationArea.application_id).where(
                    in_areas(ApplicationArea.region_id, ApplicationArea.pcc_area_id, competition)
                )
            ),
        )
        .order_by(Application.submitted_at, Application.id)
    )


def _email_invited(competition: Competition, organisation: Organisation) -> None:
    for user in provider_admins(organisation):
        queue_email(
            user.email,
            "competition_invited",
            user=user,
            organisation=organisation,
            competition=competition,
        )


def publish(actor: User, competition: Competition, *, now: datetime | None = None) -> Competition:
    """Publish a draft: check every section again (deadlines from now), freeze the invited list,
    give it its reference, put pending applications first in the assessors' queue, email each
    invited provider's administrators. Locked first: two clicks publish once (the second is a
    ``TransitionConflict``)."""
    now = now or utcnow()
    if not permissions.is_buyer(actor, competition):
        raise NotFound("Competition not found")
    check_transition(
        competition,
        CompetitionStatus.PUBLISHED,
        COMPETITION_TRANSITIONS,
        noun="competition",
        done="published",
    )
    db.session.refresh(competition)  # its sections as committed, under the lock
    errors = publish_errors(competition, now)
    if errors:
        raise BusinessRuleViolation(errors)
    transition(
        competition,
        CompetitionStatus.PUBLISHED,
        COMPETITION_TRANSITIONS,
        noun="competition",
        done="published",
    )
    competition.published_at = now
    competition.published_by_id = actor.id
    competition.reference = competition_reference(competition, now)
    provider_ids = eligible_provider_ids(competition)
    invited = [
        InvitedProvider(
            competition_id=competition.id,
            organisation_id=pk,
            invited_at=now,
            because=InvitedBecause.MEMBER_AT_PUBLICATION,
        )
        for pk in provider_ids
    ]
    db.session.add_all(invited)
    pending = db.session.scalars(pending_applications_query(competition)).all()
    for application in pending:
        if (
            application.prioritised_until is None
            or application.prioritised_until < competition.bid_deadline
        ):
            application.prioritised_until = competition.bid_deadline
    db.session.flush()
    audit.record(
        actor,
        "competition.published",
        competition,
        before={"status": CompetitionStatus.DRAFT.value},
        after={
            "status": competition.status.value,
            "reference": competition.reference,
            "published_at": now,
            "bid_deadline": competition.bid_deadline,
            "invited": provider_ids,
            "prioritised_applications": [a.reference for a in pending],
        },
    )
    organisations = {
        o.id: o
        for o in db.session.scalars(
            sa.select(Organisation).where(Organisation.id.in_(provider_ids or [0]))
        )
    }
    for pk in provider_ids:
        _email_invited(competition, organisations[pk])
    return competition


@lot_membership_admitted.connect
def invite_admitted(
    application, *, actor: User, memberships: list[LotMembership], now: datetime, **_
) -> list[InvitedProvider]:
    """Invite the newly admitted provider to each published competition for its lot whose areas
    reach the membership's area and whose bid deadline has not passed; never twice."""
    added: list[InvitedProvider] = []
    for membership in memberships:
        if membership.status is not MembershipStatus.ACTIVE:
            continue
        open_ones = db.session.scalars(
            sa.select(Competition).where(
                Competition.status == CompetitionStatus.PUBLISHED,
                Competition.lot_id == membership.lot_id,
                Competition.bid_deadline > now,
            )
        ).all()
        for competition in open_ones:
            if not area_matches(competition, membership.region_id, membership.pcc_area_id):
                continue
            already = db.session.scalar(
                sa.select(InvitedProvider.id).where(
                    InvitedProvider.competition_id == competition.id,
                    InvitedProvider.organisation_id == membership.organisation_id,
                )
            )
            if already is not None or any(i.competition_id == competition.id for i in added):
                continue
            invitation = InvitedProvider(
                competition_id=competition.id,
                organisation_id=membership.organisation_id,
                invited_at=now,
                because=InvitedBecause.ADMITTED_BEFORE_DEADLINE,
            )
            db.session.add(invitation)
            db.session.flush()
            added.append(invitation)
            audit.record(
                actor,
                "competition.provider_invited",
                competition,
                after={
                    "organisation_id": membership.organisation_id,
                    "because": InvitedBecause.ADMITTED_BEFORE_DEADLINE.value,
                    "membership_id": membership.id,
                },
            )
            _email_invited(competition, db.session.get(Organisation, membership.organisation_id))
    return added
