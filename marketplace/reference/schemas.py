"""API shapes for reference data."""

from __future__ import annotations

import marshmallow as ma

from marketplace.core.api import PaginationQuerySchema


class RegionSchema(ma.Schema):
    code = ma.fields.String(required=True, metadata={"example": "A"})
    name = ma.fields.String(required=True, metadata={"example": "North East"})


class PccAreaSchema(ma.Schema):
    code = ma.fields.String(required=True, metadata={"example": "avon-and-somerset"})
    name = ma.fields.String(required=True)
    region_code = ma.fields.Function(lambda area: area.region.code, required=True)


class CategorySchema(ma.Schema):
    code = ma.fields.String(required=True, metadata={"example": "ACC"})
    name = ma.fields.String(required=True)
    is_cohort = ma.fields.Boolean(required=True)


class PccAreaQuerySchema(PaginationQuerySchema):
    # A pattern, not only a length: anything else (a NUL byte, say) never reaches the database.
    region = ma.fields.String(
        validate=ma.validate.Regexp(
            r"^[A-Z]{1,2}$", error="Give a region code, a capital letter A to L"
        ),
        metadata={"description": "Region code A–L", "example": "B"},
    )
