"""The API base: flask-smorest at /api/v1, bearer tokens, problem+json errors, pagination."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
import sqlalchemy as sa
from flask import Flask, abort, g, request
from flask_smorest import Api, Blueprint

from marketplace.db import commit, db
from marketplace.errors import handle_http_exception

API_PREFIX = "/api/v1"


class ProblemSchema(ma.Schema):
    type = ma.fields.String(required=True)
    title = ma.fields.String(required=True)
    status = ma.fields.Integer(required=True)
    detail = ma.fields.String(required=True)
    errors = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Raw())
    request_id = ma.fields.String()


class MarketplaceApi(Api):
    """flask-smorest with our single error shape (application/problem+json)."""

    ERROR_SCHEMA = ProblemSchema

    def handle_http_exception(self, error):  # noqa: D401 - flask-smorest hook
        return handle_http_exception(error)


api = MarketplaceApi(
    spec_kwargs={
        "info": {
            "description": (
                "Read and act on the Rehabilitation Services Marketplace. Authenticate with a personal "
                "API token (create one under Your account → API tokens) sent as "
                "`Authorization: Bearer <token>`. Errors are `application/problem+json`. Lists are "
                "paginated with `page` and `page_size` and return `items` with a `pagination` object."
            )
        },
        "components": {
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
        },
    }
)


class PaginationQuerySchema(ma.Schema):
    # Query strings are text, so these are not strict; JSON bodies use Integer(strict=True).
    page = ma.fields.Integer(load_default=1, validate=ma.validate.Range(min=1, max=100_000))
    page_size = ma.fields.Integer(load_default=20, validate=ma.validate.Range(min=1, max=100))


class PaginationSchema(ma.Schema):
    page = ma.fields.Integer(required=True)
    page_size = ma.fields.Integer(required=True)
    total = ma.fields.Integer(required=True)
    pages = ma.fields.Integer(required=True)


def paginated_schema(item_schema: type[ma.Schema], name: str) -> type[ma.Schema]:
    """A response schema ``{items: [...], pagination: {...}}`` for a list endpoint."""
    return type(
        name,
        (ma.Schema,),
        {
            "items": ma.fields.List(ma.fields.Nested(item_schema), required=True),
            "pagination": ma.fields.Nested(PaginationSchema, required=True),
        },
    )


def paginate(query: sa.Select, page: int, page_size: int) -> dict[str, Any]:
    """Run ``query`` for one page and describe the pagination."""
    total = db.session.scalar(sa.select(sa.func.count()).select_from(query.order_by(None).subquery()))
    items = db.session.scalars(query.limit(page_size).offset((page - 1) * page_size)).all()
    return {
        "items": items,
        "pagination": {
            "page": page,
            "page_size": page_size,
            "total": total,
            "pages": max(1, -(-total // page_size)),
        },
    }


def token_required() -> None:
    """Authenticate the bearer token and set ``g.api_user`` / ``g.organisation``."""
    from marketplace.accounts.services import authenticate_api_token

    header = request.headers.get("Authorization", "")
    scheme, _, secret = header.partition(" ")
    token = authenticate_api_token(secret.strip()) if scheme.lower() == "bearer" else None
    if token is None:
        abort(401, description="Send a valid API token as 'Authorization: Bearer <token>'.")
    g.api_token = token
    g.api_user = token.user
    g.organisation = token.organisation
    if db.session.dirty:
        commit()  # last_used_at


AUTH_RESPONSES = {"401": {"description": "Missing, wrong or revoked API token"}}


def api_blueprint(name: str, import_name: str, description: str, *, public: bool = False) -> Blueprint:
    """A feature's API blueprint; non-public ones require a bearer token on every request."""
    blueprint = Blueprint(name, import_name, url_prefix=API_PREFIX, description=description)
    if not public:
        blueprint.before_request(token_required)
    return blueprint


def init_api(app: Flask) -> None:
    from marketplace.accounts.api import blp as accounts_api
    from marketplace.extensions import csrf
    from marketplace.reference.api import blp as reference_api

    api.init_app(app)
    for blueprint in (accounts_api, reference_api):
        api.register_blueprint(blueprint)
        # The API authenticates with bearer tokens, never cookies, so CSRF does not apply.
        csrf.exempt(blueprint)
