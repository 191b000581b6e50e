"""catalogue search index (SQLite FTS5 or PostgreSQL tsvector with GIN), covered areas, filter rows

Revision ID: 9c3e5a7d1b20
Revises: 615bc283d75e
Create Date: 2026-11-22 19:05:00.000000

The search objects are not in the models' metadata (an FTS5 virtual table cannot be), so they are
written here by hand and left out of autogenerate by ``marketplace.catalogue.search.schema.is_search_object``
(see migrations/env.py). Rows exist only for listings visible to buyers; `flask catalogue reindex`
rebuilds them from the listings.
"""
from alembic import op
import sqlalchemy as sa

import marketplace.core.db


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
    # Covering: counting a page of matches per region reads only this index.
    op.create_index(
        'ix_listing_search_areas_listing',
        'listing_search_areas',
        ['listing_id', 'region_id', 'pcc_area_id'],
    )
    op.create_index(
        'ix_listing_search_areas_region', 'listing_search_areas', ['region_id', 'listing_id']
    )
    op.create_index(
        'ix_listing_search_areas_pcc_area', 'listing_search_areas', ['pcc_area_id', 'listing_id']
    )
    # One narrow row per visible listing: what filters, counts and sorting read, so that a
    # search reads the wide listings table only for the page it shows.
    flags = [
        'setting_community', 'setting_custody', 'setting_remote', 'format_one_to_one',
        'format_group', 'risk_low', 'risk_medium', 'risk_high', 'risk_very_high',
        'complexity_low', 'complexity_medium', 'complexity_high',
    ]
    op.create_table(
        'listing_search_rows',
        sa.Column('listing_id', sa.Integer(), nullable=False),
        sa.Column('category_id', sa.Integer(), nullable=False),
        sa.Column('organisation_id', sa.Integer(), nullable=False),
        sa.Column('provider_type', sa.String(length=30), nullable=False),
        sa.Column('provider_key', sa.String(length=120), nullable=False),
        sa.Column('title_key', sa.String(length=120), nullable=False),
        *(sa.Column(flag, sa.Boolean(), nullable=False) for flag in flags),
        sa.Column('eligibility_sex', sa.String(length=20), nullable=False),
        sa.Column('min_age', sa.Integer(), nullable=True),
        sa.Column('max_age', sa.Integer(), nullable=True),
        sa.Column('monthly_capacity', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('listing_id', name='pk_listing_search_rows'),
        sa.ForeignKeyConstraint(
            ['listing_id'], ['listings.id'], ondelete='CASCADE',
            name='fk_listing_search_rows_listing_id_listings',
        ),
    )
    op.create_index(
        'ix_listing_search_rows_category', 'listing_search_rows', ['category_id', 'listing_id']
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
    op.drop_index('ix_listing_search_rows_category', table_name='listing_search_rows')
    op.drop_table('listing_search_rows')
    op.drop_index('ix_listing_search_areas_pcc_area', table_name='listing_search_areas')
    op.drop_index('ix_listing_search_areas_region', table_name='listing_search_areas')
    op.drop_index('ix_listing_search_areas_listing', table_name='listing_search_areas')
    op.drop_table('listing_search_areas')
