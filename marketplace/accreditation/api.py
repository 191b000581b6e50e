"""Dynamic purchasing system endpoints: arrangements and their registers (public), memberships."""

from __future__ import annotations

import marshmallow as ma
from flask import abort, g
from flask.views import MethodView

from marketplace.accreditation import queries
from marketplace.accreditation.schemas import (
    ArrangementSchema,
    ArrangementSummarySchema,
    LotMembershipSchema,
    MembersQuerySchema,
    RegisterEntrySchema,
    StrictPaginationQuerySchema,
)
from marketplace.api import api_blueprint, paginate, paginated_schema

blp = api_blueprint(
    "accreditation_api",
    __name__,
    "Arrangements, their lots, criteria and registers of members (no token needed)",
    public=True,
)
memberships_blp = api_blueprint(
    "accreditation_memberships_api", __name__, "Your organisation's memberships (token needed)"
)

ArrangementPage = paginated_schema(ArrangementSummarySchema, "ArrangementPage")
RegisterPage = paginated_schema(RegisterEntrySchema, "RegisterPage")
LotMembershipPage = paginated_schema(LotMembershipSchema, "LotMembershipPage")


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
