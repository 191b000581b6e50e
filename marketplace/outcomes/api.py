"""Payment-by-results endpoints: a call-off's outcome terms (the lead buyer proposes, the
provider agrees or rejects) and claims (the provider claims with an evidence file, the lead
buyer verifies or rejects with a reason), and the token organisation's contingent liability.

Every rule is in ``marketplace.outcomes.services``; a call-off or claim the token's organisation
is not party to is not found (404); the wrong side or role is forbidden (403).
"""

from __future__ import annotations

from flask import g, request, url_for
from flask.views import MethodView

from marketplace.core.api import CONFLICT_RESPONSE, api_blueprint, commit_write
from marketplace.core.errors import BusinessRuleViolation
from marketplace.orders.schemas import NewOutcomeTermSchema
from marketplace.outcomes import queries, services
from marketplace.outcomes.schemas import (
    LiabilitySchema,
    NewClaimSchema,
    OutcomeClaimSchema,
    OutcomeTermSchema,
    ReasonSchema,
)

blp = api_blueprint(
    "outcomes_api",
    __name__,
    "Payment by results: outcome terms on call-offs, outcome claims with evidence and their "
    "verification, and your organisation's contingent liability",
)


def _call_off(call_off_id):
    return services.visible_call_off(g.api_user, call_off_id, g.organisation.id)


def _claim(claim_id):
    return services.visible_claim(g.api_user, claim_id, g.organisation.id)


@blp.route("/orders/<int:call_off_id>/outcome-terms")
class OutcomeTermCollection(MethodView):
    @blp.response(200, OutcomeTermSchema(many=True))
    def get(self, call_off_id):
        """The call-off's outcome terms (proposed, agreed and rejected)."""
        return queries.terms_of(_call_off(call_off_id).id)

    @blp.arguments(NewOutcomeTermSchema)
    @blp.response(201, OutcomeTermSchema)
    def post(self, args, call_off_id):
        """The lead buyer proposes outcome terms for an accepted call-off; the provider decides."""
        call_off = _call_off(call_off_id)
        return commit_write(
            lambda: services.propose_term(g.api_user, call_off, services.OutcomeTermDetails(**args))
        )


@blp.route("/orders/<int:call_off_id>/outcome-terms/<int:term_id>/agree", methods=["POST"])
@blp.response(200, OutcomeTermSchema)
@blp.alt_response(409, response=CONFLICT_RESPONSE)
def agree_term(call_off_id, term_id):
    """The provider agrees proposed terms (the direct-award limit is checked again)."""
    call_off = _call_off(call_off_id)
    return commit_write(lambda: services.agree_term(g.api_user, call_off, term_id))


@blp.route("/orders/<int:call_off_id>/outcome-terms/<int:term_id>/reject", methods=["POST"])
@blp.arguments(ReasonSchema)
@blp.response(200, OutcomeTermSchema)
@blp.alt_response(409, response=CONFLICT_RESPONSE)
def reject_term(args, call_off_id, term_id):
    """The provider rejects proposed terms, with a reason the buyer sees."""
    call_off = _call_off(call_off_id)
    return commit_write(lambda: services.reject_term(g.api_user, call_off, term_id, args["reason"]))


@blp.route("/orders/<int:call_off_id>/outcome-claims")
class CallOffClaimCollection(MethodView):
    @blp.response(200, OutcomeClaimSchema(many=True))
    def get(self, call_off_id):
        """The call-off's outcome claims, oldest first."""
        return queries.claims_of(_call_off(call_off_id).id)

    @blp.arguments(NewClaimSchema, location="form", content_type="multipart/form-data")
    @blp.response(201, OutcomeClaimSchema)
    def post(self, args, call_off_id):
        """The provider claims an agreed outcome with an evidence file (multipart/form-data)."""
        call_off = _call_off(call_off_id)
        upload = request.files.get("evidence")
        if upload is None or not upload.filename:
            raise BusinessRuleViolation({"evidence": ["Attach the evidence file as 'evidence'"]})
        details = services.ClaimDetails(
            term_id=args["term_id"], achieved_on=args["achieved_on"], note=args["note"]
        )
        claim = commit_write(
            lambda: services.claim_outcome(
                g.api_user, call_off, details, upload.filename, upload.stream
            )
        )
        location = url_for("outcomes_api.OutcomeClaimItem", claim_id=claim.id, _external=True)
        return claim, 201, {"Location": location}


@blp.route("/outcome-claims/<int:claim_id>")
class OutcomeClaimItem(MethodView):
    @blp.response(200, OutcomeClaimSchema)
    def get(self, claim_id):
        """One outcome claim on a call-off the token's organisation is party to."""
        return _claim(claim_id)


@blp.route("/outcome-claims/<int:claim_id>/verify", methods=["POST"])
@blp.response(200, OutcomeClaimSchema)
@blp.alt_response(409, response=CONFLICT_RESPONSE)
def verify(claim_id):
    """The lead buyer verifies a claim: the next invoice run bills it on an outcome invoice."""
    claim = _claim(claim_id)
    return commit_write(lambda: services.verify_claim(g.api_user, claim))


@blp.route("/outcome-claims/<int:claim_id>/reject", methods=["POST"])
@blp.arguments(ReasonSchema)
@blp.response(200, OutcomeClaimSchema)
@blp.alt_response(409, response=CONFLICT_RESPONSE)
def reject(args, claim_id):
    """The lead buyer rejects a claim, with a reason the provider sees."""
    claim = _claim(claim_id)
    return commit_write(lambda: services.reject_claim(g.api_user, claim, args["reason"]))


@blp.route("/contingent-liability")
class ContingentLiability(MethodView):
    @blp.response(200, LiabilitySchema)
    def get(self):
        """What could still become payable under outcome terms: the token organisation's share."""
        if not g.organisation.type.is_commissioner:
            raise BusinessRuleViolation("Only commissioning organisations fund call-offs")
        return queries.contingent_liability(g.organisation.id)
