"""The feed: every release in order of date (newest last) with opaque cursors, the record of
one ocid, packages, and the bulk file streamed in keyset batches.

Order: by (date, source, object id, event, sub-id), where the source is the dynamic market (0),
further competitions (1) or call-offs (2): a total order, so a cursor (a signed position in
it) never skips or repeats a release. Releases are never withdrawn, so a cursor we issued
stays valid; one at the end gives an empty page without a ``next`` link (poll it later)."""

from __future__ import annotations

import json
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import datetime

import sqlalchemy as sa
from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer

from marketplace.competitions.models import Competition
from marketplace.core.clock import utcnow
from marketplace.core.db import UTCDateTime, db
from marketplace.insight.identifiers import dynamic_market_ocid, ocid_prefix
from marketplace.insight.ocds import call_offs, competitions, market
from marketplace.insight.ocds.common import (
    EXTENSIONS,
    LICENSE,
    OCDS_VERSION,
    compile_releases,
    timestamp,
)
from marketplace.insight.ocds.market import Event
from marketplace.orders.models import CallOff

MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100
BULK_BATCH = 1000  # call-offs per keyset batch of the bulk file
CURSOR_SALT = "ocds-releases-cursor"


class BadCursor(ValueError):
    """A cursor that this feed did not issue."""


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=CURSOR_SALT)


def encode_cursor(key: tuple) -> str:
    at, source, obj, ev, sub = key
    return _serializer().dumps([at.isoformat(), source, obj, ev, sub])


def decode_cursor(cursor: str) -> tuple:
    try:
        at, source, obj, ev, sub = _serializer().loads(cursor)
        return (datetime.fromisoformat(at), int(source), int(obj), int(ev), int(sub))
    except (BadSignature, ValueError, TypeError):
        raise BadCursor(cursor) from None


def package_metadata(uri: str, policy_url: str) -> dict:
    """The metadata every package of the feed carries."""
    return {
        "uri": uri,
        "version": OCDS_VERSION,
        "extensions": list(EXTENSIONS),
        "publishedDate": timestamp(utcnow()),
        "publisher": {"name": current_app.config["SERVICE_NAME"]},
        "license": LICENSE,
        "publicationPolicy": policy_url,
    }


def _sql_events(after: tuple | None, updated_from: datetime | None, limit: int) -> list[Event]:
    index = sa.union_all(*competitions.event_selects(), *call_offs.event_selects()).subquery("e")
    query = sa.select(index.c.at, index.c.source, index.c.obj, index.c.ev, index.c.sub)
    if after is not None:
        at, *rest = after
        query = query.where(
            sa.tuple_(index.c.at, index.c.source, index.c.obj, index.c.ev, index.c.sub)
            > sa.tuple_(sa.literal(at, UTCDateTime()), *(sa.literal(x) for x in rest))
        )
    if updated_from is not None:
        query = query.where(index.c.at >= sa.literal(updated_from, UTCDateTime()))
    query = query.order_by(index.c.at, index.c.source, index.c.obj, index.c.ev, index.c.sub).limit(
        limit
    )
    return [Event(*row) for row in db.session.execute(query)]


def releases_page(
    after: tuple | None, updated_from: datetime | None, size: int
) -> tuple[list[dict], tuple | None]:
    """One page of releases after the cursor position ``after`` (and from ``updated_from``),
    with the position of its last release if more follow (else None)."""
    wanted = size + 1
    market_events = [
        event
        for event in market.market_events()
        if (after is None or event.key > after)
        and (updated_from is None or event.at >= updated_from)
    ]
    chosen = sorted(
        market_events + _sql_events(after, updated_from, wanted), key=lambda event: event.key
    )[:wanted]
    more = len(chosen) > size
    chosen = chosen[:size]
    keys = {event.key for event in chosen}
    built: dict[tuple, dict] = {}
    by_source: dict[int, set[int]] = defaultdict(set)
    for event in chosen:
        by_source[event.source].add(event.obj)
    if by_source.get(market.SOURCE):
        pairs = market.market_releases(keep=lambda event: event.key in keys)
        built.update((e.key, r) for e, r in pairs)
    if by_source.get(competitions.SOURCE):
        batch = competitions.load_batch(by_source[competitions.SOURCE])
        built.update((e.key, r) for e, r in competitions.batch_releases(batch))
    if by_source.get(call_offs.SOURCE):
        batch = call_offs.load_batch(by_source[call_offs.SOURCE])
        built.update((e.key, r) for e, r in call_offs.batch_releases(batch))
    releases = [built[event.key] for event in chosen]
    return releases, (chosen[-1].key if more and chosen else None)


def record_releases(ocid: str) -> list[dict] | None:
    """Every release of one ocid in date order, or None if the feed has no such ocid."""
    if ocid == dynamic_market_ocid():
        found = market.market_releases()
    else:
        prefix = f"{ocid_prefix()}-"
        if not ocid.startswith(prefix):
            return None
        code = ocid[len(prefix) :]
        found = []
        competition_id = db.session.scalar(
            sa.select(Competition.id).where(Competition.reference == code, competitions.PUBLISHED)
        )
        if competition_id is not None:
            found = competitions.batch_releases(competitions.load_batch([competition_id]))
        else:
            call_off_id = db.session.scalar(
                sa.select(CallOff.id).where(CallOff.reference == code, call_offs.PUBLISHED)
            )
            if call_off_id is not None:
                found = call_offs.batch_releases(call_offs.load_batch([call_off_id]))
    if not found:
        return None
    return [item for _, item in sorted(found, key=lambda pair: pair[0].key)]


def record(ocid: str, releases: list[dict]) -> dict:
    """An OCDS record: the releases themselves and the compiled release."""
    return {"ocid": ocid, "releases": releases, "compiledRelease": compile_releases(releases)}


def iter_releases(batch_size: int | None = None) -> Iterator[list[dict]]:
    """Every release of the feed, in groups: the dynamic market's, then each batch of
    competitions', then each call-off's own (call-offs read by id, keyset, a few set-based
    queries a batch of ``batch_size``). A call-off's releases are built only when its group is
    asked for, and each batch's rows are let go before the next is read, so memory stays flat
    however many there are: what is held at once is one batch's rows, not its releases."""
    batch_size = batch_size or BULK_BATCH
    yield [item for _, item in sorted(market.market_releases(), key=lambda p: p[0].key)]
    last = 0
    while True:
        ids = db.session.scalars(
            sa.select(Competition.id)
            .where(Competition.id > last, competitions.PUBLISHED)
            .order_by(Competition.id)
            .limit(batch_size)
        ).all()
        if not ids:
            break
        last = ids[-1]
        yield [item for _, item in competitions.batch_releases(competitions.load_batch(ids))]
        db.session.expunge_all()
    last = 0
    while True:
        rows = db.session.execute(
            sa.select(*call_offs.COLUMNS)
            .where(CallOff.id > last, call_offs.PUBLISHED)
            .order_by(CallOff.id)
            .limit(batch_size)
        ).all()
        if not rows:
            break
        last = rows[-1].id
        batch = call_offs.load_batch(rows=rows)
        # Same order as ``batch_releases``: by call-off id, each call-off's in event order.
        for row in rows:
            yield [item for _, item in call_offs.releases_of(batch, row)]
        del batch, rows


_ENCODER = json.JSONEncoder(ensure_ascii=False, check_circular=False, separators=(",", ":"))


def _make_encode() -> Callable[[object], str]:
    """``_ENCODER.encode`` with the C encoder built once rather than once a release (what
    ``encode`` builds for each call, with the same arguments: the same text). No circular
    check: a release shares objects between its parts but never contains itself."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # a Python without the C accelerator
        return _ENCODER.encode
    encoder = make(
        None,  # markers: no circular check
        _ENCODER.default,
        json.encoder.encode_basestring,  # ensure_ascii=False
        None,  # indent
        _ENCODER.key_separator,
        _ENCODER.item_separator,
        _ENCODER.sort_keys,
        _ENCODER.skipkeys,
        _ENCODER.allow_nan,
    )
    join = "".join
    return lambda release: join(encoder(release, 0))


_encode = _make_encode()
# Text gathered before it is handed to the compressor: big enough that zlib and the generator
# are called rarely, small enough that the text held at once is a few megabytes at most.
BULK_TEXT_CHUNK = 1 << 20


def encode_lines(releases: list[dict]) -> str:
    """The releases as JSON Lines. (Encoding the objects a call-off's releases share once, by
    identity, was measured slower than the C encoder over each whole release.)"""
    return "".join(_encode(release) + "\n" for release in releases)


def bulk_gzip_chunks(counter: list[int] | None = None) -> Iterator[bytes]:
    """The bulk file as gzip chunks: one release of JSON per line (JSON Lines). Each release is
    encoded as soon as it is built and the text compressed about every ``BULK_TEXT_CHUNK``
    characters, so neither a batch's release objects nor its text are ever all held at once."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)  # wbits 31: a gzip member
    encode = _encode
    pending: list[str] = []
    size = 0
    count = 0
    for group in iter_releases():
        count += len(group)
        for release in group:
            line = encode(release)
            pending.append(line)
            size += len(line)
        if size >= BULK_TEXT_CHUNK:
            pending.append("")  # the newline after the last line
            chunk = compressor.compress("\n".join(pending).encode())
            pending.clear()
            size = 0
            if counter is not None:
                counter[0] = count
            if chunk:
                yield chunk
    if pending:
        pending.append("")
        chunk = compressor.compress("\n".join(pending).encode())
        if chunk:
            yield chunk
    if counter is not None:
        counter[0] = count
    yield compressor.flush()


def stream_bulk_releases(write: Callable[[bytes], object]) -> int:
    """Bench hook: stream the whole bulk file (gzipped JSON Lines, exactly what
    ``GET /api/v1/ocds/bulk/releases.jsonl.gz`` sends) to ``write`` and return the number of
    releases written. Call it inside an application context, e.g.
    ``with open(os.devnull, "wb") as sink: count = stream_bulk_releases(sink.write)``."""
    counter = [0]
    for chunk in bulk_gzip_chunks(counter):
        write(chunk)
    return counter[0]
