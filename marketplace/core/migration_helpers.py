"""Helpers for Alembic revisions that must change a table in place on SQLite.

Alembic's batch mode changes a SQLite table by copying it and dropping the old one. With foreign
keys on (they are, and the pragma cannot change inside a migration's transaction) dropping a
table deletes the rows of every table that refers to it with ON DELETE CASCADE: rebuilding
``invoices`` would delete every invoice line. So a CHECK constraint's list of values (and a
column's declared length, which SQLite does not enforce) is changed by editing the table's stored
definition, as SQLite's documentation describes for such changes; PostgreSQL alters the table.
"""

from __future__ import annotations

from alembic import op


def edit_sqlite_table_sql(table: str, replacements: list[tuple[str, str]]) -> None:
    """Replace text in a SQLite table's stored CREATE TABLE statement; each ``old`` must be
    there. Only for changes no stored row needs rewriting for (widening a list of values)."""
    bind = op.get_bind()
    sql = bind.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
    ).scalar_one()
    for old, new in replacements:
        if old not in sql:
            raise RuntimeError(f"{table} has no {old!r} to change: {sql}")
        sql = sql.replace(old, new)
    version = bind.exec_driver_sql("PRAGMA schema_version").scalar_one()
    bind.exec_driver_sql("PRAGMA writable_schema=ON")
    bind.exec_driver_sql(
        "UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = ?", (sql, table)
    )
    bind.exec_driver_sql(f"PRAGMA schema_version={int(version) + 1}")
    bind.exec_driver_sql("PRAGMA writable_schema=OFF")


def replace_check(
    table: str,
    name: str,
    old: str,
    new: str,
    *,
    sqlite_extra: list[tuple[str, str]] | None = None,
) -> None:
    """Change the CHECK constraint ``name`` on ``table`` from ``old`` to ``new`` (its SQL).
    ``sqlite_extra`` are further edits of the SQLite table definition (a column's length)."""
    if op.get_bind().dialect.name == "sqlite":
        edit_sqlite_table_sql(table, [(f"CHECK ({old})", f"CHECK ({new})"), *(sqlite_extra or [])])
    else:
        op.drop_constraint(name, table, type_="check")
        op.create_check_constraint(name, table, new)
