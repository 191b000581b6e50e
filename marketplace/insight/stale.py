"""The database triggers that mark a call-off's spend stale, on every write path.

Spend entries are derived from several tables; rather than each writer remembering to refresh
them, a trigger on each source table records the call-off it touches in
``spend_stale_call_offs`` (insert-or-ignore, so repeated writes cost one row). The ledger is
brought up to date from that table before it is read (``services.ledger.catch_up``). Triggers
fire for the ORM's flush, Core bulk statements, raw SQL and COPY alike.

``TRIGGERS`` is the plan; ``create_statements`` and ``drop_statements`` write its DDL for
SQLite or PostgreSQL. A migration writes out the statements as they were when it was made.
``tests/insight/test_stale_triggers.py`` checks the database has every trigger of the plan.
"""

from __future__ import annotations

from dataclasses import dataclass

PREFIX = "spend_stale_"


@dataclass(frozen=True)
class StaleTrigger:
    table: str
    event: str  # INSERT, UPDATE or DELETE
    columns: tuple[str, ...] | None  # UPDATE OF these (None: any update)
    # The call-offs touched, as a SELECT over NEW or OLD (``{row}``) yielding call-off ids.
    call_offs: str

    @property
    def name(self) -> str:
        return f"{PREFIX}{self.table}_{self.event.lower()}"


_CALL_OFF_COLUMNS = (
    "status",
    "gross_pence",
    "provider_id",
    "lead_buyer_id",
    "category_id",
    "placed_at",
    "cancelled_at",
    "declined_at",
    "expired_at",
    "delivered_units",
)
_INVOICE_COLUMNS = ("status", "gross_pence", "issued_at", "paid_on", "call_off_id")
_CREDIT_NOTE_COLUMNS = ("gross_pence", "created_at", "invoice_id")

TRIGGERS: tuple[StaleTrigger, ...] = (
    StaleTrigger("call_offs", "INSERT", None, "SELECT {row}.id"),
    StaleTrigger("call_offs", "UPDATE", _CALL_OFF_COLUMNS, "SELECT {row}.id"),
    StaleTrigger("call_off_funders", "INSERT", None, "SELECT {row}.call_off_id"),
    StaleTrigger("call_off_funders", "UPDATE", None, "SELECT {row}.call_off_id"),
    StaleTrigger("call_off_funders", "DELETE", None, "SELECT {row}.call_off_id"),
    StaleTrigger("invoices", "INSERT", None, "SELECT {row}.call_off_id"),
    StaleTrigger("invoices", "UPDATE", _INVOICE_COLUMNS, "SELECT {row}.call_off_id"),
    StaleTrigger("invoices", "DELETE", None, "SELECT {row}.call_off_id"),
    StaleTrigger(
        "credit_notes",
        "INSERT",
        None,
        "SELECT call_off_id FROM invoices WHERE invoices.id = {row}.invoice_id",
    ),
    StaleTrigger(
        "credit_notes",
        "UPDATE",
        _CREDIT_NOTE_COLUMNS,
        "SELECT call_off_id FROM invoices WHERE invoices.id = {row}.invoice_id",
    ),
    StaleTrigger(
        "organisation_classifications",
        "INSERT",
        None,
        "SELECT id FROM call_offs WHERE call_offs.provider_id = {row}.organisation_id",
    ),
    StaleTrigger(
        "organisation_classifications",
        "DELETE",
        None,
        "SELECT id FROM call_offs WHERE call_offs.provider_id = {row}.organisation_id",
    ),
    StaleTrigger(
        "organisations",
        "UPDATE",
        ("region_id", "pcc_area_id"),
        "SELECT call_off_id FROM call_off_funders"
        " WHERE call_off_funders.organisation_id = {row}.id",
    ),
)


def _row(trigger: StaleTrigger) -> str:
    return "OLD" if trigger.event == "DELETE" else "NEW"


def create_statements(dialect: str) -> list[str]:
    statements = []
    for trigger in TRIGGERS:
        select = trigger.call_offs.format(row=_row(trigger))
        event = trigger.event
        if trigger.columns:
            event += " OF " + ", ".join(trigger.columns)
        if dialect == "postgresql":
            statements.append(
                f"CREATE FUNCTION {trigger.name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                f"INSERT INTO spend_stale_call_offs (call_off_id) {select} "
                f"ON CONFLICT DO NOTHING; RETURN NULL; END $$"
            )
            statements.append(
                f"CREATE TRIGGER {trigger.name} AFTER {event} ON {trigger.table} "
                f"FOR EACH ROW EXECUTE FUNCTION {trigger.name}()"
            )
        else:
            statements.append(
                f"CREATE TRIGGER {trigger.name} AFTER {event} ON {trigger.table} BEGIN "
                f"INSERT OR IGNORE INTO spend_stale_call_offs (call_off_id) {select}; END"
            )
    return statements


def drop_statements(dialect: str) -> list[str]:
    statements = []
    for trigger in TRIGGERS:
        if dialect == "postgresql":
            statements.append(f"DROP TRIGGER IF EXISTS {trigger.name} ON {trigger.table}")
            statements.append(f"DROP FUNCTION IF EXISTS {trigger.name}()")
        else:
            statements.append(f"DROP TRIGGER IF EXISTS {trigger.name}")
    return statements
