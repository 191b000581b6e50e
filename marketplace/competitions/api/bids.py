"""The provider's side of a competition in the API: ask a clarification question, read the
published answers, create or change a draft bid, submit, withdraw and read one's own bid; the
lead buyer answers a question; the buyer, funders, panel and authority list the bids received
and read a bid, refused while bids are sealed (``permissions.bids_are_sealed``).

A bid another organisation could not read is not found (404), so its existence does not leak;
the rules are in ``marketplace.competitions.services``."""

from __future__ import annotations

import marshmallow as ma
from flask import g
from flask.views import MethodView

from marketplace.competitions import permissions
from marketplace.competitions.api import blp
from marketplace.competitions.models import (
    ANSWER_MAX,
    CLARIFICATION_MAX,
    COMMITMENT_MAX,
    NAME_MAX,
    Bid,
    Clarification,
    Competition,
    CompetitionStatus,
    ConsortiumRole,
)
from marketplace.competitions.services import bids as bid_services
from marketplace.competitions.services import clarifications as clarification_services
from marketplace.competitions.services.bids import (
    MAX_COMMITMENTS,
    MAX_CONSORTIUM,
    MAX_PRICE_LINES,
    AnswerInput,
    BidInput,
    CommitmentInput,
    MemberInput,
    PriceLineInput,
)
from marketplace.competitions.services.common import is_invited
from marketplace.core.api import CONFLICT_RESPONSE, HorizonDate, commit_write
from marketplace.core.db import db
from marketplace.core.errors import NotFound
from marketplace.core.money import BASIS_POINTS_WHOLE, VatTreatment
from marketplace.orders.models import MAX_VALUE_PENCE

MAX_ID = 2**31 - 1


def _competition(competition_id: int) -> Competition:
    competition = db.session.get(Competition, competition_id)
    if competition is None or competition.status is CompetitionStatus.DRAFT:
        raise NotFound("No published competition has that id")
    return competition


def _invited(competition_id: int) -> Competition:
    """A competition the token's organisation is invited to (else not found)."""
    competition = _competition(competition_id)
    if not is_invited(competition, g.organisation):
        raise NotFound("Your organisation is not invited to a competition with that id")
    return competition


# ---------------------------------------------------------------------------------------------
# Shapes


class ClarificationAskSchema(ma.Schema):
    question = ma.fields.String(
        required=True, validate=ma.validate.Length(min=1, max=CLARIFICATION_MAX)
    )


class ClarificationAnswerSchema(ma.Schema):
    answer = ma.fields.String(
        required=True, validate=ma.validate.Length(min=1, max=CLARIFICATION_MAX)
    )


class PublishedAnswerSchema(ma.Schema):
    """A published question and answer: never who asked."""

    id = ma.fields.Integer()
    question = ma.fields.String()
    answer = ma.fields.String()
    answered_at = ma.fields.AwareDateTime()


class AskedQuestionSchema(ma.Schema):
    id = ma.fields.Integer()
    question = ma.fields.String()
    asked_at = ma.fields.AwareDateTime()


class AnswerSchema(ma.Schema):
    question_id = ma.fields.Integer(strict=True, required=True)
    text = ma.fields.String(load_default="", validate=ma.validate.Length(max=ANSWER_MAX))
    meets_requirement = ma.fields.Boolean(
        allow_none=True,
        load_default=None,
        metadata={"description": "Pass/fail questions only: whether the bid meets it"},
    )
    word_count = ma.fields.Function(lambda a: bid_services.count_words(a.text), dump_only=True)


class PriceLineSchema(ma.Schema):
    description = ma.fields.String(
        required=True, validate=ma.validate.Length(min=1, max=COMMITMENT_MAX)
    )
    amount_pence = ma.fields.Integer(
        strict=True, required=True, validate=ma.validate.Range(min=0, max=MAX_VALUE_PENCE)
    )


class CommitmentSchema(ma.Schema):
    what = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=COMMITMENT_MAX))
    how_much = ma.fields.String(
        required=True, validate=ma.validate.Length(min=1, max=COMMITMENT_MAX)
    )
    by_when = HorizonDate(required=True)


class ConsortiumMemberSchema(ma.Schema):
    name = ma.fields.String(load_default="", validate=ma.validate.Length(max=NAME_MAX))
    organisation_id = ma.fields.Integer(
        strict=True,
        allow_none=True,
        load_default=None,
        validate=ma.validate.Range(min=1, max=MAX_ID),
        metadata={"description": "The organisation, if it is registered (else give its name)"},
    )
    role = ma.fields.Enum(ConsortiumRole, by_value=True, required=True)
    share_basis_points = ma.fields.Integer(
        strict=True,
        required=True,
        validate=ma.validate.Range(min=1, max=BASIS_POINTS_WHOLE - 1),
        metadata={"description": "Its share of the work: 3000 is 30%"},
    )


class BidInputSchema(ma.Schema):
    """A draft bid: everything may be left out until it is submitted."""

    answers = ma.fields.List(ma.fields.Nested(AnswerSchema), load_default=list)
    unit_price_pence = ma.fields.Integer(
        strict=True,
        allow_none=True,
        load_default=None,
        validate=ma.validate.Range(min=1, max=MAX_VALUE_PENCE),
        metadata={"description": "Before VAT, for each of the competition's units"},
    )
    vat_treatment = ma.fields.Enum(VatTreatment, by_value=True, allow_none=True, load_default=None)
    price_lines = ma.fields.List(
        ma.fields.Nested(PriceLineSchema),
        load_default=list,
        validate=ma.validate.Length(max=MAX_PRICE_LINES),
        metadata={"description": "An optional price schedule: must add up to the net total"},
    )
    commitments = ma.fields.List(
        ma.fields.Nested(CommitmentSchema),
        load_default=list,
        validate=ma.validate.Length(max=MAX_COMMITMENTS),
    )
    consortium = ma.fields.List(
        ma.fields.Nested(ConsortiumMemberSchema),
        load_default=list,
        validate=ma.validate.Length(max=MAX_CONSORTIUM),
    )
    is_sme = ma.fields.Boolean(allow_none=True, load_default=None)


class BidSchema(ma.Schema):
    id = ma.fields.Integer()
    competition_id = ma.fields.Integer()
    organisation_id = ma.fields.Integer()
    organisation_name = ma.fields.Function(lambda b: b.organisation.name)
    status = ma.fields.Function(lambda b: b.status.value)
    version = ma.fields.Integer()
    answers = ma.fields.List(ma.fields.Nested(AnswerSchema))
    unit_price_pence = ma.fields.Integer(allow_none=True)
    vat_treatment = ma.fields.Function(
        lambda b: b.vat_treatment.value if b.vat_treatment else None, allow_none=True
    )
    net_pence = ma.fields.Integer(allow_none=True)
    vat_pence = ma.fields.Integer(allow_none=True)
    gross_pence = ma.fields.Integer(allow_none=True)
    price_lines = ma.fields.List(ma.fields.Nested(PriceLineSchema))
    commitments = ma.fields.List(ma.fields.Nested(CommitmentSchema))
    consortium = ma.fields.List(ma.fields.Nested(ConsortiumMemberSchema))
    bidder_is_sme = ma.fields.Boolean(allow_none=True)
    bidder_is_vcse = ma.fields.Boolean(allow_none=True)
    submitted_at = ma.fields.AwareDateTime(allow_none=True)
    withdrawn_at = ma.fields.AwareDateTime(allow_none=True)


class ReceivedBidSchema(ma.Schema):
    id = ma.fields.Integer()
    organisation_id = ma.fields.Integer()
    organisation_name = ma.fields.Function(lambda b: b.organisation.name)
    status = ma.fields.Function(lambda b: b.status.value)
    submitted_at = ma.fields.AwareDateTime()
    unit_price_pence = ma.fields.Integer()
    net_pence = ma.fields.Integer()
    vat_pence = ma.fields.Integer()
    gross_pence = ma.fields.Integer()
    consortium_size = ma.fields.Function(lambda b: len(b.consortium) + 1)


def _bid_input(args: dict) -> BidInput:
    return BidInput(
        answers=[
            AnswerInput(a["question_id"], a["text"], a["meets_requirement"])
            for a in args["answers"]
        ],
        unit_price_pence=args["unit_price_pence"],
        vat_treatment=args["vat_treatment"],
        price_lines=[
            PriceLineInput(line["description"], line["amount_pence"])
            for line in args["price_lines"]
        ],
        commitments=[
            CommitmentInput(c["what"], c["how_much"], c["by_when"]) for c in args["commitments"]
        ],
        consortium=[
            MemberInput(m["name"], m["role"], m["share_basis_points"], m["organisation_id"])
            for m in args["consortium"]
        ],
        is_sme=args["is_sme"],
    )


# ---------------------------------------------------------------------------------------------
# Clarifications


@blp.route("/competitions/<int:competition_id>/clarifications")
class ClarificationCollection(MethodView):
    @blp.response(200, PublishedAnswerSchema(many=True))
    def get(self, competition_id):
        """The published answers, as every invited provider reads them (never who asked)."""
        competition = _competition(competition_id)
        if not (
            is_invited(competition, g.organisation)
            or permissions.can_oversee(g.api_user, g.organisation, competition)
        ):
            raise NotFound("Your organisation is not invited to a competition with that id")
        return clarification_services.published_answers(competition)

    @blp.arguments(ClarificationAskSchema)
    @blp.response(201, AskedQuestionSchema)
    def post(self, args, competition_id):
        """An invited provider asks a question before the clarification deadline."""
        competition = _competition(competition_id)
        return commit_write(
            lambda: clarification_services.ask_clarification(
                g.api_user, g.organisation, competition, args["question"]
            )
        )


@blp.route("/competitions/<int:competition_id>/clarifications/<int:clarification_id>/answer")
class ClarificationAnswer(MethodView):
    @blp.arguments(ClarificationAnswerSchema)
    @blp.response(200, PublishedAnswerSchema)
    @blp.alt_response(409, response=CONFLICT_RESPONSE)
    def post(self, args, competition_id, clarification_id):
        """The lead buyer answers; the answer is emailed to every invited provider."""
        clarification = db.session.get(Clarification, clarification_id)
        if clarification is None or clarification.competition_id != competition_id:
            raise NotFound("No question has that id")
        return commit_write(
            lambda: clarification_services.answer_clarification(
                g.api_user, g.organisation, clarification, args["answer"]
            )
        )


# ---------------------------------------------------------------------------------------------
# The provider's own bid


def _own(competition: Competition) -> Bid:
    bid = bid_services.own_bid(competition, g.organisation)
    if bid is None:
        raise NotFound("Your organisation has no bid in this competition")
    return bid


@blp.route("/competitions/<int:competition_id>/bid")
class OwnBid(MethodView):
    @blp.response(200, BidSchema)
    def get(self, competition_id):
        """Your organisation's own bid (nobody else can read it before the deadline)."""
        competition = _invited(competition_id)
        bid = _own(competition)
        if not permissions.is_bidder(g.api_user, g.organisation, bid):
            raise NotFound("Your organisation has no bid in this competition")
        return bid

    @blp.arguments(BidInputSchema)
    @blp.response(200, BidSchema)
    def put(self, args, competition_id):
        """Create or replace your draft bid (a withdrawn bid may be changed too). Refused with
        the reason: not invited (disregarded), after the bid deadline, an answer over its word
        limit, a schedule that does not add up, a consortium member not in the lot."""
        competition = _competition(competition_id)
        return commit_write(
            lambda: bid_services.save_bid(g.api_user, g.organisation, competition, _bid_input(args))
        )


@blp.route("/competitions/<int:competition_id>/bid/submit")
class SubmitBid(MethodView):
    @blp.response(200, BidSchema)
    @blp.alt_response(409, response=CONFLICT_RESPONSE)
    def post(self, competition_id):
        """Submit (or resubmit) your complete bid before the deadline: administrators only."""
        bid = _own(_invited(competition_id))
        return commit_write(lambda: bid_services.submit_bid(g.api_user, g.organisation, bid))


@blp.route("/competitions/<int:competition_id>/bid/withdraw")
class WithdrawBid(MethodView):
    @blp.response(200, BidSchema)
    @blp.alt_response(409, response=CONFLICT_RESPONSE)
    def post(self, competition_id):
        """Withdraw your submitted bid before the deadline: administrators only."""
        bid = _own(_invited(competition_id))
        return commit_write(lambda: bid_services.withdraw_bid(g.api_user, g.organisation, bid))


# ---------------------------------------------------------------------------------------------
# Bids received (sealed until the deadline)


@blp.route("/competitions/<int:competition_id>/bids")
class BidCollection(MethodView):
    @blp.response(200, ReceivedBidSchema(many=True))
    def get(self, competition_id):
        """The bids received (from invited providers only), for the buyer, funders, panel and
        authority: 403 while bids are sealed; 404 for anyone else."""
        competition = _competition(competition_id)
        return bid_services.bids_received(g.api_user, g.organisation, competition)


@blp.route("/bids/<int:bid_id>")
class BidItem(MethodView):
    @blp.response(200, BidSchema)
    def get(self, bid_id):
        """One bid: its bidder always; the buyer, funders, panel and authority once unsealed;
        anyone else (and everyone but the bidder while sealed) is told it is not found."""
        bid = db.session.get(Bid, bid_id)
        if bid is None or not permissions.can_read_bid(g.api_user, g.organisation, bid):
            raise NotFound("No bid you can read has that id")
        return bid
