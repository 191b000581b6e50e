"""Public reference-data endpoints: regions, PCC areas, categories."""

from __future__ import annotations

from flask.views import MethodView
from sqlalchemy.orm import selectinload

from marketplace.core.api import PaginationQuerySchema, api_blueprint, paginate, paginated_schema
from marketplace.reference.models import PccArea
from marketplace.reference.queries import categories_query, pcc_areas_query, regions_query
from marketplace.reference.schemas import (
    CategorySchema,
    PccAreaQuerySchema,
    PccAreaSchema,
    RegionSchema,
)

blp = api_blueprint("reference_api", __name__, "Reference data (no token needed)", public=True)

RegionPage = paginated_schema(RegionSchema, "RegionPage")
PccAreaPage = paginated_schema(PccAreaSchema, "PccAreaPage")
CategoryPage = paginated_schema(CategorySchema, "CategoryPage")


@blp.route("/regions")
class RegionCollection(MethodView):
    @blp.arguments(PaginationQuerySchema, location="query")
    @blp.response(200, RegionPage)
    def get(self, args):
        """List the 12 probation regions."""
        return paginate(regions_query(), args["page"], args["page_size"])


@blp.route("/pcc-areas")
class PccAreaCollection(MethodView):
    @blp.arguments(PccAreaQuerySchema, location="query")
    @blp.response(200, PccAreaPage)
    def get(self, args):
        """List the 42 Police and Crime Commissioner areas, optionally in one region."""
        query = pcc_areas_query(args.get("region")).options(selectinload(PccArea.region))
        return paginate(query, args["page"], args["page_size"])


@blp.route("/categories")
class CategoryCollection(MethodView):
    @blp.arguments(PaginationQuerySchema, location="query")
    @blp.response(200, CategoryPage)
    def get(self, args):
        """List the service categories (lots)."""
        return paginate(categories_query(), args["page"], args["page_size"])
