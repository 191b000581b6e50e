"""Classification endpoints: a provider reads its own VCSE and SME classification and history
and confirms or changes it; the authority reads every provider's (a list with the page's
filters and numbers: one query) and corrects one, with a date and a reason. Another
organisation's is not found (404); bad input is a 4xx problem+json with nothing written."""

from __future__ import annotations

import marshmallow as ma
from flask import g
from flask.views import MethodView

from marketplace.accounts import queries as account_queries
from marketplace.accounts.models import (
    ClassificationSource,
    Organisation,
    StaffBand,
    TurnoverBand,
    VcseBasis,
)
from marketplace.accounts.permissions import (
    can_correct_classification,
    can_read_classification,
    is_authority_admin,
)
from marketplace.accounts.services.classification import (
    REASON_MAX,
    ClassificationAnswers,
    confirm_classification,
    correct_classification,
)
from marketplace.core.api import (
    HorizonDate,
    PaginationQuerySchema,
    commit_write,
    paginated_schema,
)
from marketplace.core.clock import london_date
from marketplace.core.errors import NotFound, PermissionDenied
from marketplace.insight.api import blp
from marketplace.insight.queries.classification import (
    ClassificationFilters,
    classification_query,
    to_row,
)


def _enum(enum_type, description: str, **kwargs) -> ma.fields.Enum:
    return ma.fields.Enum(enum_type, by_value=True, metadata={"description": description}, **kwargs)


class ClassificationEntrySchema(ma.Schema):
    id = ma.fields.Integer()
    effective_from = ma.fields.Date(metadata={"description": "In force from this day"})
    vcse_basis = _enum(VcseBasis, "Legal form, or not VCSE")
    staff_band = _enum(StaffBand, "Staff headcount band")
    turnover_band = _enum(TurnoverBand, "Annual turnover band")
    vcse = ma.fields.Boolean()
    sme = ma.fields.Boolean(metadata={"description": "Fewer than 250 staff and turnover ≤ £44m"})
    source = _enum(
        ClassificationSource, "Registration, the provider's confirmation, or a correction"
    )
    reason = ma.fields.String()
    recorded_at = ma.fields.AwareDateTime()
    recorded_by_name = ma.fields.Function(
        lambda e: e.recorded_by.name if e.recorded_by else None, allow_none=True
    )


class ClassificationStatusSchema(ma.Schema):
    organisation_id = ma.fields.Integer()
    organisation_name = ma.fields.String()
    current = ma.fields.Nested(
        ClassificationEntrySchema,
        allow_none=True,
        metadata={"description": "In force today; none: counted as neither VCSE nor SME"},
    )
    last_confirmed_on = ma.fields.Date(allow_none=True)
    confirmation_due_on = ma.fields.Date(
        allow_none=True, metadata={"description": "None: due now (never confirmed)"}
    )
    overdue = ma.fields.Boolean()
    history = ma.fields.List(
        ma.fields.Nested(ClassificationEntrySchema),
        metadata={"description": "Every entry, newest first"},
    )


class ClassificationAnswersSchema(ma.Schema):
    vcse_basis = _enum(VcseBasis, "Legal form, or not VCSE", required=True)
    staff_band = _enum(StaffBand, "Staff headcount band", required=True)
    turnover_band = _enum(TurnoverBand, "Annual turnover band", required=True)
    charity_number = ma.fields.String(
        validate=ma.validate.Length(max=20),
        metadata={"description": "Needed for a registered charity whose number is not on record"},
    )


class ConfirmationSchema(ma.Schema):
    vcse_basis = _enum(VcseBasis, "Legal form, or not VCSE")
    staff_band = _enum(StaffBand, "Staff headcount band")
    turnover_band = _enum(TurnoverBand, "Annual turnover band")
    charity_number = ma.fields.String(validate=ma.validate.Length(max=20))


class CorrectionSchema(ClassificationAnswersSchema):
    effective_from = HorizonDate(
        required=True, metadata={"description": "Today or a past day, not before it registered"}
    )
    reason = ma.fields.String(
        required=True,
        validate=ma.validate.Length(min=1, max=REASON_MAX),
        metadata={"description": "Why; sent to the provider's administrators"},
    )


class ClassificationListQuerySchema(PaginationQuerySchema):
    vcse = ma.fields.Boolean(metadata={"description": "Only VCSE (true) or not VCSE (false)"})
    sme = ma.fields.Boolean(metadata={"description": "Only SMEs (true) or not (false)"})
    unclassified = ma.fields.Boolean(load_default=False)
    overdue = ma.fields.Boolean(load_default=False)


class ClassificationRowSchema(ma.Schema):
    organisation_id = ma.fields.Integer()
    name = ma.fields.String()
    type = ma.fields.Function(lambda r: r.type.value)
    vcse_basis = _enum(VcseBasis, "None: not classified", allow_none=True)
    staff_band = _enum(StaffBand, "Staff headcount band", allow_none=True)
    turnover_band = _enum(TurnoverBand, "Annual turnover band", allow_none=True)
    vcse = ma.fields.Boolean(allow_none=True)
    sme = ma.fields.Boolean(allow_none=True)
    effective_from = ma.fields.Date(allow_none=True)
    last_confirmed_on = ma.fields.Date(allow_none=True)
    confirmation_due_on = ma.fields.Date(allow_none=True)
    overdue = ma.fields.Boolean()


ClassificationPageSchema = paginated_schema(ClassificationRowSchema, "ClassificationPage")


def _status(organisation: Organisation) -> dict:
    today = london_date()
    last = account_queries.last_confirmed_on(organisation.id)
    due = account_queries.confirmation_due_on(last)
    return {
        "organisation_id": organisation.id,
        "organisation_name": organisation.name,
        "current": account_queries.classifications_in_force([organisation.id], today).get(
            organisation.id
        ),
        "last_confirmed_on": last,
        "confirmation_due_on": due,
        "overdue": due is None or due <= today,
        "history": list(reversed(account_queries.classification_history(organisation.id))),
    }


def _own() -> Organisation:
    organisation = g.organisation
    if not can_read_classification(g.api_user, organisation):
        raise NotFound("Only a provider has a classification: the authority reads them by id")
    return organisation


def _answers(args: dict) -> ClassificationAnswers:
    return ClassificationAnswers(
        args.get("vcse_basis"),
        args.get("staff_band"),
        args.get("turnover_band"),
        args.get("charity_number"),
    )


@blp.route("/insight/classification")
class OwnClassification(MethodView):
    @blp.response(200, ClassificationStatusSchema)
    def get(self):
        """Your provider organisation's classification in force today, when it is next due for
        confirmation, and its history, newest first."""
        return _status(_own())


@blp.route("/insight/classification/confirmations")
class OwnConfirmation(MethodView):
    @blp.arguments(ConfirmationSchema)
    @blp.response(201, ClassificationStatusSchema)
    def post(self, args):
        """An administrator confirms the classification as it stands (an empty body) or changes
        it (all three answers), from today: the yearly confirmation."""
        organisation = _own()
        answers = _answers(args) if args else None
        commit_write(lambda: confirm_classification(g.api_user, organisation, answers))
        return _status(organisation)


def _authority() -> None:
    if not is_authority_admin(g.api_user) or not g.organisation.is_authority:
        raise PermissionDenied("Only the authority's administrators read every provider's")


def _provider(organisation_id: int) -> Organisation:
    organisation = account_queries.get_organisation(organisation_id)
    if organisation is None or not can_read_classification(g.api_user, organisation):
        raise NotFound("No provider you can see has that id")
    if not is_authority_admin(g.api_user) and organisation.id != g.organisation.id:
        raise NotFound("No provider you can see has that id")
    return organisation


@blp.route("/insight/classifications")
class ClassificationCollection(MethodView):
    @blp.arguments(ClassificationListQuerySchema, location="query")
    @blp.response(200, ClassificationPageSchema)
    def get(self, args):
        """Every provider with its classification in force today (the authority), by name:
        the same rows and filters as the page and its CSV."""
        _authority()
        today = london_date()
        filters = ClassificationFilters(
            vcse=args.get("vcse"),
            sme=args.get("sme"),
            unclassified=args["unclassified"],
            overdue=args["overdue"],
        )
        page = account_queries.paginate(
            classification_query(filters, today), args["page"], args["page_size"], scalars=False
        )
        return {
            "items": [to_row(raw, today) for raw in page.items],
            "pagination": {
                "page": page.page,
                "page_size": page.per_page,
                "total": page.total,
                "pages": page.pages,
            },
        }


@blp.route("/insight/classifications/<int:organisation_id>")
class ClassificationItem(MethodView):
    @blp.response(200, ClassificationStatusSchema)
    def get(self, organisation_id):
        """One provider's classification and history (the authority: any; a provider: its own)."""
        return _status(_provider(organisation_id))


@blp.route("/insight/classifications/<int:organisation_id>/corrections")
class ClassificationCorrection(MethodView):
    @blp.arguments(CorrectionSchema)
    @blp.response(201, ClassificationStatusSchema)
    def post(self, args, organisation_id):
        """The authority corrects a provider's classification from today or a past day (never a
        future one), with a reason the provider's administrators are sent."""
        organisation = _provider(organisation_id)
        if not can_correct_classification(g.api_user, organisation):
            raise PermissionDenied("Only the authority corrects a classification")
        commit_write(
            lambda: correct_classification(
                g.api_user,
                organisation,
                _answers(args),
                effective_from=args["effective_from"],
                reason=args["reason"],
            )
        )
        return _status(organisation)
