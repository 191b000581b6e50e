"""call-offs: a co-funder declines its share; the call-off waits for the lead buyer

Revision ID: a19d3c0f5e21
Revises: a19c4d7e2b15
Create Date: 2026-12-07 15:00:00.000000

A call-off gains the state ``funding_declined`` (a co-funder declined its share; the lead buyer
re-splits the shares or cancels), and a funder's share records who declined it, when and why.
"""
import sqlalchemy as sa
from alembic import op

import marketplace.core.db
from marketplace.core.migration_helpers import replace_check

# revision identifiers, used by Alembic.
revision = 'a19d3c0f5e21'
down_revision = 'a19c4d7e2b15'
branch_labels = None
depends_on = None

_OLD = (
    "status IN ('draft', 'awaiting_funding', 'awaiting_approval', 'sent', 'accepted', "
    "'declined', 'expired', 'in_delivery', 'completed', 'cancelled')"
)
_NEW = (
    "status IN ('draft', 'awaiting_funding', 'funding_declined', 'awaiting_approval', 'sent', "
    "'accepted', 'declined', 'expired', 'in_delivery', 'completed', 'cancelled')"
)
_DECLINED = (
    "declined_at IS NULL OR (decline_reason IS NOT NULL AND confirmed_at IS NULL "
    "AND committed_pence = 0)"
)


def upgrade():
    # In place, never by rebuilding call_offs on SQLite: dropping the old table would delete its
    # funders, deliveries and the rest through ON DELETE CASCADE (see migration_helpers).
    replace_check('call_offs', op.f('ck_call_offs_call_off_status'), _OLD, _NEW)
    # Nothing refers to call_off_funders, so SQLite may rebuild it.
    with op.batch_alter_table('call_off_funders', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('declined_at', marketplace.core.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column('declined_by_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('decline_reason', sa.String(length=1000), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f('fk_call_off_funders_declined_by_id_users'),
            'users',
            ['declined_by_id'],
            ['id'],
            ondelete='SET NULL',
        )
        batch_op.create_check_constraint(
            batch_op.f('ck_call_off_funders_declined_has_reason'), _DECLINED
        )


def downgrade():
    # Shares declined and never re-split go back to waiting for a confirmation; call-offs that
    # wait for their lead buyer go back to waiting for funding.
    op.execute(
        "UPDATE call_offs SET status = 'awaiting_funding' WHERE status = 'funding_declined'"
    )
    with op.batch_alter_table('call_off_funders', schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f('ck_call_off_funders_declined_has_reason'), type_='check'
        )
        batch_op.drop_constraint(
            batch_op.f('fk_call_off_funders_declined_by_id_users'), type_='foreignkey'
        )
        batch_op.drop_column('decline_reason')
        batch_op.drop_column('declined_by_id')
        batch_op.drop_column('declined_at')
    replace_check('call_offs', op.f('ck_call_offs_call_off_status'), _NEW, _OLD)
