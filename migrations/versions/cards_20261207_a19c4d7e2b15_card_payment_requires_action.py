"""card payments may wait for the buyer's authentication (3-D Secure) in the page

Revision ID: a19c4d7e2b15
Revises: 7d4c2b9e1a53
Create Date: 2026-12-07 15:00:00

"""
from alembic import op
import sqlalchemy as sa

from marketplace.core.migration_helpers import replace_check

# revision identifiers, used by Alembic.
revision = "a19c4d7e2b15"
down_revision = "7d4c2b9e1a53"
branch_labels = None
depends_on = None

CHECK = "ck_card_payments_card_payment_status"  # already the full name: op.f() only at run time
OLD = "status IN ('processing', 'succeeded', 'failed')"
NEW = "status IN ('processing', 'requires_action', 'succeeded', 'failed')"


def upgrade():
    # Widening the list of values (and the column, as enum_type sizes it): no row changes.
    replace_check(
        "card_payments", op.f(CHECK), OLD, NEW,
        sqlite_extra=[("status VARCHAR(18)", "status VARCHAR(23)")],
    )
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column("card_payments", "status", existing_type=sa.VARCHAR(length=18),
                        type_=sa.String(length=23), existing_nullable=False)


def downgrade():
    # A payment still waiting for authentication has failed as far as the older code knows.
    op.execute(
        "UPDATE card_payments SET status = 'failed', failure_message = 'Not authenticated', "
        "failed_at = created_at WHERE status = 'requires_action'"
    )
    replace_check(
        "card_payments", op.f(CHECK), NEW, OLD,
        sqlite_extra=[("status VARCHAR(23)", "status VARCHAR(18)")],
    )
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column("card_payments", "status", existing_type=sa.String(length=23),
                        type_=sa.VARCHAR(length=18), existing_nullable=False)
