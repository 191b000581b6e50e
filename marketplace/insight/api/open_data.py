"""The OCDS feed, public (no token): release packages with cursor paging and ``updatedFrom``,
the record package of one ocid, and the bulk file of every release (gzipped JSON Lines,
streamed). Like the Central Digital Platform's. Bad input is problem+json: an ``updatedFrom``
that is not a date or date-time (422), a cursor that is not ours (404: the page it names does
not exist), a page size over the limit (422), an unknown ocid (404). A cursor at the end
gives an empty page with no ``next``."""

from __future__ import annotations

from datetime import UTC, datetime

import flask
import marshmallow as ma
from flask import Response, abort, current_app, jsonify, request, url_for
from flask.views import MethodView

from marketplace.core.clock import LONDON
from marketplace.insight.api import public_blp
from marketplace.insight.ocds import feed

RELEASE_PACKAGE_SCHEMA = (
    "https://standard.open-contracting.org/schema/1__1__5/release-package-schema.json"
)


# A date, or a date and time (to the minute, second or fraction) with an optional offset.
UPDATED_FROM_PATTERN = (
    r"^[1-9][0-9]{3}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"(T([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?(Z|[+-][01][0-9]:[0-5][0-9])?)?$"
)


class UpdatedFrom(ma.fields.String):
    """An ISO 8601 date (from its start in London) or date-time (UTC unless it says)."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs).strip()
        try:
            if len(text) == 10:
                day = datetime.strptime(text, "%Y-%m-%d").date()
                return datetime(day.year, day.month, day.day, tzinfo=LONDON).astimezone(UTC)
            moment = datetime.fromisoformat(text)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            moment = moment.astimezone(UTC)
        except (ValueError, OverflowError):
            raise ma.ValidationError(
                "Give updatedFrom as a date (2026-04-01) or a date and time (2026-04-01T09:30:00Z)."
            ) from None
        return moment


class ReleasesQuerySchema(ma.Schema):
    class Meta:
        unknown = ma.EXCLUDE

    cursor = ma.fields.String(
        metadata={"description": "The opaque cursor of the `links.next` URL of the last page"}
    )
    updatedFrom = UpdatedFrom(  # noqa: N815 - the name the Central Digital Platform uses
        metadata={
            "description": "Only releases dated at or after this date or date-time",
            "pattern": UPDATED_FROM_PATTERN,
        }
    )
    limit = ma.fields.Integer(
        load_default=feed.DEFAULT_PAGE_SIZE,
        validate=ma.validate.Range(min=1, max=feed.MAX_PAGE_SIZE),
        metadata={"description": f"Releases a page (at most {feed.MAX_PAGE_SIZE})"},
    )


def _package_response(description: str) -> dict:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"type": "object"}}},
    }


def _policy_url() -> str:
    return url_for("insight.open_data", _external=True)


@public_blp.route("/ocds/releases")
class OcdsReleases(MethodView):
    @public_blp.arguments(ReleasesQuerySchema, location="query")
    @public_blp.doc(responses={"200": _package_response("An OCDS release package")})
    @public_blp.alt_response(404, response="NOT_FOUND")
    def get(self, args):
        """A release package: releases oldest first, a page at a time (follow `links.next`)."""
        after = None
        if "cursor" in args:
            try:
                after = feed.decode_cursor(args["cursor"])
            except feed.BadCursor:
                # 404 like any identifier that names nothing: the page it names does not exist.
                abort(
                    404,
                    description="That cursor is not one this feed gave: start again without "
                    "one, or use the links.next URL of the page you read last.",
                )
        updated_from = args.get("updatedFrom")
        releases, last = feed.releases_page(after, updated_from, args["limit"])
        package = feed.package_metadata(request.url, _policy_url())
        package["releases"] = releases
        if last is not None:
            query = {"cursor": feed.encode_cursor(last), "limit": args["limit"]}
            if updated_from is not None:
                query["updatedFrom"] = request.args["updatedFrom"]
            package["links"] = {
                "next": url_for("insight_public_api.OcdsReleases", _external=True, **query)
            }
        return jsonify(package)


@public_blp.route("/ocds/records/<path:ocid>")
class OcdsRecord(MethodView):
    @public_blp.doc(responses={"200": _package_response("An OCDS record package")})
    @public_blp.alt_response(404, response="NOT_FOUND")
    def get(self, ocid):
        """The record package of one ocid: its releases and the compiled release."""
        releases = feed.record_releases(ocid)
        if releases is None:
            abort(404, description=f"There is no contracting process with the ocid {ocid!r}.")
        package = feed.package_metadata(request.url, _policy_url())
        package["records"] = [feed.record(ocid, releases)]
        return jsonify(package)


def bulk_releases():
    """Every release, one JSON object a line, gzipped (streamed). A plain route, left out of
    the OpenAPI document: its answer is a file, not JSON."""
    app = current_app._get_current_object()

    def generate():
        # Each batch is read in an app context (and database session) of its own, pushed
        # and popped between two yields, rather than the request's kept alive across them:
        # the stream needs nothing of the request, and so is read correctly whichever
        # thread iterates or closes it. (The keyset needs no snapshot across batches.)
        chunks = feed.bulk_gzip_chunks()
        try:
            while True:
                with app.app_context():
                    chunk = next(chunks, None)
                if chunk is None:
                    return
                yield chunk
        finally:
            chunks.close()

    return Response(
        generate(),
        mimetype="application/gzip",
        headers={"Content-Disposition": 'attachment; filename="releases.jsonl.gz"'},
    )


# Flask's own add_url_rule: flask-smorest's would put it in the OpenAPI document.
flask.Blueprint.add_url_rule(
    public_blp, "/ocds/bulk/releases.jsonl.gz", endpoint="OcdsBulk", view_func=bulk_releases
)
