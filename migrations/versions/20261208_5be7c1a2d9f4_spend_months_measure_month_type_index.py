"""spend months: an index for paid spend by month and provider type

Revision ID: 5be7c1a2d9f4
Revises: 73bef248953f
Create Date: 2026-12-08 00:30:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '5be7c1a2d9f4'
down_revision = '73bef248953f'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('spend_months', schema=None) as batch_op:
        batch_op.create_index(
            'ix_spend_months_measure_month_type',
            ['measure', 'month', 'provider_vcse', 'provider_sme'],
            unique=False,
            postgresql_include=['amount_pence'],
        )


def downgrade():
    with op.batch_alter_table('spend_months', schema=None) as batch_op:
        batch_op.drop_index('ix_spend_months_measure_month_type')
