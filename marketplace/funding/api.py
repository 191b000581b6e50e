"""Budget and standing-authorisation endpoints: list, create, change (and revoke an
authorisation), with the same permissions as the pages. A budget or authorisation of another
organisation is not found (404); the wrong role is forbidden (403); every rule is in
``marketplace.funding.services``."""

from __future__ import annotations

from flask import g
from flask.views import MethodView

from marketplace.core.api import (
    CONFLICT_RESPONSE,
    api_blueprint,
    commit_write,
    paginate,
    paginated_schema,
)
from marketplace.core.db import db
from marketplace.core.errors import BusinessRuleViolation, NotFound
from marketplace.funding import permissions, queries, services
from marketplace.funding.schemas import (
    AuthorisationChangeSchema,
    AuthorisationQuerySchema,
    AuthorisationSchema,
    BudgetChangeRequestSchema,
    BudgetQuerySchema,
    BudgetSchema,
    BudgetWithHistorySchema,
    NewAuthorisationSchema,
    NewBudgetSchema,
    RevokeSchema,
)
from marketplace.orders.models import Budget, FundingAuthorisation

blp = api_blueprint(
    "funding_api",
    __name__,
    "Budgets (list, set, raise or lower with a reason, with their history) and co-funders' "
    "standing authorisations for lead buyers (list, give, change, revoke)",
)

BudgetPageSchema = paginated_schema(BudgetSchema, "BudgetPage")
AuthorisationPageSchema = paginated_schema(AuthorisationSchema, "AuthorisationPage")


def _authority() -> bool:
    return permissions.is_authority(g.api_user, g.organisation)


def _budget(budget_id: int) -> Budget:
    budget = db.session.get(Budget, budget_id)
    if budget is None or not permissions.can_see_budget(g.api_user, g.organisation, budget):
        raise NotFound("No budget of yours has that id")
    return budget


def _authorisation(authorisation_id: int) -> FundingAuthorisation:
    authorisation = db.session.get(FundingAuthorisation, authorisation_id)
    if authorisation is None or not permissions.can_see_authorisation(
        g.api_user, g.organisation, authorisation
    ):
        raise NotFound("No standing authorisation of yours has that id")
    return authorisation


@blp.route("/budgets")
class BudgetCollection(MethodView):
    @blp.arguments(BudgetQuerySchema, location="query")
    @blp.response(200, BudgetPageSchema)
    def get(self, args):
        """Your organisation's budgets (the authority: every organisation's), newest year
        first: allocated, committed, spent and available."""
        if _authority():
            own = None
        elif g.organisation.type.is_commissioner:
            own = g.organisation.id
        else:
            raise BusinessRuleViolation("Only commissioning organisations have budgets")
        filters = queries.BudgetFilters(
            organisation_id=args.get("organisation_id") if own is None else None,
            financial_year=args.get("financial_year"),
        )
        return paginate(
            queries.budgets_query(filters, organisation_id=own), args["page"], args["page_size"]
        )

    @blp.arguments(NewBudgetSchema)
    @blp.response(201, BudgetWithHistorySchema)
    def post(self, args):
        """An approver sets a budget for this financial year or one of the next two, for all
        services or one category."""
        budget = commit_write(
            lambda: services.create_budget(g.api_user, g.organisation, services.NewBudget(**args))
        )
        budget.history = queries.budget_history(budget.id)
        return budget


@blp.route("/budgets/<int:budget_id>")
class BudgetItem(MethodView):
    @blp.response(200, BudgetWithHistorySchema)
    def get(self, budget_id):
        """One budget with its history."""
        budget = _budget(budget_id)
        budget.history = queries.budget_history(budget.id)
        return budget

    @blp.arguments(BudgetChangeRequestSchema)
    @blp.response(200, BudgetWithHistorySchema)
    @blp.alt_response(409, response=CONFLICT_RESPONSE)
    def patch(self, args, budget_id):
        """An approver raises or lowers the budget, with a reason; never below committed +
        spent. Send ``expected_allocated_pence`` to be refused (409) if someone changed it
        after you read it."""
        budget = _budget(budget_id)
        budget = commit_write(
            lambda: services.change_budget(
                g.api_user,
                budget,
                args["allocated_pence"],
                args["reason"],
                expected_allocated_pence=args["expected_allocated_pence"],
            )
        )
        budget.history = queries.budget_history(budget.id)
        return budget


@blp.route("/funding-authorisations")
class AuthorisationCollection(MethodView):
    @blp.arguments(AuthorisationQuerySchema, location="query")
    @blp.response(200, AuthorisationPageSchema)
    def get(self, args):
        """Standing authorisations your organisation has given (as co-funder) and holds (as
        lead buyer); the authority sees every one."""
        direction = args.get("direction")
        year = args.get("financial_year")
        if _authority():
            query = queries.authorisations_query(financial_year=year)
        elif direction == "given":
            query = queries.authorisations_query(given_by=g.organisation.id, financial_year=year)
        elif direction == "held":
            query = queries.authorisations_query(held_by=g.organisation.id, financial_year=year)
        else:
            query = queries.authorisations_query(financial_year=year, party=g.organisation.id)
        return paginate(query, args["page"], args["page_size"])

    @blp.arguments(NewAuthorisationSchema)
    @blp.response(201, AuthorisationSchema)
    def post(self, args):
        """A co-funder's approver gives a lead buyer a standing authorisation for a year."""
        return commit_write(
            lambda: services.create_authorisation(
                g.api_user, g.organisation, services.NewAuthorisation(**args)
            )
        )


@blp.route("/funding-authorisations/<int:authorisation_id>")
class AuthorisationItem(MethodView):
    @blp.response(200, AuthorisationSchema)
    def get(self, authorisation_id):
        """One standing authorisation, with what it has used so far."""
        return _authorisation(authorisation_id)

    @blp.arguments(AuthorisationChangeSchema)
    @blp.response(200, AuthorisationSchema)
    @blp.alt_response(409, response=CONFLICT_RESPONSE)
    def patch(self, args, authorisation_id):
        """The co-funder's approver changes the limits, with a reason; the total never below
        what it has used."""
        authorisation = _authorisation(authorisation_id)
        return commit_write(
            lambda: services.change_authorisation(
                g.api_user,
                authorisation,
                args["per_call_off_limit_pence"],
                args["annual_limit_pence"],
                args["reason"],
            )
        )


@blp.route("/funding-authorisations/<int:authorisation_id>/revoke", methods=["POST"])
@blp.arguments(RevokeSchema)
@blp.response(200, AuthorisationSchema)
@blp.alt_response(409, response=CONFLICT_RESPONSE)
def revoke(args, authorisation_id):
    """The co-funder's approver revokes it, with a reason; call-offs it funded stay funded."""
    authorisation = _authorisation(authorisation_id)
    return commit_write(
        lambda: services.revoke_authorisation(g.api_user, authorisation, args["reason"])
    )
