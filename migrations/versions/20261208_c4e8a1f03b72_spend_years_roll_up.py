"""spend years and half-years: the spend ledger summed by financial year, and by half-year
and provider type (coarser roll-ups of spend_months)

Revision ID: c4e8a1f03b72
Revises: 5be7c1a2d9f4
Create Date: 2026-12-08 01:30:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c4e8a1f03b72'
down_revision = '5be7c1a2d9f4'
branch_labels = None
depends_on = None

KEY = (
    'financial_year, measure, funder_id, category_id, region_id, pcc_area_id, '
    'provider_vcse, provider_sme'
)


def upgrade():
    op.create_table('spend_years',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('financial_year', sa.Integer(), nullable=False),
    sa.Column('measure', sa.Enum('committed', 'invoiced', 'paid', name='spend_measure', native_enum=False, create_constraint=True, length=17), nullable=False),
    sa.Column('funder_id', sa.Integer(), nullable=False),
    sa.Column('category_id', sa.Integer(), nullable=False),
    sa.Column('region_id', sa.Integer(), nullable=True),
    sa.Column('pcc_area_id', sa.Integer(), nullable=True),
    sa.Column('provider_vcse', sa.Boolean(), nullable=False),
    sa.Column('provider_sme', sa.Boolean(), nullable=False),
    sa.Column('amount_pence', sa.BigInteger(), nullable=False),
    sa.Column('entries', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['category_id'], ['service_categories.id'], name=op.f('fk_spend_years_category_id_service_categories')),
    sa.ForeignKeyConstraint(['funder_id'], ['organisations.id'], name=op.f('fk_spend_years_funder_id_organisations')),
    sa.ForeignKeyConstraint(['pcc_area_id'], ['pcc_areas.id'], name=op.f('fk_spend_years_pcc_area_id_pcc_areas')),
    sa.ForeignKeyConstraint(['region_id'], ['probation_regions.id'], name=op.f('fk_spend_years_region_id_probation_regions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_spend_years'))
    )
    with op.batch_alter_table('spend_years', schema=None) as batch_op:
        batch_op.create_index('ix_spend_years_funder', ['funder_id', 'financial_year'], unique=False)
        batch_op.create_index('ix_spend_years_key', ['financial_year', 'measure', 'funder_id', 'category_id', 'provider_vcse', 'provider_sme', 'region_id', 'pcc_area_id'], unique=False)
    # The monthly roll-up already holds the entries' sums: the yearly one is their sum by year
    # (a monthly row is never empty of entries, so neither is a yearly one).
    op.execute(
        f'INSERT INTO spend_years ({KEY}, amount_pence, entries) '
        f'SELECT {KEY}, sum(amount_pence), sum(entries) FROM spend_months GROUP BY {KEY}'
    )


    op.create_table('spend_half_years',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('financial_year', sa.Integer(), nullable=False),
    sa.Column('half', sa.SmallInteger(), nullable=False),
    sa.Column('measure', sa.Enum('committed', 'invoiced', 'paid', name='spend_measure', native_enum=False, create_constraint=True, length=17), nullable=False),
    sa.Column('funder_id', sa.Integer(), nullable=False),
    sa.Column('provider_vcse', sa.Boolean(), nullable=False),
    sa.Column('provider_sme', sa.Boolean(), nullable=False),
    sa.Column('amount_pence', sa.BigInteger(), nullable=False),
    sa.Column('entries', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['funder_id'], ['organisations.id'], name=op.f('fk_spend_half_years_funder_id_organisations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_spend_half_years'))
    )
    with op.batch_alter_table('spend_half_years', schema=None) as batch_op:
        batch_op.create_index('ix_spend_half_years_funder', ['funder_id', 'financial_year'], unique=False)
        batch_op.create_index('ix_spend_half_years_key', ['measure', 'financial_year', 'half', 'funder_id', 'provider_vcse', 'provider_sme'], unique=False)
    if op.get_bind().dialect.name == 'postgresql':
        month = 'EXTRACT(MONTH FROM month)'
    else:
        month = "CAST(strftime('%m', month) AS INTEGER)"
    half = f'CASE WHEN {month} BETWEEN 4 AND 9 THEN 1 ELSE 2 END'
    half_key = 'financial_year, measure, funder_id, provider_vcse, provider_sme'
    op.execute(
        f'INSERT INTO spend_half_years ({half_key}, half, amount_pence, entries) '
        f'SELECT {half_key}, {half}, sum(amount_pence), sum(entries) FROM spend_months '
        f'GROUP BY {half_key}, {half}'
    )


def downgrade():
    with op.batch_alter_table('spend_half_years', schema=None) as batch_op:
        batch_op.drop_index('ix_spend_half_years_key')
        batch_op.drop_index('ix_spend_half_years_funder')
    op.drop_table('spend_half_years')
    with op.batch_alter_table('spend_years', schema=None) as batch_op:
        batch_op.drop_index('ix_spend_years_key')
        batch_op.drop_index('ix_spend_years_funder')
    op.drop_table('spend_years')
