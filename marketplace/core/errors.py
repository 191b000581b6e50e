"""Domain exceptions, and the one place that turns any error into a page or problem+json."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from flask import Flask, current_app, g, jsonify, render_template, request
from werkzeug.exceptions import HTTPException, InternalServerError

from marketplace.core.db import rollback

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


class DomainError(Exception):
    """Base class of errors that services raise for the caller to show."""

    status = 422
    title = "The request breaks a rule"
    # Extra members of the API's problem detail (RFC 9457 extensions), e.g. a link to act on.
    extensions: dict[str, Any] = {}

    def __init__(self, errors: dict[str, list[str]] | str | None = None):
        if isinstance(errors, str):
            errors = {"": [errors]}
        self.errors: dict[str, list[str]] = errors or {}
        super().__init__(self.detail)

    @property
    def detail(self) -> str:
        messages = [
            message for field_messages in self.errors.values() for message in field_messages
        ]
        return " ".join(messages) or self.title


class BusinessRuleViolation(DomainError):
    """A business rule refuses the request; ``errors`` maps form fields to messages."""


class TransitionConflict(BusinessRuleViolation):
    """The object is not, or no longer, in a state that allows the request: it has already been
    done (a double click, two people at once), or something else happened to it first. A 409:
    the request was right when it was made, and the object has moved on (``marketplace.core.state``).
    """

    status = 409
    title = "This has already been done, or can no longer be done"


class PermissionDenied(DomainError):
    status = 403
    title = "You do not have permission to do that"


class NotFound(DomainError):
    status = 404
    title = "Not found"


def wants_problem_json() -> bool:
    """API requests and clients that ask for JSON get problem+json, not a page."""
    if request.path.startswith("/api/"):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json", PROBLEM_JSON])
    return best in ("application/json", PROBLEM_JSON) and request.path != "/"


def problem_response(
    status: int,
    title: str | None = None,
    detail: str | None = None,
    errors: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    extensions: dict[str, Any] | None = None,
):
    """Build an RFC 9457 problem+json response."""
    phrase = next((s.phrase for s in HTTPStatus if s.value == status), "Error")
    body: dict[str, Any] = {
        "type": f"https://marketplace.invalid/problems/{status}",
        "title": title or phrase,
        "status": status,
        "detail": detail or title or phrase,
    }
    if errors:
        body["errors"] = errors
    for name, value in (extensions or {}).items():
        body.setdefault(name, value)
    request_id = g.get("request_id")
    if request_id:
        body["request_id"] = request_id
    response = jsonify(body)
    response.status_code = status
    response.mimetype = PROBLEM_JSON
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


ERROR_PAGE_TITLES = {
    400: "There is a problem with your request",
    401: "You need to sign in",
    403: "You do not have permission to see this page",
    404: "Page not found",
    405: "This page cannot be used in that way",
    409: "This has already been done, or can no longer be done",
    413: "The file or form you sent is too large",
    422: "There is a problem with your request",
    429: "Too many attempts",
    500: "Sorry, there is a problem with the service",
}


def _api_errors_from_http_exception(error: HTTPException) -> dict[str, Any] | None:
    """Field errors that webargs / flask-smorest attach to a 422."""
    data = getattr(error, "data", None) or {}
    messages = data.get("messages")
    if not messages:
        return None
    # webargs nests by location ("json", "query"); flatten one level so fields are at the top.
    flat: dict[str, Any] = {}
    for location, fields in messages.items():
        if isinstance(fields, dict):
            flat.update(fields)
        else:
            flat[location] = fields
    return flat


def render_error(status: int, detail: str | None = None, headers: dict[str, str] | None = None):
    """Render an error as problem+json for the API and as a GOV.UK page otherwise."""
    if wants_problem_json():
        return problem_response(status, ERROR_PAGE_TITLES.get(status), detail, headers=headers)
    title = ERROR_PAGE_TITLES.get(status, "Error")
    template = f"errors/{status}.html" if status in ERROR_PAGE_TITLES else "errors/generic.html"
    body = render_template(template, title=title, detail=detail, status=status)
    return body, status, headers or {}


def handle_http_exception(error: HTTPException):
    status = error.code or 500
    headers = {}
    if status == 405 and getattr(error, "valid_methods", None):
        headers["Allow"] = ", ".join(error.valid_methods)
    if wants_problem_json():
        detail = error.description if status != 500 else None
        if status == 429:
            detail = "Too many requests. Wait a few minutes and try again."
        return problem_response(
            status,
            ERROR_PAGE_TITLES.get(status),
            detail,
            errors=_api_errors_from_http_exception(error),
            headers=headers,
        )
    detail = None
    if status == 429:
        detail = getattr(error, "description", None)
    return render_error(status, detail, headers)


def handle_domain_error(error: DomainError):
    if wants_problem_json():
        return problem_response(
            error.status,
            error.title,
            error.detail,
            errors=error.errors or None,
            extensions=error.extensions,
        )
    return render_error(error.status, error.detail)


def handle_unexpected_error(error: Exception):
    log.exception("unhandled error", extra={"request_id": g.get("request_id")})
    rollback()
    if current_app.config.get("PROPAGATE_EXCEPTIONS"):
        raise error
    if wants_problem_json():
        return problem_response(500)
    return render_error(500)


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(DomainError, handle_domain_error)
    app.register_error_handler(InternalServerError, handle_http_exception)
    app.register_error_handler(Exception, handle_unexpected_error)
