"""approval limits, and call-offs' budget parts by financial year

An approver may approve call-offs (their organisation's share of the value) up to their
approval limit; None is no limit, so every existing approver keeps approving as before.

call_off_budget_parts: each funder's share of a call-off by financial year, each committed
against that year's budget. Every existing funder gets one part, for its budget's year, holding
its share and what it still commits (call-offs were committed to the year they start in).

Revision ID: a7c3e9d2f104
Revises: 5073e722067a
Create Date: 2026-12-07 15:00:00

"""

import sqlalchemy as sa
from alembic import op

import marketplace.core.db
from marketplace.core.migration_helpers import edit_sqlite_table_sql

# revision identifiers, used by Alembic.
revision = "a7c3e9d2f104"
down_revision = "5073e722067a"
branch_labels = None
depends_on = None


CHECK = "approval_limit_pence IS NULL OR approval_limit_pence >= 0"


def upgrade():
    op.create_table(
        "call_off_budget_parts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("funder_id", sa.Integer(), nullable=False),
        sa.Column("budget_id", sa.Integer(), nullable=False),
        sa.Column("financial_year", sa.Integer(), nullable=False),
        sa.Column("share_pence", sa.BigInteger(), nullable=False),
        sa.Column("committed_pence", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "share_pence >= 0 AND committed_pence >= 0 AND committed_pence <= share_pence",
            name=op.f("ck_call_off_budget_parts_amounts_in_range"),
        ),
        sa.ForeignKeyConstraint(
            ["budget_id"], ["budgets.id"], name=op.f("fk_call_off_budget_parts_budget_id_budgets")
        ),
        sa.ForeignKeyConstraint(
            ["funder_id"],
            ["call_off_funders.id"],
            name=op.f("fk_call_off_budget_parts_funder_id_call_off_funders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_off_budget_parts")),
        sa.UniqueConstraint("funder_id", "financial_year", name="uq_call_off_budget_parts_year"),
    )
    with op.batch_alter_table("call_off_budget_parts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_call_off_budget_parts_budget_id"), ["budget_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_call_off_budget_parts_funder_id"), ["funder_id"], unique=False
        )
    # Plain ADD COLUMN (no batch rebuild: see the approval limit above); on SQLite in SQL, as
    # Alembic will not add a column with a foreign key there.
    sqlite = op.get_bind().dialect.name == "sqlite"
    for column in ("approval_requested_at", "approved_at"):
        op.add_column(
            "call_off_variations",
            sa.Column(column, marketplace.core.db.UTCDateTime(timezone=True)),
        )
    for column in ("approval_requested_by_id", "approved_by_id"):
        name = f"fk_call_off_variations_{column}_users"
        op.add_column("call_off_variations", sa.Column(column, sa.Integer()))
        if sqlite:
            # A table constraint written into the stored definition, as the table would have
            # been created with it (see marketplace.core.migration_helpers).
            anchor = "CONSTRAINT pk_call_off_variations PRIMARY KEY (id)"
            edit_sqlite_table_sql(
                "call_off_variations",
                [
                    (
                        anchor,
                        f"{anchor}, CONSTRAINT {name} FOREIGN KEY({column}) "
                        "REFERENCES users (id) ON DELETE SET NULL",
                    )
                ],
            )
        else:
            op.create_foreign_key(
                op.f(name), "call_off_variations", "users", [column], ["id"], ondelete="SET NULL"
            )
    op.execute(
        "INSERT INTO call_off_budget_parts "
        "(funder_id, budget_id, financial_year, share_pence, committed_pence) "
        "SELECT f.id, f.budget_id, b.financial_year, f.share_pence, f.committed_pence "
        "FROM call_off_funders f JOIN budgets b ON b.id = f.budget_id"
    )
    if op.get_bind().dialect.name == "sqlite":
        # A column CHECK in ALTER TABLE ADD COLUMN, not batch mode: rebuilding memberships would
        # drop its cache triggers (and cascade deletes): see marketplace.core.migration_helpers.
        op.execute(
            "ALTER TABLE memberships ADD COLUMN approval_limit_pence BIGINT "
            f"CONSTRAINT ck_memberships_approval_limit_not_negative CHECK ({CHECK})"
        )
    else:
        op.add_column("memberships", sa.Column("approval_limit_pence", sa.BigInteger()))
        op.create_check_constraint(
            op.f("ck_memberships_approval_limit_not_negative"), "memberships", CHECK
        )


def downgrade():
    columns = ("approved_by_id", "approved_at", "approval_requested_by_id", "approval_requested_at")
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("call_off_variations", schema=None) as batch_op:
            for column in columns:
                batch_op.drop_column(column)
    else:
        for column in columns:
            op.drop_column("call_off_variations", column)  # with its foreign key
    op.drop_table("call_off_budget_parts")
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint(
            op.f("ck_memberships_approval_limit_not_negative"), "memberships", type_="check"
        )
    op.drop_column("memberships", "approval_limit_pence")
