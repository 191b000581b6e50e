"""audit events sealed until (a sealed bid's events are hidden until the bid deadline)

Revision ID: a7d4e2c91b58
Revises: f1c3a9d2b7e4
Create Date: 2026-12-07 21:45:00

"""
from alembic import op
import sqlalchemy as sa

import marketplace.core.db


# revision identifiers, used by Alembic.
revision = 'a7d4e2c91b58'
down_revision = 'f1c3a9d2b7e4'
branch_labels = None
depends_on = None


# Plain ADD/DROP COLUMN (metadata only on both backends, existing rows read NULL: not sealed).
# Not a batch: on SQLite a batch would copy the table, rewriting every (append-only) audit row.
def upgrade():
    op.add_column(
        'audit_events',
        sa.Column('sealed_until', marketplace.core.db.UTCDateTime(timezone=True), nullable=True),
    )


def downgrade():
    op.drop_column('audit_events', 'sealed_until')
