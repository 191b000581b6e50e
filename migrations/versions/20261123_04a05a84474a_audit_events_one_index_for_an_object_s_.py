"""audit events: one index for an object's history

Every change in the app writes an audit event; each index is one more insert. An object's history
is read by its type and key together, and the audit log's list of types reads the first column;
nothing reads by action alone with an index (its filter is a LIKE on a prefix).

Revision ID: 04a05a84474a
Revises: f558cf392674
Create Date: 2026-11-23 17:05:15.222537

"""
from alembic import op
import sqlalchemy as sa

import marketplace.core.db


# revision identifiers, used by Alembic.
revision = '04a05a84474a'
down_revision = 'f558cf392674'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_events_action'))
        batch_op.drop_index(batch_op.f('ix_audit_events_object_id'))
        batch_op.drop_index(batch_op.f('ix_audit_events_object_type'))
        batch_op.create_index('ix_audit_events_object', ['object_type', 'object_id'], unique=False)



def downgrade():
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_events_object')
        batch_op.create_index(batch_op.f('ix_audit_events_object_type'), ['object_type'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_events_object_id'), ['object_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_events_action'), ['action'], unique=False)

