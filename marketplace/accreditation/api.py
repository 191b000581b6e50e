"""Dynamic purchasing system endpoints: arrangements and registers (public); memberships, applications."""

from __future__ import annotations

import marshmallow as ma
import sqlalchemy as sa
from flask import abort, g
from flask.views import MethodView
from sqlalchemy.orm import selectinload

from marketplace.accreditation import queries
from marketplace.accreditation.models import (
    Answer,
    Application,
    ApplicationArea,
    ApplicationLot,
    ApplicationStatus,
    ArrangementLot,
    EvidenceRenewal,
    LotDecision,
)
from marketplace.accreditation.permissions import (
    can_assess,
    can_view_application,
    can_view_evidence,
)
from marketplace.accreditation.schemas import (
    AcceptRenewalSchema,
    ApplicationSchema,
    ArrangementSchema,
    ArrangementSummarySchema,
    EvidenceRenewalSchema,
    LotMembershipSchema,
    MembersQuerySchema,
    RegisterEntrySchema,
    RejectRenewalSchema,
    RenewalsQuerySchema,
    StrictPaginationQuerySchema,
)
from marketplace.accreditation.services import memberships
from marketplace.core.api import CONFLICT_RESPONSE, api_blueprint, paginate, paginated_schema
from marketplace.core.db import commit, db, rollback
from marketplace.core.errors import DomainError, NotFound

blp = api_blueprint(
    "accreditation_api",
    __name__,
    "Arrangements, their lots, criteria and registers of members (no token needed)",
    public=True,
)
memberships_blp = api_blueprint(
    "accreditation_memberships_api",
    __name__,
    "Your organisation's memberships and applications; renewed evidence for assessors "
    "(token needed)",
)

ArrangementPage = paginated_schema(ArrangementSummarySchema, "ArrangementPage")
RegisterPage = paginated_schema(RegisterEntrySchema, "RegisterPage")
LotMembershipPage = paginated_schema(LotMembershipSchema, "LotMembershipPage")
EvidenceRenewalPage = paginated_schema(EvidenceRenewalSchema, "EvidenceRenewalPage")


def _published_or_404(arrangement_id: int):
    arrangement = queries.get_arrangement(arrangement_id, published_only=True)
    if arrangement is None:
        abort(404, description="There is no published arrangement with that id.")
    return arrangement


@blp.route("/arrangements")
class ArrangementCollection(MethodView):
    @blp.arguments(StrictPaginationQuerySchema, location="query", unknown=ma.RAISE)
    @blp.response(200, ArrangementPage)
    def get(self, args):
        """List the live arrangements that providers can join."""
        return paginate(queries.live_arrangements_query(), args["page"], args["page_size"])


@blp.route("/arrangements/<int:arrangement_id>")
class ArrangementItem(MethodView):
    @blp.response(200, ArrangementSchema)
    def get(self, arrangement_id):
        """Describe a published arrangement with its regions, lots and the criteria in force."""
        arrangement = _published_or_404(arrangement_id)
        lots = [
            {
                "id": lot.id,
                "category": lot.category,
                "description": lot.description,
                "criteria": queries.criteria_in_force(lot),
            }
            for lot in arrangement.lots
        ]
        return {**{f: getattr(arrangement, f) for f in ArrangementSchema().fields}, "lots": lots}


@blp.route("/arrangements/<int:arrangement_id>/members")
class ArrangementMemberCollection(MethodView):
    @blp.arguments(MembersQuerySchema, location="query", unknown=ma.RAISE)
    @blp.response(200, RegisterPage)
    def get(self, args, arrangement_id):
        """List the register of active members, by lot, area and organisation."""
        arrangement = _published_or_404(arrangement_id)
        lot = region = None
        if args.get("lot"):
            lot = queries.lot_by_code(arrangement, args["lot"])
            if lot is None:
                abort(422, description="The arrangement has no lot with that code.")
        if args.get("region"):
            region = queries.region_by_code(arrangement, args["region"])
            if region is None:
                abort(422, description="The arrangement does not cover a region with that code.")
        page = paginate(
            queries.register_query(arrangement, lot=lot, region=region),
            args["page"],
            args["page_size"],
        )
        page["items"] = [queries.register_record(m) for m in page["items"]]
        return page


@memberships_blp.route("/memberships")
class MembershipCollection(MethodView):
    @memberships_blp.arguments(StrictPaginationQuerySchema, location="query", unknown=ma.RAISE)
    @memberships_blp.response(200, LotMembershipPage)
    def get(self, args):
        """List the lot memberships of the token's organisation, in every state."""
        query = queries.organisation_memberships_query(g.organisation)
        return paginate(query, args["page"], args["page_size"])


def _application_or_404(application_id: int) -> Application:
    """An application the token may see, with what the response shows, in a fixed few queries.

    The applicant organisation's people see it through a token of that organisation; assessors
    and authority admins see any that has been submitted. Anyone else gets 404, as for an id
    that does not exist, so that its existence does not leak.
    """
    application = db.session.scalar(
        sa.select(Application)
        .where(Application.id == application_id)
        .options(
            selectinload(Application.organisation),
            selectinload(Application.arrangement),
            selectinload(Application.lots)
            .selectinload(ApplicationLot.lot)
            .selectinload(ArrangementLot.category),
            selectinload(Application.areas).selectinload(ApplicationArea.region),
            selectinload(Application.areas).selectinload(ApplicationArea.pcc_area),
        )
    )
    user, organisation = g.api_user, g.organisation
    own = (
        application is not None
        and organisation is not None
        and application.organisation_id == organisation.id
        and can_view_application(user, application)
    )
    assessing = (
        application is not None
        and application.status != ApplicationStatus.DRAFT
        and can_assess(user)
    )
    if not (own or assessing):
        abort(404, description="There is no application with that id that you can see.")
    return application


def _application_record(application: Application) -> dict:
    return {
        "id": application.id,
        "reference": application.reference,
        "arrangement": application.arrangement,
        "organisation": application.organisation,
        "status": application.status,
        "lots": [
            {
                "lot_id": item.lot_id,
                "lot_code": item.lot.category.code,
                "lot_name": item.lot.category.name,
                "decision": item.decision,
                # Feedback is a draft until the decision is made.
                "feedback": None if item.decision == LotDecision.PENDING else item.feedback,
                "decided_at": item.decided_at,
            }
            for item in application.lots
        ],
        "areas": [
            {
                "region_code": area.region.code if area.region else None,
                "pcc_area_code": area.pcc_area.code if area.pcc_area else None,
                "name": area.region.name if area.region else area.pcc_area.name,
            }
            for area in application.areas
        ],
        "submitted_at": application.submitted_at,
        "decision_due_on": application.decision_due_on,
        "decided_at": application.decided_at,
    }


@memberships_blp.route("/applications/<int:application_id>")
class ApplicationItem(MethodView):
    @memberships_blp.response(200, ApplicationSchema)
    def get(self, application_id):
        """Show an application of the token's organisation (or any submitted one, to assessors)."""
        return _application_record(_application_or_404(application_id))


# ---------------------------------------------------------------------------------------------
# Renewed evidence: assessors list, accept and reject it; a member sees its own


def _renewal_or_404(renewal_id: int) -> EvidenceRenewal:
    """A renewal the token may see: assessors and the authority see every one, a provider's
    people their own organisation's; anyone else gets 404, as for an id that does not exist."""
    renewal = db.session.scalar(
        memberships.renewals_query().where(EvidenceRenewal.id == renewal_id)
    )
    if renewal is None or not _may_see_renewal(renewal):
        raise NotFound("There is no renewed evidence with that id that you can see.")
    return renewal


def _may_see_renewal(renewal: EvidenceRenewal) -> bool:
    organisation = renewal.answer.application.organisation
    return can_assess(g.api_user) or (
        g.organisation is not None
        and organisation.id == g.organisation.id
        and can_view_evidence(g.api_user, organisation)
    )


def _write(action) -> None:
    """Run one service call and commit; a refusal rolls back and answers 4xx (errors.py)."""
    try:
        action()
    except DomainError:
        rollback()
        raise
    commit(keep_loaded=True)


@memberships_blp.route("/evidence-renewals")
class EvidenceRenewalCollection(MethodView):
    @memberships_blp.arguments(RenewalsQuerySchema, location="query", unknown=ma.RAISE)
    @memberships_blp.response(200, EvidenceRenewalPage)
    def get(self, args):
        """List renewed evidence (waiting, by default): every member's to assessors, else your own."""
        query = memberships.renewals_query().where(EvidenceRenewal.status == args["status"])
        if not can_assess(g.api_user):
            query = query.join(Answer, Answer.id == EvidenceRenewal.answer_id).join(
                Application, Application.id == Answer.application_id
            )
            query = query.where(Application.organisation_id == g.organisation.id)
        return paginate(query, args["page"], args["page_size"])


@memberships_blp.route("/evidence-renewals/<int:renewal_id>")
class EvidenceRenewalItem(MethodView):
    @memberships_blp.response(200, EvidenceRenewalSchema)
    def get(self, renewal_id):
        """Show renewed evidence, what it replaces and the decision on it."""
        return _renewal_or_404(renewal_id)


@memberships_blp.route("/evidence-renewals/<int:renewal_id>/accept", methods=["POST"])
@memberships_blp.alt_response(409, response=CONFLICT_RESPONSE)
@memberships_blp.arguments(AcceptRenewalSchema)
@memberships_blp.response(200, EvidenceRenewalSchema)
def accept_renewal(body, renewal_id):
    """An assessor accepts renewed evidence; it becomes the member's evidence, and memberships
    suspended because evidence expired are reinstated if nothing else keeps them suspended."""
    renewal = _renewal_or_404(renewal_id)
    _write(lambda: memberships.accept_renewed_evidence(g.api_user, renewal, body["comment"]))
    return renewal


@memberships_blp.route("/evidence-renewals/<int:renewal_id>/reject", methods=["POST"])
@memberships_blp.alt_response(409, response=CONFLICT_RESPONSE)
@memberships_blp.arguments(RejectRenewalSchema)
@memberships_blp.response(200, EvidenceRenewalSchema)
def reject_renewal(body, renewal_id):
    """An assessor rejects renewed evidence with a reason the member is told."""
    renewal = _renewal_or_404(renewal_id)
    _write(lambda: memberships.reject_renewed_evidence(g.api_user, renewal, body["reason"]))
    return renewal
