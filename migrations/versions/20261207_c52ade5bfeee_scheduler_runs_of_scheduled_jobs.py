"""scheduler: runs of scheduled jobs

scheduled_job_runs: one row per job and due time. The unique (job_name, due_at) is the lease that
makes each job run once per due time with several scheduler processes; lease_expires_at lets
another process take over a run whose process died (marketplace/core/scheduler/services.py).

Revision ID: c52ade5bfeee
Revises: b7e41c9d2a60
Create Date: 2026-12-07 17:33:40.676580

"""
from alembic import op
import sqlalchemy as sa

import marketplace.core.db


# revision identifiers, used by Alembic.
revision = 'c52ade5bfeee'
down_revision = 'b7e41c9d2a60'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('scheduled_job_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('job_name', sa.String(length=60), nullable=False),
    sa.Column('due_at', marketplace.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('outcome', sa.Enum('running', 'ok', 'failed', name='scheduled_run_outcome', native_enum=False, create_constraint=True, length=15), nullable=False),
    sa.Column('started_at', marketplace.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('lease_expires_at', marketplace.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', marketplace.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('counts', sa.JSON(), nullable=True),
    sa.Column('error', sa.String(length=500), nullable=True),
    sa.Column('runner', sa.String(length=120), nullable=False),
    sa.CheckConstraint("(outcome = 'failed') = (error IS NOT NULL)", name=op.f('ck_scheduled_job_runs_error_iff_failed')),
    sa.CheckConstraint("(outcome = 'running') = (finished_at IS NULL)", name=op.f('ck_scheduled_job_runs_finished_unless_running')),
    sa.CheckConstraint('attempts >= 1', name=op.f('ck_scheduled_job_runs_attempts_positive')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scheduled_job_runs')),
    sa.UniqueConstraint('job_name', 'due_at', name='uq_scheduled_job_runs_job_name_due_at')
    )
    with op.batch_alter_table('scheduled_job_runs', schema=None) as batch_op:
        batch_op.create_index('ix_scheduled_job_runs_started_at', ['started_at'], unique=False)



def downgrade():
    with op.batch_alter_table('scheduled_job_runs', schema=None) as batch_op:
        batch_op.drop_index('ix_scheduled_job_runs_started_at')

    op.drop_table('scheduled_job_runs')
