"""organisations: e-invoicing details (electronic address, VAT registration, sealed bank account)

- organisations.endpoint_scheme / endpoint_id: the Peppol electronic address (EndpointID and its
  EAS scheme) that buyers and sellers are addressed by on UBL invoices and credit notes;
- organisations.vat_registered: recorded by the provider; true exactly when it has a VAT number
  (every organisation that recorded one so far is registered);
- organisations.bank_details_sealed / bank_account_last4 / bank_details_changed_at: the
  provider's bank account for credit transfers, sealed (marketplace.core.sealed), with only its last
  four digits in clear.

Columns are added in place, never by rebuilding ``organisations`` on SQLite: dropping the old table
would delete the rows that refer to it through ON DELETE CASCADE (see marketplace.core.migration_helpers).
The CHECK constraints ride on the last column added, after the existing rows are filled in.

Revision ID: b7e41c9d2a60
Revises: a7c3e9d2f104
Create Date: 2026-12-07 15:00:00

"""
from alembic import op
import sqlalchemy as sa

import marketplace.core.db


# revision identifiers, used by Alembic.
revision = 'b7e41c9d2a60'
down_revision = 'a7c3e9d2f104'
branch_labels = None
depends_on = None

CHECKS = {
    'ck_organisations_endpoint_scheme_with_id': '(endpoint_scheme IS NULL) = (endpoint_id IS NULL)',
    'ck_organisations_vat_number_iff_registered': 'vat_registered = (vat_number IS NOT NULL)',
    'ck_organisations_bank_details_with_last4': (
        '(bank_details_sealed IS NULL) = (bank_account_last4 IS NULL)'
    ),
}


def _sqlite() -> bool:
    return op.get_bind().dialect.name == 'sqlite'


def upgrade():
    op.add_column(
        'organisations',
        sa.Column('vat_registered', sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.execute("UPDATE organisations SET vat_registered = (vat_number IS NOT NULL)")
    op.add_column('organisations', sa.Column('endpoint_scheme', sa.String(length=4), nullable=True))
    op.add_column('organisations', sa.Column('endpoint_id', sa.String(length=50), nullable=True))
    op.add_column('organisations', sa.Column('bank_details_sealed', sa.Text(), nullable=True))
    op.add_column(
        'organisations',
        sa.Column(
            'bank_details_changed_at', marketplace.core.db.UTCDateTime(timezone=True), nullable=True
        ),
    )
    if _sqlite():
        constraints = ' '.join(f'CONSTRAINT {name} CHECK ({sql})' for name, sql in CHECKS.items())
        op.get_bind().exec_driver_sql(
            f'ALTER TABLE organisations ADD COLUMN bank_account_last4 VARCHAR(4) {constraints}'
        )
    else:
        op.add_column(
            'organisations', sa.Column('bank_account_last4', sa.String(length=4), nullable=True)
        )
        for name, sql in CHECKS.items():
            op.create_check_constraint(name, 'organisations', sql)


def downgrade():
    if _sqlite():
        # SQLite 3.35+ drops a column (and the CHECK constraints written on it) in place.
        op.get_bind().exec_driver_sql('ALTER TABLE organisations DROP COLUMN bank_account_last4')
    else:
        for name in CHECKS:
            op.drop_constraint(name, 'organisations', type_='check')
        op.drop_column('organisations', 'bank_account_last4')
    op.drop_column('organisations', 'bank_details_changed_at')
    op.drop_column('organisations', 'bank_details_sealed')
    op.drop_column('organisations', 'endpoint_id')
    op.drop_column('organisations', 'endpoint_scheme')
    op.drop_column('organisations', 'vat_registered')
