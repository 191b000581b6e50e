"""Set-up endpoints: a buyer's token creates a draft (with any of its sections), reads it,
publishes it and cancels it, and reads the invited list; anyone reads the open competitions.
The same services as the pages (``competitions.services``); a competition the token's
organisation may not see is not found (404)."""

from __future__ import annotations

import http
from collections.abc import Callable

import marshmallow as ma
from flask import g
from flask.views import MethodView

from marketplace.accreditation.models import ArrangementLot
from marketplace.catalogue.models import Unit
from marketplace.competitions import permissions, queries
from marketplace.competitions.api import blp, public_blp
from marketplace.competitions.models import (
    MAX_QUESTIONS,
    Competition,
    CompetitionStatus,
    PriceFormula,
    QuestionKind,
    TieBreak,
)
from marketplace.competitions.services import cancelling, publishing, setup
from marketplace.core.api import (
    CONFLICT_RESPONSE,
    HorizonDate,
    commit_write,
    paginate,
    paginated_schema,
)
from marketplace.core.clock import utcnow
from marketplace.core.db import MAX_ID, db
from marketplace.core.errors import NotFound
from marketplace.orders.services.details import FundingShare

_ID = ma.validate.Range(min=1, max=MAX_ID)


def _visible(competition_id: int) -> Competition:
    """A competition the token's organisation may see (a draft: only the buying side)."""
    competition = db.session.get(Competition, competition_id)
    if competition is None or (
        competition.status is CompetitionStatus.DRAFT
        and not permissions.can_see(g.api_user, g.organisation, competition)
    ):
        raise NotFound("No competition you can see has that id")
    return competition


# ---------------------------------------------------------------------------------------------
# Schemas


class CompetitionAreaSchema(ma.Schema):
    region_id = ma.fields.Integer(allow_none=True)
    pcc_area_id = ma.fields.Integer(allow_none=True)
    name = ma.fields.String()


class CompetitionFunderSchema(ma.Schema):
    organisation_id = ma.fields.Integer(required=True, validate=_ID)
    basis_points = ma.fields.Integer(
        required=True,
        validate=ma.validate.Range(min=1, max=10_000),
        metadata={"description": "The share in basis points (10,000 is 100%)"},
    )


class CompetitionFunderOutSchema(CompetitionFunderSchema):
    organisation_name = ma.fields.Function(lambda f: f.organisation.name)


class CompetitionQuestionSchema(ma.Schema):
    kind = ma.fields.Enum(QuestionKind, by_value=True, required=True)
    text = ma.fields.String(required=True, validate=ma.validate.Length(max=2_000))
    scoring_scheme = ma.fields.String(load_default="", validate=ma.validate.Length(max=4_000))
    word_limit = ma.fields.Integer(allow_none=True, load_default=None, validate=_ID)
    max_score = ma.fields.Integer(load_default=4, validate=ma.validate.Range(min=1, max=10))
    weight = ma.fields.Integer(load_default=0, validate=ma.validate.Range(min=0, max=100))


class CompetitionQuestionOutSchema(CompetitionQuestionSchema):
    id = ma.fields.Integer()


class CompetitionEvaluatorSchema(ma.Schema):
    user_id = ma.fields.Integer()
    name = ma.fields.Function(lambda e: e.user.name)
    organisation_id = ma.fields.Integer()


class NewCompetitionSchema(ma.Schema):
    """A draft: its details (required) and any other section (each checked as on its page)."""

    title = ma.fields.String(required=True, validate=ma.validate.Length(max=200))
    need = ma.fields.String(required=True, validate=ma.validate.Length(max=10_000))
    lot_id = ma.fields.Integer(required=True, validate=_ID)
    region_ids = ma.fields.List(ma.fields.Integer(validate=_ID), load_default=list)
    pcc_area_ids = ma.fields.List(ma.fields.Integer(validate=_ID), load_default=list)
    estimated_value_pence = ma.fields.Integer(
        required=True,
        validate=ma.validate.Range(min=1, max=10**13),
        metadata={"description": "Whole-life value including VAT, in pence"},
    )
    quantity = ma.fields.Integer(required=True, validate=ma.validate.Range(min=1, max=10**9))
    unit = ma.fields.Enum(Unit, by_value=True, required=True)
    contract_start = HorizonDate(required=True)
    contract_end = HorizonDate(required=True, ends_later=True)
    missed_sessions_chargeable = ma.fields.Boolean(load_default=False)
    funders = ma.fields.List(
        ma.fields.Nested(CompetitionFunderSchema),
        load_default=None,
        validate=ma.validate.Length(max=setup.MAX_FUNDERS),
        metadata={"description": "The funders with their shares, the lead buyer included"},
    )
    price_weight = ma.fields.Integer(load_default=None, validate=ma.validate.Range(0, 100))
    price_formula = ma.fields.Enum(PriceFormula, by_value=True, load_default=None)
    tie_break = ma.fields.Enum(TieBreak, by_value=True, load_default=None)
    questions = ma.fields.List(
        ma.fields.Nested(CompetitionQuestionSchema),
        load_default=list,
        validate=ma.validate.Length(max=MAX_QUESTIONS),
    )
    clarification_deadline = ma.fields.AwareDateTime(load_default=None)
    bid_deadline = ma.fields.AwareDateTime(load_default=None)
    standstill_working_days = ma.fields.Integer(
        load_default=None, validate=ma.validate.Range(0, 365)
    )
    standstill_reason = ma.fields.String(load_default="", validate=ma.validate.Length(max=2_000))
    evaluator_user_ids = ma.fields.List(
        ma.fields.Integer(validate=_ID), load_default=None, validate=ma.validate.Length(max=50)
    )
    single_evaluator_reason = ma.fields.String(
        load_default="", validate=ma.validate.Length(max=2_000)
    )


class CompetitionSchema(ma.Schema):
    id = ma.fields.Integer()
    reference = ma.fields.String(allow_none=True)
    status = ma.fields.Function(lambda c: c.status.value)
    title = ma.fields.String()
    need = ma.fields.String()
    buyer_id = ma.fields.Integer()
    arrangement_id = ma.fields.Integer()
    lot_id = ma.fields.Integer()
    category = ma.fields.Function(lambda c: c.category.name)
    areas = ma.fields.List(ma.fields.Nested(CompetitionAreaSchema))
    value_band = ma.fields.Function(lambda c: queries.value_band(c.estimated_value_pence))
    quantity = ma.fields.Integer()
    unit = ma.fields.Function(lambda c: c.unit.value)
    contract_start = ma.fields.Date()
    contract_end = ma.fields.Date()
    missed_sessions_chargeable = ma.fields.Boolean()
    price_weight = ma.fields.Integer()
    price_formula = ma.fields.Function(lambda c: c.price_formula.value)
    tie_break = ma.fields.Function(lambda c: c.tie_break.value)
    questions = ma.fields.List(ma.fields.Nested(CompetitionQuestionOutSchema))
    clarification_deadline = ma.fields.AwareDateTime(allow_none=True)
    bid_deadline = ma.fields.AwareDateTime(allow_none=True)
    standstill_working_days = ma.fields.Integer()
    published_at = ma.fields.AwareDateTime(allow_none=True)
    cancelled_at = ma.fields.AwareDateTime(allow_none=True)
    cancellation_reason = ma.fields.String()


def _managed_only(read: Callable):
    """A value only the buying side, the panel and the authority read (None for others)."""
    return lambda c: read(c) if getattr(c, "managed_view", False) else None


class ManagedCompetitionSchema(CompetitionSchema):
    """The public facts, and for the buying side, the panel and the authority the rest (null
    for anyone else)."""

    estimated_value_pence = ma.fields.Function(
        _managed_only(lambda c: c.estimated_value_pence), allow_none=True
    )
    funders = ma.fields.Function(
        _managed_only(lambda c: CompetitionFunderOutSchema(many=True).dump(c.funders)),
        allow_none=True,
    )
    evaluators = ma.fields.Function(
        _managed_only(lambda c: CompetitionEvaluatorSchema(many=True).dump(c.evaluators)),
        allow_none=True,
    )
    single_evaluator_reason = ma.fields.Function(
        _managed_only(lambda c: c.single_evaluator_reason), allow_none=True
    )
    standstill_reason = ma.fields.Function(
        _managed_only(lambda c: c.standstill_reason), allow_none=True
    )
    problems = ma.fields.Function(
        _managed_only(
            lambda c: (
                setup.publish_errors(c, utcnow()) if c.status is CompetitionStatus.DRAFT else {}
            )
        ),
        allow_none=True,
        metadata={"description": "What publishing would refuse now, by field (a draft)"},
    )


class CancelCompetitionSchema(ma.Schema):
    reason = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=2_000))


class InvitedProviderSchema(ma.Schema):
    organisation_id = ma.fields.Integer()
    organisation_name = ma.fields.Function(lambda i: i.organisation.name)
    invited_at = ma.fields.AwareDateTime()
    because = ma.fields.Function(lambda i: i.because.value)


class InvitedProviderListSchema(ma.Schema):
    frozen_at = ma.fields.AwareDateTime(allow_none=True)
    items = ma.fields.List(ma.fields.Nested(InvitedProviderSchema))


class OpenCompetitionQuerySchema(ma.Schema):
    page = ma.fields.Integer(load_default=1, validate=ma.validate.Range(min=1, max=100_000))
    page_size = ma.fields.Integer(load_default=20, validate=ma.validate.Range(min=1, max=100))


OpenCompetitionPageSchema = paginated_schema(CompetitionSchema, "OpenCompetitionPage")


def _managed_view(competition: Competition) -> Competition:
    competition.managed_view = permissions.can_oversee(g.api_user, g.organisation, competition)
    return competition


# ---------------------------------------------------------------------------------------------
# Endpoints


@blp.route("/competitions")
class CompetitionCollection(MethodView):
    @blp.arguments(NewCompetitionSchema)
    @blp.response(201, ManagedCompetitionSchema)
    @blp.alt_response(404, response=http.HTTPStatus.NOT_FOUND.name)
    def post(self, args):
        """A buyer starts a draft competition for its organisation (the lead buyer), with its
        details and any other section: funders, price and tie-break, questions, deadlines,
        standstill, panel. Each is checked by the rules of its page; nothing is written if one
        is refused."""

        # As for a call-off's listing: a lot that does not exist is not found (a lot that is
        # not open to competitions is refused on the field, as on the page).
        if db.session.get(ArrangementLot, args["lot_id"]) is None:
            raise NotFound("No lot has that id")

        def act() -> Competition:
            competition = setup.start_competition(
                g.api_user,
                g.organisation,
                setup.CompetitionDetails(
                    title=args["title"],
                    need=args["need"],
                    lot_id=args["lot_id"],
                    region_ids=args["region_ids"],
                    pcc_area_ids=args["pcc_area_ids"],
                    estimated_value_pence=args["estimated_value_pence"],
                    quantity=args["quantity"],
                    unit=args["unit"].value,
                    contract_start=args["contract_start"],
                    contract_end=args["contract_end"],
                    missed_sessions_chargeable=args["missed_sessions_chargeable"],
                ),
            )
            if args["funders"] is not None:
                setup.set_funding(
                    g.api_user,
                    competition,
                    [
                        FundingShare(f["organisation_id"], f["basis_points"])
                        for f in args["funders"]
                    ],
                )
            if args["price_weight"] is not None or args["price_formula"] or args["tie_break"]:
                setup.set_price_criteria(
                    g.api_user,
                    competition,
                    price_weight=(
                        competition.price_weight
                        if args["price_weight"] is None
                        else args["price_weight"]
                    ),
                    price_formula=(args["price_formula"] or competition.price_formula).value,
                    tie_break=(args["tie_break"] or competition.tie_break).value,
                )
            for question in args["questions"]:
                setup.add_question(
                    g.api_user,
                    competition,
                    setup.QuestionDetails(**{**question, "kind": question["kind"].value}),
                )
            if args["bid_deadline"] or args["clarification_deadline"]:
                setup.set_deadlines(
                    g.api_user,
                    competition,
                    clarification_deadline=args["clarification_deadline"],
                    bid_deadline=args["bid_deadline"],
                    standstill_working_days=(
                        competition.standstill_working_days
                        if args["standstill_working_days"] is None
                        else args["standstill_working_days"]
                    ),
                    standstill_reason=args["standstill_reason"],
                )
            if args["evaluator_user_ids"] is not None:
                setup.set_panel(
                    g.api_user,
                    competition,
                    setup.PanelDetails(args["evaluator_user_ids"], args["single_evaluator_reason"]),
                )
            return competition

        return _managed_view(commit_write(act))


@blp.route("/competitions/<int:competition_id>")
class CompetitionItem(MethodView):
    @blp.response(200, ManagedCompetitionSchema)
    def get(self, competition_id):
        """One competition: the buying side, the panel and the authority read all of it (a
        draft with what publishing would refuse now); anyone else a published one's public
        facts."""
        return _managed_view(_visible(competition_id))


@blp.route("/competitions/<int:competition_id>/publish", methods=["POST"])
@blp.response(200, ManagedCompetitionSchema)
@blp.alt_response(409, response=CONFLICT_RESPONSE)
def publish(competition_id):
    """Publish a draft (the lead buyer's buyers and approvers): every section is checked again,
    the invited list is frozen and each invited provider emailed. Published already: 409."""
    competition = _visible(competition_id)
    return _managed_view(commit_write(lambda: publishing.publish(g.api_user, competition)))


@blp.route("/competitions/<int:competition_id>/cancel", methods=["POST"])
@blp.arguments(CancelCompetitionSchema)
@blp.response(200, ManagedCompetitionSchema)
@blp.alt_response(409, response=CONFLICT_RESPONSE)
def cancel(args, competition_id):
    """Cancel with a reason, any time before award; everyone invited and every bidder is
    told."""
    competition = _visible(competition_id)
    return _managed_view(
        commit_write(lambda: cancelling.cancel(g.api_user, competition, args["reason"]))
    )


@blp.route("/competitions/<int:competition_id>/invited")
@blp.response(200, InvitedProviderListSchema)
def invited(competition_id):
    """The invited list, frozen at publication (and who was added when admitted before the
    bid deadline): the buying side, the panel and the authority."""
    competition = _visible(competition_id)
    if not permissions.can_oversee(g.api_user, g.organisation, competition):
        raise NotFound("No competition you can see has that id")
    return {"frozen_at": competition.published_at, "items": queries.invited_list(competition.id)}


@public_blp.route("/open-competitions")
@public_blp.arguments(OpenCompetitionQuerySchema, location="query")
@public_blp.response(200, OpenCompetitionPageSchema)
def open_competitions(args):
    """Published competitions still open for bids, soonest bid deadline first (no token)."""
    return paginate(queries.open_competitions_query(), args["page"], args["page_size"])
