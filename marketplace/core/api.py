"""The API base: flask-smorest at /api/v1, bearer tokens, problem+json errors, pagination."""

from __future__ import annotations

import http
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import marshmallow as ma
import sqlalchemy as sa
from flask import Flask, abort, g, request
from flask_smorest import Api, Blueprint
from webargs import core as webargs_core
from webargs.flaskparser import FlaskParser, is_json_request

from marketplace.core.db import commit, db, rollback
from marketplace.core.errors import PROBLEM_JSON, DomainError, handle_http_exception
from marketplace.core.validation import (
    JSONInputError,
    add_years,
    date_horizon_error,
    earliest_date,
    horizon_years,
    load_json,
    london_today,
    text_errors,
)

API_PREFIX = "/api/v1"
TOKEN_REQUIRED_RESPONSE = "TOKEN_REQUIRED"  # noqa: S105 - an OpenAPI component name
# Documented on each transition: the object is not, or no longer, in a state that allows it
# (already done, or something else happened first; errors.TransitionConflict).
CONFLICT_RESPONSE = http.HTTPStatus.CONFLICT.name


class ProblemSchema(ma.Schema):
    """RFC 9457 problem details: the one error shape of the API."""

    type = ma.fields.String(
        required=True, metadata={"description": "A URI naming the kind of problem"}
    )
    title = ma.fields.String(
        required=True, metadata={"description": "A short, human-readable summary"}
    )
    status = ma.fields.Integer(required=True, metadata={"description": "The HTTP status code"})
    detail = ma.fields.String(required=True, metadata={"description": "What went wrong this time"})
    errors = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.Raw(),
        metadata={"description": "Messages per field, for a request that fails validation"},
    )
    request_id = ma.fields.String(metadata={"description": "Quote this when you report a problem"})


class MarketplaceApi(Api):
    """flask-smorest with our single error shape (application/problem+json)."""

    ERROR_SCHEMA = ProblemSchema

    # The function that finds the API token a bearer secret belongs to (None if none, revoked or
    # expired). Tokens belong to accounts, which build on the core: the app factory registers it.
    authenticate_token: Callable[[str], Any] | None = None

    def token_loader(self, callback: Callable[[str], Any]) -> Callable[[str], Any]:
        """Register the function that finds the API token a bearer secret belongs to."""
        self.authenticate_token = callback
        return callback

    def handle_http_exception(self, error):  # flask-smorest hook
        return handle_http_exception(error)

    def _register_responses(self):
        """Document every error response as ``application/problem+json``, which is what we send.

        flask-smorest documents its error responses (``DEFAULT_ERROR``, ``UNPROCESSABLE_ENTITY``
        and one per status) with ``DEFAULT_RESPONSE_CONTENT_TYPE``, which must stay
        ``application/json`` for successful responses; so the components are registered here
        with the problem content type instead. (Overrides a private method of flask-smorest's
        ``Api``, called once by ``init_app``: pinned by tests/test_api_pins.py.)
        """
        for status in http.HTTPStatus:
            with_body = not (100 <= status < 200) and status not in (204, 304)
            self.spec.components.response(
                status.name, _problem_response(status.phrase, with_body), lazy=True
            )
        self.spec.components.response(
            self.DEFAULT_ERROR_RESPONSE_NAME, _problem_response("Any other error"), lazy=True
        )
        self.spec.components.response(
            TOKEN_REQUIRED_RESPONSE,
            _problem_response("Missing, wrong or revoked API token"),
            lazy=True,
        )


def _problem_response(description: str, with_body: bool = True) -> dict[str, Any]:
    """An OpenAPI 3 response whose body is a problem+json ``ProblemSchema``."""
    response: dict[str, Any] = {"description": description}
    if with_body:
        response["content"] = {PROBLEM_JSON: {"schema": ProblemSchema}}
    return response


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


class HorizonDate(ma.fields.Date):
    """A date a client sends, refused outside the service's horizon (``marketplace.core.validation``)
    with the field named, like any other field error.

    ``ends_later``: it ends something (a call-off, from its start date): the service checks it
    against that start, which it may follow by up to the horizon; here it is only kept within
    the furthest such a start allows (the horizon after the latest start)."""

    def __init__(self, *args: Any, ends_later: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.ends_later = ends_later

    def _deserialize(self, value, attr, data, **kwargs):
        day = super()._deserialize(value, attr, data, **kwargs)
        start = add_years(london_today(), horizon_years()) if self.ends_later else None
        message = date_horizon_error(day, "The date", start=start, start_label="the latest start")
        if message:
            raise ma.ValidationError(message)
        return day


# Text a client may send (marketplace.core.validation): no NUL and no other C0 control character
# but tab, newline and carriage return, written into the spec as a pattern. (Unpaired surrogates
# are refused too, but a pattern cannot name them: no valid JSON Schema string holds one.)
TEXT_PATTERN = "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f]*$"


def _years(first: int, last: int) -> str:
    return "(" + "|".join(str(year) for year in range(first, last + 1)) + ")"


def input_rules_in_the_spec(self, field, ret: dict, **kwargs) -> dict:
    """An apispec attribute function: what the API refuses, said in the spec, so that a client
    (or a fuzzer) reading it sends what is accepted. A date's pattern is the years that are
    inside the horizon whatever the day (it moves on with the year while a worker runs)."""
    if isinstance(field, HorizonDate):
        first, years = earliest_date().year, horizon_years()
        last = london_today().year + (2 * years if field.ends_later else years) - 1
        day = "(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
        return {"pattern": f"^{_years(first, last)}-{day}$"}
    if (
        isinstance(field, ma.fields.String)
        and ret.get("type") == "string"
        and not {"pattern", "format", "enum"} & set(ret)
        and not isinstance(getattr(field, "parent", None), ProblemSchema)
    ):
        return {"pattern": TEXT_PATTERN}
    return {}


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
    total = db.session.scalar(
        sa.select(sa.func.count()).select_from(query.order_by(None).subquery())
    )
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
    header = request.headers.get("Authorization", "")
    scheme, _, secret = header.partition(" ")
    token = api.authenticate_token(secret.strip()) if scheme.lower() == "bearer" else None
    if token is None:
        abort(401, description="Send a valid API token as 'Authorization: Bearer <token>'.")
    g.api_token = token
    g.api_user = token.user
    g.organisation = token.organisation
    if db.session.dirty:
        commit()  # last_used_at


# The documented 401 of every token-protected operation (added by ApiBlueprint; kept for
# operations that want to say so explicitly).
AUTH_RESPONSES = {"401": TOKEN_REQUIRED_RESPONSE}


class ArgumentsParser(FlaskParser):
    """webargs' parser with the service's own JSON and text checks (``marketplace.core.validation``).

    A body nested too deep (or not JSON) answers 400; text holding a NUL, another control
    character or an unpaired surrogate, anywhere in the body, query or form, answers 422 with
    the field named, like any other field error, before the schema or a service sees it."""

    def load_json(self, req, schema):
        if not is_json_request(req):
            # A body sent as anything but JSON would be read as no body at all: a PUT then
            # replaced its object with the defaults (a bid's price wiped) and answered 200.
            if req.get_data(cache=True):
                abort(
                    415,
                    description="Send the request body as JSON, with the header "
                    "Content-Type: application/json",
                )
            return webargs_core.missing
        data = req.get_data(cache=True)
        if not data:
            return webargs_core.missing
        try:
            return load_json(data)
        except JSONInputError as error:
            abort(400, description=str(error))

    def pre_load(self, location_data, *, schema, req, location):
        errors = text_errors(location_data)
        if errors:
            raise ma.ValidationError(errors)
        return location_data


class ApiBlueprint(Blueprint):
    """A feature's API blueprint: token-protected unless public, and documented as such.

    Every operation of a token-protected blueprint is documented with the bearer security
    scheme and a 401 problem+json response, so no operation can forget either. flask-smorest
    itself documents 422 for operations that take arguments and ``default`` for the rest.
    """

    ARGUMENTS_PARSER = ArgumentsParser()

    def __init__(self, *args: Any, public: bool | str = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.public = public
        if public == "reads":
            self.before_request(_writes_need_a_token)
        elif not public:
            self.before_request(token_required)
        if public != True:  # noqa: E712 (False or "reads")
            # flask-smorest's list of the callbacks that build each operation's documentation:
            # a private attribute, pinned by tests/test_api_pins.py.
            self._prepare_doc_cbks.append(self._prepare_auth_doc)

    def arguments(self, schema: type[ma.Schema] | ma.Schema, **kwargs: Any):
        """flask-smorest's ``arguments``, with a schema class made into its one instance here.

        Given a class, webargs builds a new instance for every request, deep-copying each of
        its fields. One instance serves every request as well (invariant: a marshmallow schema
        keeps nothing between loads), and the documentation is the same. Measured by
        ``benchmarks/place_call_offs.py`` (the call-offs row of benchmarks/RESULTS.md).
        """
        if isinstance(schema, type):
            schema = schema()
        return super().arguments(schema, **kwargs)

    def _prepare_auth_doc(
        self, doc: dict[str, Any], doc_info: dict[str, Any], *, method: str, **kwargs: Any
    ) -> dict[str, Any]:
        if self.public == "reads" and method.upper() in READ_METHODS:
            return doc
        doc.setdefault("security", [{"bearerAuth": []}])
        doc.setdefault("responses", {}).update(AUTH_RESPONSES)
        return doc


READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _writes_need_a_token() -> None:
    if request.method not in READ_METHODS:
        token_required()


T = TypeVar("T")


def commit_write(action: Callable[[], T]) -> T:
    """Run one API request's use case and commit (the request's one commit); a refusal
    (``DomainError``) rolls back and goes on to the problem+json handler as a 4xx. The answer
    describes what was written, so the committed objects stay loaded (``keep_loaded``)."""
    try:
        result = action()
    except DomainError:
        rollback()
        raise
    commit(keep_loaded=True)
    return result


def api_blueprint(
    name: str, import_name: str, description: str, *, public: bool | str = False
) -> ApiBlueprint:
    """A feature's API blueprint. ``public``: False, a bearer token on every request; True,
    none; ``"reads"``, none to read (GET, HEAD, OPTIONS), a token to write; each documented as
    such."""
    return ApiBlueprint(
        name, import_name, url_prefix=API_PREFIX, description=description, public=public
    )


def refuse_oversized_body():
    """Answer 413 to an API request whose declared body is over the limit, before anything else.

    Werkzeug only raises 413 when a view reads the body; a request to a route that never does
    (or to a method that is not allowed) would otherwise get another answer.
    """
    limit = request.max_content_length
    declared = request.content_length
    if (
        request.path.startswith(API_PREFIX + "/")
        and None not in (limit, declared)
        and declared > limit
    ):
        abort(413, description=f"The request body is over the limit of {limit} bytes.")


def init_api(
    app: Flask, blueprints: Iterable[Blueprint], authenticate_token: Callable[[str], Any]
) -> None:
    """Serve the features' API ``blueprints`` at /api/v1, finding the token of each request's
    bearer secret with ``authenticate_token``."""
    api.init_app(app)
    api.token_loader(authenticate_token)
    api.ma_plugin.converter.add_attribute_function(input_rules_in_the_spec)
    app.before_request(refuse_oversized_body)
    for blueprint in blueprints:
        api.register_blueprint(blueprint)
