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


def upgrade():
    with op.batch_alter_table('applications', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('prioritised_until', marketplace.core.db.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade():
    with op.batch_alter_table('applications', schema=None) as batch_op:
        batch_op.drop_column('prioritised_until')
