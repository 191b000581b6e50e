"""applications prioritised until (a further competition's bid deadline)

Revision ID: f1c3a9d2b7e4
Revises: e506b3d55056
Create Date: 2026-12-07 21:00:00

"""
from alembic import op
import sqlalchemy as sa

import marketplace.core.db


# revision identifiers, used by Alembic.
revision = 'f1c3a9d2b7e4'
down_revision = 'e506b3d55056'
branch_labels = None
depends_on = None


# Plain ADD/DROP COLUMN, not a batch: on SQLite a batch copies the table, which would drop the
# cache-generation triggers on applications.
def upgrade():
    op.add_column(
        'applications',
        sa.Column('prioritised_until', marketplace.core.db.UTCDateTime(timezone=True), nullable=True),
    )


def downgrade():
    op.drop_column('applications', 'prioritised_until')
