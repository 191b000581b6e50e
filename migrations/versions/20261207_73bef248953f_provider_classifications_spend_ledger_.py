"""provider classifications spend ledger and forward plans

Revision ID: 73bef248953f
Revises: a7d4e2c91b58
Create Date: 2026-12-07 23:40:38.485406

"""
from alembic import op
import sqlalchemy as sa

import marketplace.core.db


# revision identifiers, used by Alembic.
revision = '73bef248953f'
down_revision = 'a7d4e2c91b58'
branch_labels = None
depends_on = None


# The triggers that mark a call-off's spend stale on every write path (marketplace/insight/
# stale.py), written out as they were when this revision was made.
STALE_TRIGGERS_POSTGRESQL = [
    'CREATE FUNCTION spend_stale_call_offs_insert() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO spend_stale_call_offs (call_off_id) SELECT NEW.id ON CONFLICT DO NOTHING; RETURN NULL; END $$',
    'CREATE TRIGGER spend_stale_call_offs_insert AFTER INSERT ON call_offs FOR EACH ROW EXECUTE FUNCTION spend_stale_call_offs_insert()',
    'CREATE FUNCTION spend_stale_call_offs_update() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO spend_stale_call_offs (call_off_id) SELECT NEW.id ON CONFLICT DO NOTHING; RETURN NULL; END $$',
    'CREATE TRIGGER spend_stale_call_offs_update AFTER UPDATE OF status, gross_pence, provider_id, lead_buyer_id, category_id, placed_at, cancelled_at, declined_at, expired_at, delivered_units ON call_offs FOR EACH ROW EXECUTE FUNCTION spend_stale_call_offs_update()',
    'CREATE FUNCTION spend_stale_call_off_funders_insert() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO spend_stale_call_offs (call_off_id) SELECT NEW.call_off_id ON CONFLICT DO NOTHING; RETURN NULL; END $$',
    'CREATE TRIGGER spend_stale_call_off_funders_insert AFTER INSERT ON call_off_funders FOR EACH ROW EXECUTE FUNCTION spend_stale_call_off_funders_insert()',
    'CREATE FUNCTION spend_stale_call_off_funders_update() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO spend_stale_call_offs (call_off_id) SELECT NEW.call_off_id ON CONFLICT DO NOTHING; RETURN NULL; END $$',
    'CREATE TRIGGER spend_stale_call_off_funders_update AFTER UPDATE ON call_off_funders FOR EACH ROW EXECUTE FUNCTION spend_stale_call_off_funders_update()',
    'CREATE FUNCTION spend_stale_call_off_funders_delete() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO spend_stale_call_offs (call_off_id) SELECT OLD.call_off_id ON CONFLICT DO NOTHING; RETURN NULL; END $$',
    'CREATE TRIGGER spend_stale_call_off_funders_delete AFTER DELETE ON call_off_funders FOR EACH ROW EXECUTE FUNCTION spend_stale_call_off_funders_delete()',
    'CREATE FUNCTION spend_stale_invoices_insert() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO spend_stale_call_offs (call_off_id) SELECT NEW.call_off_id ON CONFLICT DO NOTHING; RETURN NULL; END $$',
    'CREATE TRIGGER spend_stale_invoices_insert AFTER INSERT ON invoices FOR EACH ROW EXECUTE FUNCTION spend_stale_invoices_insert()',
    'CREATE FUNCTION spend_stale_invoices_update() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO spend_stale_call_offs (call_off_id) SELECT NEW.call_off_id ON CONFLICT DO NOTHING; RETURN NULL; END $$',
    'CREATE TRIGGER spend_stale_invoices_update AFTER UPDATE OF status, gross_pence, issued_at, paid_on, call_off_id ON invoices FOR EACH ROW EXECUTE FUNCTION spend_stale_invoices_update()',
    'CREATE FUNCTION spend_stale_invoices_delete() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO spend_stale_call_offs (call_off_id) SELECT OLD.call_off_id ON CONFLICT DO NOTHING; RETURN NULL; END $$',
    'CREATE TRIGGER spend_stale_invoices_delete AFTER DELETE ON invoices FOR EACH ROW EXECUTE FUNCTION spend_stale_invoices_delete()',
    'CREATE FUNCTION spend_stale_credit_notes_insert() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO spend_stale_call_offs (call_off_id) SELECT call_off_id FROM invoices WHERE invoices.id = NEW.invoice_id ON CONFLICT DO NOTHING; RETURN NULL; END $$',
    'CREATE TRIGGER spend_stale_credit_notes_insert AFTER INSERT ON credit_notes FOR EACH ROW EXECUTE FUNCTION spend_stale_credit_notes_insert()',
    'CREATE FUNCTION spend_stale_credit_notes_update() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO spend_stale_call_offs (call_off_id) SELECT call_off_id FROM invoices WHERE invoices.id = NEW.invoice_id ON CONFLICT DO NOTHING; RETURN NULL; END $$',
    'CREATE TRIGGER spend_stale_credit_notes_update AFTER UPDATE OF gross_pence, created_at, invoice_id ON credit_notes FOR EACH ROW EXECUTE FUNCTION spend_stale_credit_notes_update()',
    'CREATE FUNCTION spend_stale_organisation_classifications_insert() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO spend_stale_call_offs (call_off_id) SELECT id FROM call_offs WHERE call_offs.provider_id = NEW.organisation_id ON CONFLICT DO NOTHING; RETURN NULL; END $$',
    'CREATE TRIGGER spend_stale_organisation_classifications_insert AFTER INSERT ON organisation_classifications FOR EACH ROW EXECUTE FUNCTION spend_stale_organisation_classifications_insert()',
    'CREATE FUNCTION spend_stale_organisation_classifications_delete() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO spend_stale_call_offs (call_off_id) SELECT id FROM call_offs WHERE call_offs.provider_id = OLD.organisation_id ON CONFLICT DO NOTHING; RETURN NULL; END $$',
    'CREATE TRIGGER spend_stale_organisation_classifications_delete AFTER DELETE ON organisation_classifications FOR EACH ROW EXECUTE FUNCTION spend_stale_organisation_classifications_delete()',
    'CREATE FUNCTION spend_stale_organisations_update() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO spend_stale_call_offs (call_off_id) SELECT call_off_id FROM call_off_funders WHERE call_off_funders.organisation_id = NEW.id ON CONFLICT DO NOTHING; RETURN NULL; END $$',
    'CREATE TRIGGER spend_stale_organisations_update AFTER UPDATE OF region_id, pcc_area_id ON organisations FOR EACH ROW EXECUTE FUNCTION spend_stale_organisations_update()',
]

STALE_TRIGGERS_SQLITE = [
    'CREATE TRIGGER spend_stale_call_offs_insert AFTER INSERT ON call_offs BEGIN INSERT OR IGNORE INTO spend_stale_call_offs (call_off_id) SELECT NEW.id; END',
    'CREATE TRIGGER spend_stale_call_offs_update AFTER UPDATE OF status, gross_pence, provider_id, lead_buyer_id, category_id, placed_at, cancelled_at, declined_at, expired_at, delivered_units ON call_offs BEGIN INSERT OR IGNORE INTO spend_stale_call_offs (call_off_id) SELECT NEW.id; END',
    'CREATE TRIGGER spend_stale_call_off_funders_insert AFTER INSERT ON call_off_funders BEGIN INSERT OR IGNORE INTO spend_stale_call_offs (call_off_id) SELECT NEW.call_off_id; END',
    'CREATE TRIGGER spend_stale_call_off_funders_update AFTER UPDATE ON call_off_funders BEGIN INSERT OR IGNORE INTO spend_stale_call_offs (call_off_id) SELECT NEW.call_off_id; END',
    'CREATE TRIGGER spend_stale_call_off_funders_delete AFTER DELETE ON call_off_funders BEGIN INSERT OR IGNORE INTO spend_stale_call_offs (call_off_id) SELECT OLD.call_off_id; END',
    'CREATE TRIGGER spend_stale_invoices_insert AFTER INSERT ON invoices BEGIN INSERT OR IGNORE INTO spend_stale_call_offs (call_off_id) SELECT NEW.call_off_id; END',
    'CREATE TRIGGER spend_stale_invoices_update AFTER UPDATE OF status, gross_pence, issued_at, paid_on, call_off_id ON invoices BEGIN INSERT OR IGNORE INTO spend_stale_call_offs (call_off_id) SELECT NEW.call_off_id; END',
    'CREATE TRIGGER spend_stale_invoices_delete AFTER DELETE ON invoices BEGIN INSERT OR IGNORE INTO spend_stale_call_offs (call_off_id) SELECT OLD.call_off_id; END',
    'CREATE TRIGGER spend_stale_credit_notes_insert AFTER INSERT ON credit_notes BEGIN INSERT OR IGNORE INTO spend_stale_call_offs (call_off_id) SELECT call_off_id FROM invoices WHERE invoices.id = NEW.invoice_id; END',
    'CREATE TRIGGER spend_stale_credit_notes_update AFTER UPDATE OF gross_pence, created_at, invoice_id ON credit_notes BEGIN INSERT OR IGNORE INTO spend_stale_call_offs (call_off_id) SELECT call_off_id FROM invoices WHERE invoices.id = NEW.invoice_id; END',
    'CREATE TRIGGER spend_stale_organisation_classifications_insert AFTER INSERT ON organisation_classifications BEGIN INSERT OR IGNORE INTO spend_stale_call_offs (call_off_id) SELECT id FROM call_offs WHERE call_offs.provider_id = NEW.organisation_id; END',
    'CREATE TRIGGER spend_stale_organisation_classifications_delete AFTER DELETE ON organisation_classifications BEGIN INSERT OR IGNORE INTO spend_stale_call_offs (call_off_id) SELECT id FROM call_offs WHERE call_offs.provider_id = OLD.organisation_id; END',
    'CREATE TRIGGER spend_stale_organisations_update AFTER UPDATE OF region_id, pcc_area_id ON organisations BEGIN INSERT OR IGNORE INTO spend_stale_call_offs (call_off_id) SELECT call_off_id FROM call_off_funders WHERE call_off_funders.organisation_id = NEW.id; END',
]

DROP_STALE_TRIGGERS_POSTGRESQL = [
    'DROP TRIGGER IF EXISTS spend_stale_call_offs_insert ON call_offs',
    'DROP FUNCTION IF EXISTS spend_stale_call_offs_insert()',
    'DROP TRIGGER IF EXISTS spend_stale_call_offs_update ON call_offs',
    'DROP FUNCTION IF EXISTS spend_stale_call_offs_update()',
    'DROP TRIGGER IF EXISTS spend_stale_call_off_funders_insert ON call_off_funders',
    'DROP FUNCTION IF EXISTS spend_stale_call_off_funders_insert()',
    'DROP TRIGGER IF EXISTS spend_stale_call_off_funders_update ON call_off_funders',
    'DROP FUNCTION IF EXISTS spend_stale_call_off_funders_update()',
    'DROP TRIGGER IF EXISTS spend_stale_call_off_funders_delete ON call_off_funders',
    'DROP FUNCTION IF EXISTS spend_stale_call_off_funders_delete()',
    'DROP TRIGGER IF EXISTS spend_stale_invoices_insert ON invoices',
    'DROP FUNCTION IF EXISTS spend_stale_invoices_insert()',
    'DROP TRIGGER IF EXISTS spend_stale_invoices_update ON invoices',
    'DROP FUNCTION IF EXISTS spend_stale_invoices_update()',
    'DROP TRIGGER IF EXISTS spend_stale_invoices_delete ON invoices',
    'DROP FUNCTION IF EXISTS spend_stale_invoices_delete()',
    'DROP TRIGGER IF EXISTS spend_stale_credit_notes_insert ON credit_notes',
    'DROP FUNCTION IF EXISTS spend_stale_credit_notes_insert()',
    'DROP TRIGGER IF EXISTS spend_stale_credit_notes_update ON credit_notes',
    'DROP FUNCTION IF EXISTS spend_stale_credit_notes_update()',
    'DROP TRIGGER IF EXISTS spend_stale_organisation_classifications_insert ON organisation_classifications',
    'DROP FUNCTION IF EXISTS spend_stale_organisation_classifications_insert()',
    'DROP TRIGGER IF EXISTS spend_stale_organisation_classifications_delete ON organisation_classifications',
    'DROP FUNCTION IF EXISTS spend_stale_organisation_classifications_delete()',
    'DROP TRIGGER IF EXISTS spend_stale_organisations_update ON organisations',
    'DROP FUNCTION IF EXISTS spend_stale_organisations_update()',
]

DROP_STALE_TRIGGERS_SQLITE = [
    'DROP TRIGGER IF EXISTS spend_stale_call_offs_insert',
    'DROP TRIGGER IF EXISTS spend_stale_call_offs_update',
    'DROP TRIGGER IF EXISTS spend_stale_call_off_funders_insert',
    'DROP TRIGGER IF EXISTS spend_stale_call_off_funders_update',
    'DROP TRIGGER IF EXISTS spend_stale_call_off_funders_delete',
    'DROP TRIGGER IF EXISTS spend_stale_invoices_insert',
    'DROP TRIGGER IF EXISTS spend_stale_invoices_update',
    'DROP TRIGGER IF EXISTS spend_stale_invoices_delete',
    'DROP TRIGGER IF EXISTS spend_stale_credit_notes_insert',
    'DROP TRIGGER IF EXISTS spend_stale_credit_notes_update',
    'DROP TRIGGER IF EXISTS spend_stale_organisation_classifications_insert',
    'DROP TRIGGER IF EXISTS spend_stale_organisation_classifications_delete',
    'DROP TRIGGER IF EXISTS spend_stale_organisations_update',
]


def _statements(postgresql, sqlite):
    return postgresql if op.get_bind().dialect.name == 'postgresql' else sqlite


def upgrade():
    # ### commands auto generated by Alembic - please adjust! ###
    op.create_table('spend_stale_call_offs',
    sa.Column('call_off_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.PrimaryKeyConstraint('call_off_id', name=op.f('pk_spend_stale_call_offs'))
    )
    op.create_table('organisation_classifications',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('effective_from', sa.Date(), nullable=False),
    sa.Column('vcse_basis', sa.Enum('registered_charity', 'cio', 'cic', 'not_for_profit', 'not_vcse', name='vcse_basis', native_enum=False, create_constraint=True, length=26), nullable=False),
    sa.Column('staff_band', sa.Enum('under_10', '10_to_49', '50_to_249', '250_or_more', name='staff_band', native_enum=False, create_constraint=True, length=19), nullable=False),
    sa.Column('turnover_band', sa.Enum('up_to_2m', '2m_to_10m', '10m_to_44m', 'over_44m', name='turnover_band', native_enum=False, create_constraint=True, length=18), nullable=False),
    sa.Column('vcse', sa.Boolean(), nullable=False),
    sa.Column('sme', sa.Boolean(), nullable=False),
    sa.Column('source', sa.Enum('registration', 'confirmation', 'correction', name='classification_source', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('reason', sa.String(length=2000), nullable=False),
    sa.Column('recorded_at', marketplace.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('recorded_by_id', sa.Integer(), nullable=True),
    sa.CheckConstraint('length(reason) <= 2000', name=op.f('ck_organisation_classifications_reason_length')),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id'], name=op.f('fk_organisation_classifications_organisation_id_organisations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['recorded_by_id'], ['users.id'], name=op.f('fk_organisation_classifications_recorded_by_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_organisation_classifications')),
    sa.UniqueConstraint('organisation_id', 'effective_from', 'id', name='uq_classifications_org_date_id')
    )
    with op.batch_alter_table('organisation_classifications', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_organisation_classifications_organisation_id'), ['organisation_id'], unique=False)

    op.create_table('planned_procurements',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('description', sa.String(length=4000), nullable=False),
    sa.Column('category_id', sa.Integer(), nullable=False),
    sa.Column('region_id', sa.Integer(), nullable=True),
    sa.Column('pcc_area_id', sa.Integer(), nullable=True),
    sa.Column('route', sa.Enum('further_competition', 'call_off', name='planned_route', native_enum=False, create_constraint=True, length=27), nullable=False),
    sa.Column('value_band', sa.Enum('under_25k', '25k_to_100k', '100k_to_500k', '500k_or_more', name='value_band', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('financial_year', sa.Integer(), nullable=False),
    sa.Column('quarter', sa.Integer(), nullable=False),
    sa.Column('status', sa.Enum('draft', 'published', 'withdrawn', name='plan_status', native_enum=False, create_constraint=True, length=17), nullable=False),
    sa.Column('published_at', marketplace.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('withdrawn_at', marketplace.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', marketplace.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', marketplace.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('length(title) > 0', name=op.f('ck_planned_procurements_title_not_empty')),
    sa.CheckConstraint('quarter BETWEEN 1 AND 4', name=op.f('ck_planned_procurements_quarter_1_to_4')),
    sa.ForeignKeyConstraint(['category_id'], ['service_categories.id'], name=op.f('fk_planned_procurements_category_id_service_categories')),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_planned_procurements_created_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id'], name=op.f('fk_planned_procurements_organisation_id_organisations')),
    sa.ForeignKeyConstraint(['pcc_area_id'], ['pcc_areas.id'], name=op.f('fk_planned_procurements_pcc_area_id_pcc_areas')),
    sa.ForeignKeyConstraint(['region_id'], ['probation_regions.id'], name=op.f('fk_planned_procurements_region_id_probation_regions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_planned_procurements'))
    )
    with op.batch_alter_table('planned_procurements', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_planned_procurements_organisation_id'), ['organisation_id'], unique=False)

    op.create_table('spend_months',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('month', sa.Date(), nullable=False),
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
    sa.ForeignKeyConstraint(['category_id'], ['service_categories.id'], name=op.f('fk_spend_months_category_id_service_categories')),
    sa.ForeignKeyConstraint(['funder_id'], ['organisations.id'], name=op.f('fk_spend_months_funder_id_organisations')),
    sa.ForeignKeyConstraint(['pcc_area_id'], ['pcc_areas.id'], name=op.f('fk_spend_months_pcc_area_id_pcc_areas')),
    sa.ForeignKeyConstraint(['region_id'], ['probation_regions.id'], name=op.f('fk_spend_months_region_id_probation_regions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_spend_months'))
    )
    with op.batch_alter_table('spend_months', schema=None) as batch_op:
        batch_op.create_index('ix_spend_months_funder', ['funder_id', 'financial_year'], unique=False)
        batch_op.create_index('ix_spend_months_key', ['month', 'measure', 'funder_id', 'category_id', 'provider_vcse', 'provider_sme', 'region_id', 'pcc_area_id'], unique=False)
        batch_op.create_index('ix_spend_months_year', ['financial_year', 'measure'], unique=False)

    op.create_table('spend_provider_years',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('financial_year', sa.Integer(), nullable=False),
    sa.Column('funder_id', sa.Integer(), nullable=False),
    sa.Column('provider_id', sa.Integer(), nullable=False),
    sa.Column('provider_vcse', sa.Boolean(), nullable=False),
    sa.Column('provider_sme', sa.Boolean(), nullable=False),
    sa.Column('paid_pence', sa.BigInteger(), nullable=False),
    sa.Column('entries', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['funder_id'], ['organisations.id'], name=op.f('fk_spend_provider_years_funder_id_organisations')),
    sa.ForeignKeyConstraint(['provider_id'], ['organisations.id'], name=op.f('fk_spend_provider_years_provider_id_organisations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_spend_provider_years'))
    )
    with op.batch_alter_table('spend_provider_years', schema=None) as batch_op:
        batch_op.create_index('ix_spend_provider_years_key', ['financial_year', 'funder_id', 'provider_id', 'provider_vcse', 'provider_sme'], unique=False)

    op.create_table('spend_entries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('call_off_id', sa.Integer(), nullable=False),
    sa.Column('measure', sa.Enum('committed', 'invoiced', 'paid', name='spend_measure', native_enum=False, create_constraint=True, length=17), nullable=False),
    sa.Column('occurred_on', sa.Date(), nullable=False),
    sa.Column('financial_year', sa.Integer(), nullable=False),
    sa.Column('funder_id', sa.Integer(), nullable=False),
    sa.Column('provider_id', sa.Integer(), nullable=False),
    sa.Column('category_id', sa.Integer(), nullable=False),
    sa.Column('region_id', sa.Integer(), nullable=True),
    sa.Column('pcc_area_id', sa.Integer(), nullable=True),
    sa.Column('provider_vcse', sa.Boolean(), nullable=False),
    sa.Column('provider_sme', sa.Boolean(), nullable=False),
    sa.Column('source', sa.String(length=20), nullable=False),
    sa.Column('source_id', sa.Integer(), nullable=False),
    sa.Column('amount_pence', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['call_off_id'], ['call_offs.id'], name=op.f('fk_spend_entries_call_off_id_call_offs'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['category_id'], ['service_categories.id'], name=op.f('fk_spend_entries_category_id_service_categories')),
    sa.ForeignKeyConstraint(['funder_id'], ['organisations.id'], name=op.f('fk_spend_entries_funder_id_organisations')),
    sa.ForeignKeyConstraint(['pcc_area_id'], ['pcc_areas.id'], name=op.f('fk_spend_entries_pcc_area_id_pcc_areas')),
    sa.ForeignKeyConstraint(['provider_id'], ['organisations.id'], name=op.f('fk_spend_entries_provider_id_organisations')),
    sa.ForeignKeyConstraint(['region_id'], ['probation_regions.id'], name=op.f('fk_spend_entries_region_id_probation_regions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_spend_entries'))
    )
    with op.batch_alter_table('spend_entries', schema=None) as batch_op:
        batch_op.create_index('ix_spend_entries_call_off', ['call_off_id'], unique=False)
        batch_op.create_index('ix_spend_entries_provider_day', ['provider_id', 'occurred_on'], unique=False)

    # ### end Alembic commands ###
    for statement in _statements(STALE_TRIGGERS_POSTGRESQL, STALE_TRIGGERS_SQLITE):
        op.execute(statement)


def downgrade():
    for statement in _statements(DROP_STALE_TRIGGERS_POSTGRESQL, DROP_STALE_TRIGGERS_SQLITE):
        op.execute(statement)
    # ### commands auto generated by Alembic - please adjust! ###
    with op.batch_alter_table('spend_entries', schema=None) as batch_op:
        batch_op.drop_index('ix_spend_entries_provider_day')
        batch_op.drop_index('ix_spend_entries_call_off')

    op.drop_table('spend_entries')
    with op.batch_alter_table('spend_provider_years', schema=None) as batch_op:
        batch_op.drop_index('ix_spend_provider_years_key')

    op.drop_table('spend_provider_years')
    with op.batch_alter_table('spend_months', schema=None) as batch_op:
        batch_op.drop_index('ix_spend_months_year')
        batch_op.drop_index('ix_spend_months_key')
        batch_op.drop_index('ix_spend_months_funder')

    op.drop_table('spend_months')
    with op.batch_alter_table('planned_procurements', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_planned_procurements_organisation_id'))

    op.drop_table('planned_procurements')
    with op.batch_alter_table('organisation_classifications', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_organisation_classifications_organisation_id'))

    op.drop_table('organisation_classifications')
    op.drop_table('spend_stale_call_offs')
    # ### end Alembic commands ###
