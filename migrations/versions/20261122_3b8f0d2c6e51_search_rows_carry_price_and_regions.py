"""search rows carry today's price with its dates and, on PostgreSQL, the regions and the text

Revision ID: 3b8f0d2c6e51
Revises: 9c3e5a7d1b20
Create Date: 2026-11-22 20:00:00.000000

A search of thousands of matches otherwise looks up each match's price in force and its covered
regions one by one. The price is stored with the dates it is in force (a search on a date outside
them still reads ``listing_prices``), so a stored price is never wrong, only slower once it has
lapsed; `flask catalogue refresh-prices` (daily) or `flask catalogue reindex` brings it up to date.
Existing rows are rebuilt by `flask catalogue reindex`; until then they read ``listing_prices``.

On PostgreSQL the rows also carry the covered regions' ids and the text's tsvector (moved here from
the ``listing_search`` table), in one GIN index with the lot: a search with text, a lot and a
region finds the rows that match all three in one index scan, and reads only those.
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

import marketplace.core.db


# revision identifiers, used by Alembic.
revision = '3b8f0d2c6e51'
down_revision = '9c3e5a7d1b20'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('listing_search_rows') as batch_op:
        batch_op.add_column(sa.Column('price_pence', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('price_from', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('price_to', sa.Date(), nullable=True))
    if op.get_bind().dialect.name == 'postgresql':
        # The ids of the regions the listing's covered areas lie in (listing_search_areas holds
        # the same per area), and the text: the region filter, the counts per region and the
        # text match read the row alone.
        op.add_column(
            'listing_search_rows',
            sa.Column(
                'region_ids',
                postgresql.ARRAY(sa.Integer()),
                nullable=False,
                server_default=sa.text("'{}'::integer[]"),
            ),
        )
        op.execute(
            "UPDATE listing_search_rows AS r SET region_ids = ARRAY("
            "SELECT DISTINCT a.region_id FROM listing_search_areas AS a "
            "WHERE a.listing_id = r.listing_id ORDER BY a.region_id)"
        )
        op.execute(
            "ALTER TABLE listing_search_rows "
            "ADD COLUMN document tsvector NOT NULL DEFAULT ''::tsvector"
        )
        op.execute(
            "UPDATE listing_search_rows AS r SET document = s.document "
            "FROM listing_search AS s WHERE s.listing_id = r.listing_id"
        )
        op.execute("DROP TABLE listing_search")
        # One GIN index over lot, regions and text (btree_gin indexes the lot's plain integer):
        # a search with any of the three finds the rows that meet all of them in one index
        # scan, before it reads a row. btree_gin ships with PostgreSQL and is a trusted
        # extension: the database's owner may create it.
        op.execute("CREATE EXTENSION IF NOT EXISTS btree_gin")
        op.execute(
            "CREATE INDEX ix_listing_search_rows_lot_regions_text ON listing_search_rows "
            "USING gin (category_id, region_ids, document)"
        )


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(
            "CREATE TABLE listing_search ("
            " listing_id integer PRIMARY KEY"
            " CONSTRAINT fk_listing_search_listing_id_listings REFERENCES listings (id)"
            " ON DELETE CASCADE,"
            " document tsvector NOT NULL)"
        )
        op.execute(
            "INSERT INTO listing_search (listing_id, document) "
            "SELECT listing_id, document FROM listing_search_rows"
        )
        op.execute("CREATE INDEX ix_listing_search_document ON listing_search USING gin (document)")
        # btree_gin stays: other objects may have come to use it.
        op.execute("DROP INDEX ix_listing_search_rows_lot_regions_text")
        op.drop_column('listing_search_rows', 'document')
        op.drop_column('listing_search_rows', 'region_ids')
    with op.batch_alter_table('listing_search_rows') as batch_op:
        batch_op.drop_column('price_to')
        batch_op.drop_column('price_from')
        batch_op.drop_column('price_pence')
