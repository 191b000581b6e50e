"""funding: budget history

Revision ID: 5073e722067a
Revises: a19d3c0f5e21
Create Date: 2026-12-07 14:50:32.328994

Each change of a budget's allocation is kept: who, when, old and new amounts, and the reason.
Budgets that exist already get one row for their current allocation, dated when they were made,
so that every budget's history starts with how much it was set at.
"""
from alembic import op
import sqlalchemy as sa

import marketplace.core.db


# revision identifiers, used by Alembic.
revision = '5073e722067a'
down_revision = 'a19d3c0f5e21'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('budget_changes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('budget_id', sa.Integer(), nullable=False),
    sa.Column('changed_at', marketplace.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('changed_by_id', sa.Integer(), nullable=True),
    sa.Column('old_allocated_pence', sa.BigInteger(), nullable=True),
    sa.Column('new_allocated_pence', sa.BigInteger(), nullable=False),
    sa.Column('reason', sa.String(length=1000), nullable=False),
    sa.CheckConstraint('new_allocated_pence >= 0 AND new_allocated_pence <= 100000000000', name=op.f('ck_budget_changes_new_allocated_range')),
    sa.CheckConstraint('old_allocated_pence IS NULL OR old_allocated_pence >= 0', name=op.f('ck_budget_changes_old_allocated_not_negative')),
    sa.ForeignKeyConstraint(['budget_id'], ['budgets.id'], name=op.f('fk_budget_changes_budget_id_budgets'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['changed_by_id'], ['users.id'], name=op.f('fk_budget_changes_changed_by_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_budget_changes'))
    )
    with op.batch_alter_table('budget_changes', schema=None) as batch_op:
        batch_op.create_index('ix_budget_changes_budget_changed', ['budget_id', 'changed_at'], unique=False)

    op.execute(
        "INSERT INTO budget_changes (budget_id, changed_at, changed_by_id, old_allocated_pence, "
        "new_allocated_pence, reason) SELECT id, created_at, NULL, NULL, allocated_pence, "
        "'Set before budget history was kept' FROM budgets"
    )


def downgrade():
    with op.batch_alter_table('budget_changes', schema=None) as batch_op:
        batch_op.drop_index('ix_budget_changes_budget_changed')

    op.drop_table('budget_changes')
