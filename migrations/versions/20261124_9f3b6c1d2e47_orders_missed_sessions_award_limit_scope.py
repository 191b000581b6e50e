"""missed sessions chargeable, payable deliveries, the anti-splitting scope of an arrangement

- listings.missed_sessions_chargeable: whether a session the person does not attend is paid for;
- call_off_deliveries.payable: whether a recorded session's units are billed (a missed session
  only where its listing charged for missed sessions); every delivery already recorded was billed
  as payable, so existing rows are payable;
- arrangements.award_limit_scope: which of a buyer's call-offs count together towards the
  direct-award limit (the same provider in the same lot by default; the same listing if the
  arrangement narrows it);
- call_offs: the index for that count (buyer, provider, lot, date) replaces the per-listing one.

Columns are added in place, never by rebuilding a table on SQLite: dropping the old table would
delete the rows that refer to it through ON DELETE CASCADE (see marketplace.core.migration_helpers).

Revision ID: 9f3b6c1d2e47
Revises: 4d2251b6af24
Create Date: 2026-11-24 09:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '9f3b6c1d2e47'
down_revision = '4d2251b6af24'
branch_labels = None
depends_on = None

PAYABLE_CHECK = "attendance = 'did_not_attend' OR payable"
SCOPE_CHECK = "award_limit_scope IN ('provider_and_lot', 'listing')"


def _sqlite() -> bool:
    return op.get_bind().dialect.name == 'sqlite'


def upgrade():
    op.add_column(
        'listings',
        sa.Column('missed_sessions_chargeable', sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    if _sqlite():
        op.get_bind().exec_driver_sql(
            'ALTER TABLE call_off_deliveries ADD COLUMN payable BOOLEAN DEFAULT 1 NOT NULL '
            f'CONSTRAINT ck_call_off_deliveries_attended_is_payable CHECK ({PAYABLE_CHECK})'
        )
        op.get_bind().exec_driver_sql(
            "ALTER TABLE arrangements ADD COLUMN award_limit_scope VARCHAR(24) "
            "DEFAULT 'provider_and_lot' NOT NULL "
            f"CONSTRAINT ck_arrangements_award_limit_scope CHECK ({SCOPE_CHECK})"
        )
    else:
        op.add_column(
            'call_off_deliveries',
            sa.Column('payable', sa.Boolean(), server_default=sa.true(), nullable=False),
        )
        op.create_check_constraint(
            op.f('ck_call_off_deliveries_attended_is_payable'), 'call_off_deliveries', PAYABLE_CHECK
        )
        op.add_column(
            'arrangements',
            sa.Column(
                'award_limit_scope',
                sa.String(length=24),
                server_default='provider_and_lot',
                nullable=False,
            ),
        )
        op.create_check_constraint(
            op.f('ck_arrangements_award_limit_scope'), 'arrangements', SCOPE_CHECK
        )
    op.create_index(
        'ix_call_offs_buyer_provider_lot',
        'call_offs',
        ['lead_buyer_id', 'provider_id', 'category_id', 'placed_at'],
        unique=False,
    )
    op.drop_index('ix_call_offs_buyer_listing', table_name='call_offs')


def downgrade():
    op.create_index(
        'ix_call_offs_buyer_listing',
        'call_offs',
        ['lead_buyer_id', 'listing_id', 'placed_at'],
        unique=False,
    )
    op.drop_index('ix_call_offs_buyer_provider_lot', table_name='call_offs')
    if _sqlite():
        # SQLite 3.35+ drops a column (and the CHECK constraint written on it) in place.
        op.get_bind().exec_driver_sql('ALTER TABLE arrangements DROP COLUMN award_limit_scope')
        op.get_bind().exec_driver_sql('ALTER TABLE call_off_deliveries DROP COLUMN payable')
        op.get_bind().exec_driver_sql('ALTER TABLE listings DROP COLUMN missed_sessions_chargeable')
    else:
        op.drop_constraint(op.f('ck_arrangements_award_limit_scope'), 'arrangements', type_='check')
        op.drop_column('arrangements', 'award_limit_scope')
        op.drop_constraint(
            op.f('ck_call_off_deliveries_attended_is_payable'), 'call_off_deliveries', type_='check'
        )
        op.drop_column('call_off_deliveries', 'payable')
        op.drop_column('listings', 'missed_sessions_chargeable')
