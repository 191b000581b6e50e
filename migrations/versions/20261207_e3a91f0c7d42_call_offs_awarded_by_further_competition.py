"""call-offs: awarded by further competition (no listing, a service title, no direct-award reason)

- call_offs.listing_id and call_offs.choice_reason become nullable: a call-off awarded by further
  competition need not match a rate-card listing, and has no direct-award reason; a CHECK keeps
  both required for a direct award from the rate card.
- call_offs.service_title: what the call-off buys, in words, filled for existing rows from their
  listings' titles.
- call_offs.missed_sessions_chargeable: agreed at award for a call-off without a listing.
- call_offs.competition_id: the competition that awarded it (a plain integer here; the foreign
  key to competitions.id is added with the competitions tables).

On SQLite the table is changed in place (its stored definition edited, as
``marketplace.core.migration_helpers`` explains): rebuilding call_offs would delete every row that
refers to it with ON DELETE CASCADE (funders, deliveries, variations).

Revision ID: e3a91f0c7d42
Revises: e506b3d55056
Create Date: 2026-12-07 20:50:00.000000

"""
from alembic import op
import sqlalchemy as sa

from marketplace.core.migration_helpers import edit_sqlite_table_sql


# revision identifiers, used by Alembic.
revision = 'e3a91f0c7d42'
down_revision = 'e506b3d55056'
branch_labels = None
depends_on = None


CHECK_NAME = "ck_call_offs_direct_award_has_reason_and_listing"
CHECK_SQL = (
    "award_route <> 'direct_rate_card' OR "
    "(choice_reason IS NOT NULL AND listing_id IS NOT NULL)"
)
FK_SQL = "CONSTRAINT fk_call_offs_listing_id_listings FOREIGN KEY"


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def upgrade():
    op.add_column(
        "call_offs",
        sa.Column("service_title", sa.String(length=120), nullable=False, server_default=""),
    )
    op.add_column(
        "call_offs",
        sa.Column(
            "missed_sessions_chargeable", sa.Boolean(), nullable=False, server_default=sa.false()
        ),
    )
    op.add_column("call_offs", sa.Column("competition_id", sa.Integer(), nullable=True))
    op.create_index(op.f("ix_call_offs_competition_id"), "call_offs", ["competition_id"])
    op.execute(
        "UPDATE call_offs SET service_title = "
        "(SELECT listings.title FROM listings WHERE listings.id = call_offs.listing_id)"
    )
    if _sqlite():
        edit_sqlite_table_sql(
            "call_offs",
            [
                ("listing_id INTEGER NOT NULL", "listing_id INTEGER"),
                ("choice_reason VARCHAR(34) NOT NULL", "choice_reason VARCHAR(34)"),
                (FK_SQL, f"CONSTRAINT {CHECK_NAME} CHECK ({CHECK_SQL}), \n\t{FK_SQL}"),
            ],
        )
    else:
        op.alter_column("call_offs", "service_title", server_default=None)
        op.alter_column("call_offs", "listing_id", existing_type=sa.Integer(), nullable=True)
        op.alter_column(
            "call_offs", "choice_reason", existing_type=sa.String(length=34), nullable=True
        )
        op.create_check_constraint(CHECK_NAME, "call_offs", CHECK_SQL)


def downgrade():
    # Call-offs without a listing cannot be kept by the older schema.
    op.execute("DELETE FROM call_offs WHERE listing_id IS NULL OR choice_reason IS NULL")
    if _sqlite():
        edit_sqlite_table_sql(
            "call_offs",
            [
                ("listing_id INTEGER", "listing_id INTEGER NOT NULL"),
                ("choice_reason VARCHAR(34)", "choice_reason VARCHAR(34) NOT NULL"),
                (f"CONSTRAINT {CHECK_NAME} CHECK ({CHECK_SQL}), \n\t", ""),
            ],
        )
    else:
        op.drop_constraint(CHECK_NAME, "call_offs", type_="check")
        op.alter_column(
            "call_offs", "choice_reason", existing_type=sa.String(length=34), nullable=False
        )
        op.alter_column("call_offs", "listing_id", existing_type=sa.Integer(), nullable=False)
    op.drop_index(op.f("ix_call_offs_competition_id"), table_name="call_offs")
    op.drop_column("call_offs", "competition_id")
    op.drop_column("call_offs", "missed_sessions_chargeable")
    op.drop_column("call_offs", "service_title")
