"""payment by results: outcome terms and claims, outcome invoice lines

Revision ID: 5d1e0a7c9b31
Revises: b4b7ed939660
Create Date: 2026-11-23 00:40:00

"""
from alembic import op
import sqlalchemy as sa

import marketplace.core.db
from marketplace.core.migration_helpers import replace_check


# revision identifiers, used by Alembic.
revision = '5d1e0a7c9b31'
down_revision = 'b4b7ed939660'
branch_labels = None
depends_on = None


def upgrade():
    # Added in place, never by rebuilding call_offs on SQLite: dropping the old table would delete
    # its funders, deliveries and the rest through ON DELETE CASCADE (see migration_helpers).
    outcome_max_check = 'outcome_max_pence >= 0 AND outcome_max_pence <= 100000000000'
    if op.get_bind().dialect.name == 'sqlite':
        op.get_bind().exec_driver_sql(
            'ALTER TABLE call_offs ADD COLUMN outcome_max_pence BIGINT DEFAULT 0 NOT NULL '
            f'CONSTRAINT ck_call_offs_outcome_max_range CHECK ({outcome_max_check})'
        )
    else:
        op.add_column('call_offs', sa.Column('outcome_max_pence', sa.BigInteger(), server_default=sa.text('0'), nullable=False))
        op.create_check_constraint(op.f('ck_call_offs_outcome_max_range'), 'call_offs', outcome_max_check)

    op.create_table('outcome_terms',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('call_off_id', sa.Integer(), nullable=False),
    sa.Column('outcome', sa.String(length=300), nullable=False),
    sa.Column('tariff_pence', sa.BigInteger(), nullable=False),
    sa.Column('earliest_claim_on', sa.Date(), nullable=False),
    sa.Column('evidence_required', sa.String(length=1000), nullable=False),
    sa.Column('cap', sa.Integer(), nullable=False),
    sa.Column('status', sa.Enum('proposed', 'agreed', 'rejected', name='outcome_term_status', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('proposed_by_id', sa.Integer(), nullable=True),
    sa.Column('proposed_at', marketplace.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('agreed_by_id', sa.Integer(), nullable=True),
    sa.Column('agreed_at', marketplace.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('rejected_by_id', sa.Integer(), nullable=True),
    sa.Column('rejected_at', marketplace.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('rejection_reason', sa.String(length=1000), nullable=True),
    sa.CheckConstraint('tariff_pence > 0 AND tariff_pence <= 100000000', name=op.f('ck_outcome_terms_tariff_range')),
    sa.CheckConstraint('cap >= 1 AND cap <= 1000', name=op.f('ck_outcome_terms_cap_range')),
    sa.CheckConstraint("status <> 'agreed' OR agreed_at IS NOT NULL", name=op.f('ck_outcome_terms_agreed_has_date')),
    sa.CheckConstraint("status <> 'rejected' OR (rejected_at IS NOT NULL AND rejection_reason IS NOT NULL)", name=op.f('ck_outcome_terms_rejected_has_reason')),
    sa.ForeignKeyConstraint(['call_off_id'], ['call_offs.id'], name=op.f('fk_outcome_terms_call_off_id_call_offs'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['proposed_by_id'], ['users.id'], name=op.f('fk_outcome_terms_proposed_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['agreed_by_id'], ['users.id'], name=op.f('fk_outcome_terms_agreed_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['rejected_by_id'], ['users.id'], name=op.f('fk_outcome_terms_rejected_by_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outcome_terms'))
    )
    with op.batch_alter_table('outcome_terms', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outcome_terms_call_off_id'), ['call_off_id'], unique=False)
        batch_op.create_index('uq_outcome_terms_call_off_outcome', ['call_off_id', 'outcome'], unique=True, sqlite_where=sa.text("status <> 'rejected'"), postgresql_where=sa.text("status <> 'rejected'"))

    op.create_table('outcome_claims',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('reference', sa.String(length=20), nullable=False),
    sa.Column('term_id', sa.Integer(), nullable=False),
    sa.Column('call_off_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.Enum('claimed', 'verified', 'rejected', name='outcome_claim_status', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('achieved_on', sa.Date(), nullable=False),
    sa.Column('note', sa.String(length=1000), nullable=False),
    sa.Column('evidence_file_id', sa.Integer(), nullable=False),
    sa.Column('claimed_by_id', sa.Integer(), nullable=True),
    sa.Column('claimed_at', marketplace.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('verified_by_id', sa.Integer(), nullable=True),
    sa.Column('verified_at', marketplace.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('rejected_by_id', sa.Integer(), nullable=True),
    sa.Column('rejected_at', marketplace.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('rejection_reason', sa.String(length=1000), nullable=True),
    sa.CheckConstraint("status <> 'verified' OR (verified_at IS NOT NULL)", name=op.f('ck_outcome_claims_verified_has_date')),
    sa.CheckConstraint("status <> 'rejected' OR (rejected_at IS NOT NULL AND rejection_reason IS NOT NULL)", name=op.f('ck_outcome_claims_rejected_has_reason')),
    sa.ForeignKeyConstraint(['term_id'], ['outcome_terms.id'], name=op.f('fk_outcome_claims_term_id_outcome_terms'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['call_off_id'], ['call_offs.id'], name=op.f('fk_outcome_claims_call_off_id_call_offs'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['evidence_file_id'], ['evidence_files.id'], name=op.f('fk_outcome_claims_evidence_file_id_evidence_files')),
    sa.ForeignKeyConstraint(['claimed_by_id'], ['users.id'], name=op.f('fk_outcome_claims_claimed_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['verified_by_id'], ['users.id'], name=op.f('fk_outcome_claims_verified_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['rejected_by_id'], ['users.id'], name=op.f('fk_outcome_claims_rejected_by_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outcome_claims')),
    sa.UniqueConstraint('reference', name=op.f('uq_outcome_claims_reference'))
    )
    with op.batch_alter_table('outcome_claims', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outcome_claims_term_id'), ['term_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_outcome_claims_call_off_id'), ['call_off_id'], unique=False)
        batch_op.create_index('ix_outcome_claims_status_verified', ['status', 'verified_at'], unique=False)

    # Invoices: an outcome kind, and lines that bill either a delivery or an outcome claim.
    replace_check(
        'invoices',
        op.f('ck_invoices_invoice_kind'),
        "kind IN ('monthly', 'completion')",
        "kind IN ('monthly', 'completion', 'outcome')",
    )
    with op.batch_alter_table('invoice_lines', schema=None) as batch_op:
        batch_op.add_column(sa.Column('outcome_claim_id', sa.Integer(), nullable=True))
        batch_op.alter_column('delivery_id', existing_type=sa.Integer(), nullable=True)
        batch_op.create_unique_constraint(batch_op.f('uq_invoice_lines_outcome_claim_id'), ['outcome_claim_id'])
        batch_op.create_foreign_key(batch_op.f('fk_invoice_lines_outcome_claim_id_outcome_claims'), 'outcome_claims', ['outcome_claim_id'], ['id'])
        batch_op.create_check_constraint(
            op.f('ck_invoice_lines_bills_one_thing'),
            '(delivery_id IS NULL) <> (outcome_claim_id IS NULL)',
        )


def downgrade():
    op.execute(
        "DELETE FROM invoice_lines WHERE outcome_claim_id IS NOT NULL"
    )
    op.execute("DELETE FROM invoices WHERE kind = 'outcome'")
    with op.batch_alter_table('invoice_lines', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_invoice_lines_bills_one_thing'), type_='check')
        batch_op.drop_constraint(batch_op.f('fk_invoice_lines_outcome_claim_id_outcome_claims'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('uq_invoice_lines_outcome_claim_id'), type_='unique')
        batch_op.alter_column('delivery_id', existing_type=sa.Integer(), nullable=False)
        batch_op.drop_column('outcome_claim_id')
    replace_check(
        'invoices',
        op.f('ck_invoices_invoice_kind'),
        "kind IN ('monthly', 'completion', 'outcome')",
        "kind IN ('monthly', 'completion')",
    )

    with op.batch_alter_table('outcome_claims', schema=None) as batch_op:
        batch_op.drop_index('ix_outcome_claims_status_verified')
        batch_op.drop_index(batch_op.f('ix_outcome_claims_call_off_id'))
        batch_op.drop_index(batch_op.f('ix_outcome_claims_term_id'))
    op.drop_table('outcome_claims')
    with op.batch_alter_table('outcome_terms', schema=None) as batch_op:
        batch_op.drop_index('uq_outcome_terms_call_off_outcome', sqlite_where=sa.text("status <> 'rejected'"), postgresql_where=sa.text("status <> 'rejected'"))
        batch_op.drop_index(batch_op.f('ix_outcome_terms_call_off_id'))
    op.drop_table('outcome_terms')
    with op.batch_alter_table('call_offs', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_call_offs_outcome_max_range'), type_='check')
        batch_op.drop_column('outcome_max_pence')
