"""The audit trail: one append-only ``AuditEvent`` per change, written in the change's transaction."""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum
from typing import Any

import sqlalchemy as sa
from flask import g, has_request_context, request
from sqlalchemy import event
from sqlalchemy.orm import Mapped, Session, mapped_column

from marketplace.core.clock import utcnow
from marketplace.core.db import UTCDateTime, db

ACTION_MAX = 80
OBJECT_TYPE_MAX = 60


class AuditEvent(db.Model):
    __tablename__ = "audit_events"
    # One index for an object's history (by type and key; its first column also lists the
    # types), not one per column: every change in the app writes a row here, and each index
    # is one more insert.
    __table_args__ = (sa.Index("ix_audit_events_object", "object_type", "object_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    organisation_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("organisations.id", ondelete="SET NULL"), index=True
    )
    action: Mapped[str] = mapped_column(sa.String(ACTION_MAX))
    object_type: Mapped[str] = mapped_column(sa.String(OBJECT_TYPE_MAX))
    object_id: Mapped[str | None] = mapped_column(sa.String(64))
    before: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    request_id: Mapped[str | None] = mapped_column(sa.String(64))
    ip_address: Mapped[str | None] = mapped_column(sa.String(64))
    # Until this moment the event is hidden from every reader but its own organisation: even
    # that it happened is a secret (a sealed bid: who is bidding and how many, before the bid
    # deadline). Set once when the event is written, like every other column.
    sealed_until: Mapped[datetime | None] = mapped_column(UTCDateTime())

    actor = db.relationship("User", foreign_keys=[actor_id], lazy="joined")
    organisation = db.relationship("Organisation", foreign_keys=[organisation_id], lazy="joined")


class AuditRowImmutable(RuntimeError):
    """Raised when code tries to change or delete an audit row."""


@event.listens_for(Session, "before_flush")
def _refuse_audit_changes(session: Session, flush_context: Any, instances: Any) -> None:
    for obj in list(session.dirty) + list(session.deleted):
        if isinstance(obj, AuditEvent):
            raise AuditRowImmutable("audit events are append-only")


def unsealed(now: datetime | None = None, *, organisation_id: int | None = None) -> Any:
    """The condition every reader of audit events puts on them: not sealed (or no longer), or
    recorded with ``organisation_id`` (its own events, which a bidder may always see)."""
    visible = sa.or_(
        AuditEvent.sealed_until.is_(None), AuditEvent.sealed_until <= (now or utcnow())
    )
    if organisation_id is not None:
        visible = sa.or_(visible, AuditEvent.organisation_id == organisation_id)
    return visible


# Values stored in JSON as they are (an enum member is a str or int too, so its exact type is
# what tells them apart).
_PLAIN = frozenset({str, int, bool, float, type(None)})


def _jsonable(value: Any) -> Any:
    if type(value) in _PLAIN:
        return value
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        # A snapshot is mostly plain values: they are taken as they are, without a call each.
        return {str(k): v if type(v) in _PLAIN else _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [v if type(v) in _PLAIN else _jsonable(v) for v in value]
    return value


def snapshot(obj: Any, fields: list[str]) -> dict[str, Any]:
    """The named attributes of ``obj`` as JSON-safe values, for before/after."""
    return {name: _jsonable(getattr(obj, name)) for name in fields}


def record(
    actor: Any,
    action: str,
    obj: Any = None,
    *,
    object_type: str | None = None,
    object_id: Any = None,
    organisation: Any = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    sealed_until: datetime | None = None,
) -> AuditEvent:
    """Add an audit event to the current unit of work (flushed with the change it records);
    with ``sealed_until``, readers other than its organisation see it only from then on."""
    if obj is not None:
        object_type = object_type or getattr(obj, "audit_type", type(obj).__name__)
        if object_id is None:
            object_id = getattr(obj, "id", None)
        if object_id is None:  # a new object: the flush gives it its key
            db.session.flush()
            object_id = getattr(obj, "id", None)
    if organisation is None and obj is not None:
        organisation = getattr(obj, "audit_organisation", None)
    event_row = AuditEvent(
        **event_values(
            actor,
            action,
            object_type=object_type,
            object_id=object_id,
            organisation=organisation,
            before=before,
            after=after,
            sealed_until=sealed_until,
        ),
    )
    db.session.add(event_row)
    return event_row


def event_values(
    actor: Any,
    action: str,
    *,
    object_type: str | None,
    object_id: Any,
    organisation: Any,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    sealed_until: datetime | None = None,
) -> dict[str, Any]:
    """The column values of one audit event (all but its time and key): ``record`` adds one to
    the session; a bulk write (the rate card import) inserts many rows of them at once."""
    return {
        "actor_id": getattr(actor, "id", None),
        "organisation_id": getattr(organisation, "id", organisation),
        "action": action[:ACTION_MAX],
        "object_type": (object_type or "system")[:OBJECT_TYPE_MAX],
        "object_id": None if object_id is None else str(object_id),
        "before": _jsonable(before) if before is not None else None,
        "after": _jsonable(after) if after is not None else None,
        "request_id": g.get("request_id") if has_request_context() else None,
        "ip_address": request.remote_addr if has_request_context() else None,
        "sealed_until": sealed_until,
    }
