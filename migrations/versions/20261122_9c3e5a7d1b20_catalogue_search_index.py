"""catalogue search index (SQLite FTS5 or PostgreSQL tsvector with GIN) and covered areas

Revision ID: 9c3e5a7d1b20
Revises: 615bc283d75e
Create Date: 2026-11-22 19:05:00.000000

The search objects are not in the models' metadata (an FTS5 virtual table cannot be), so they are
written here by hand and left out of autogenerate by ``marketplace.catalogue.search.is_search_object``
(see migrations/env.py). Rows exist only for listings visible to buyers; `flask catalogue reindex`
rebuilds them from the listings.
"""
from alembic import op
import sqlalchemy as sa

import marketplace.db


# revision identifiers, used by Alembic.
revision = '9c3e5a7d1b20'
down_revision = '615bc283d75e'
branch_labels = None
depends_on = None


def upgrade():
    # The areas a visible listing is offered in and covered by an active membership: one row per
    # covered area (a whole region: pcc_area_id NULL; a PCC area: its region and itself).
    op.create_table(
        'listing_search_areas',
        sa.Column('listing_id', sa.Integer(), nullable=False),
        sa.Column('region_id', sa.Integer(), nullable=False),
        sa.Column('pcc_area_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ['listing_id'], ['listings.id'], ondelete='CASCADE',
            name='fk_listing_search_areas_listing_id_listings',
        ),
    )
    op.create_index('ix_listing_search_areas_listing', 'listing_search_areas', ['listing_id'])
    op.create_index(
        'ix_listing_search_areas_region', 'listing_search_areas', ['region_id', 'listing_id']
    )
    op.create_index(
        'ix_listing_search_areas_pcc_area', 'listing_search_areas', ['pcc_area_id', 'listing_id']
    )
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(
            "CREATE TABLE listing_search ("
            " listing_id integer PRIMARY KEY"
            " CONSTRAINT fk_listing_search_listing_id_listings REFERENCES listings (id)"
            " ON DELETE CASCADE,"
            " document tsvector NOT NULL)"
        )
        op.execute("CREATE INDEX ix_listing_search_document ON listing_search USING gin (document)")
    else:
        # Keyed by rowid = listing id. The text is already folded and stemmed by the app.
        op.execute(
            "CREATE VIRTUAL TABLE listing_search USING fts5("
            "title, summary, body, provider, tokenize = 'unicode61 remove_diacritics 2')"
        )
        # A virtual table has no foreign keys: forget a deleted listing's row here.
        op.execute(
            "CREATE TRIGGER listing_search_listing_deleted AFTER DELETE ON listings BEGIN "
            "DELETE FROM listing_search WHERE rowid = old.id; END"
        )


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("DROP TABLE listing_search")
    else:
        op.execute("DROP TRIGGER listing_search_listing_deleted")
        op.execute("DROP TABLE listing_search")
    op.drop_index('ix_listing_search_areas_pcc_area', table_name='listing_search_areas')
    op.drop_index('ix_listing_search_areas_region', table_name='listing_search_areas')
    op.drop_index('ix_listing_search_areas_listing', table_name='listing_search_areas')
    op.drop_table('listing_search_areas')
