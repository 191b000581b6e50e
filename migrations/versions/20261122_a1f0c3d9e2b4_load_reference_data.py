"""load reference data: probation regions, PCC areas, service categories

Revision ID: a1f0c3d9e2b4
Revises: e7b2123ac13f
Create Date: 2026-11-22 15:05:00

"""
import sqlalchemy as sa
from alembic import op

from marketplace.reference.loader import load_reference_data

# revision identifiers, used by Alembic.
revision = "a1f0c3d9e2b4"
down_revision = "e7b2123ac13f"
branch_labels = None
depends_on = None


def upgrade():
    # Reads the CSV copies kept in marketplace/reference/data/ (an upsert by code).
    load_reference_data(op.get_bind())


def downgrade():
    bind = op.get_bind()
    for table in ("pcc_areas", "service_categories", "probation_regions"):
        bind.execute(sa.text(f"DELETE FROM {table}"))
