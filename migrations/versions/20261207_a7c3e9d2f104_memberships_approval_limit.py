"""memberships: an approver's approval limit

An approver may approve call-offs (their organisation's share of the value) up to their
approval limit; None is no limit, so every existing approver keeps approving as before.

Revision ID: a7c3e9d2f104
Revises: 7d4c2b9e1a53
Create Date: 2026-12-07 15:00:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "a7c3e9d2f104"
down_revision = "7d4c2b9e1a53"
branch_labels = None
depends_on = None


CHECK = "approval_limit_pence IS NULL OR approval_limit_pence >= 0"


def upgrade():
    if op.get_bind().dialect.name == "sqlite":
        # A column CHECK in ALTER TABLE ADD COLUMN, not batch mode: rebuilding memberships would
        # drop its cache triggers (and cascade deletes): see marketplace.migration_helpers.
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
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint(
            op.f("ck_memberships_approval_limit_not_negative"), "memberships", type_="check"
        )
    op.drop_column("memberships", "approval_limit_pence")
