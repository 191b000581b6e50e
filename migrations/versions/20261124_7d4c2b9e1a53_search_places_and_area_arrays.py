"""search: places in the text (SQLite: an FTS5 column); PostgreSQL rows carry their areas

Revision ID: 7d4c2b9e1a53
Revises: cbfdbef4a6c9
Create Date: 2026-11-24 09:00:00.000000

A listing's text now carries the names of the places it is covered in (its regions and the PCC
areas in them), so that "housing Manchester" finds housing in Greater Manchester; they rank below
the listing's own words. On SQLite that is a fifth FTS5 column (an FTS5 table cannot gain a
column: it is rebuilt, its rows copied with no places); on PostgreSQL the places are one more
weighted part of the ``document`` tsvector, with no change of schema.

The counts per PCC area read, per match, the regions it is covered in as a whole and its PCC
areas: on PostgreSQL two arrays in the row beside ``region_ids`` (filled here from
``listing_search_areas``), so that counting reads no other table; SQLite reads the areas table.

The indexed words are now stems (Porter2): rows written before this revision hold the old
words and no places. Run `flask catalogue reindex` after upgrading.
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql


# revision identifiers, used by Alembic.
revision = '7d4c2b9e1a53'
down_revision = 'cbfdbef4a6c9'
branch_labels = None
depends_on = None

_TOKENIZE = "tokenize = 'unicode61 remove_diacritics 2'"
_TRIGGER = (
    "CREATE TRIGGER listing_search_listing_deleted AFTER DELETE ON listings BEGIN "
    "DELETE FROM listing_search WHERE rowid = old.id; END"
)


def _rebuild(columns: list[str], copied: list[str]) -> None:
    """Recreate the FTS5 table with these columns, copying the rows' ``copied`` columns."""
    # The trigger names the table: dropped first, so that renaming and dropping the old table
    # never finds a trigger pointing at a table that is not there.
    op.execute("DROP TRIGGER listing_search_listing_deleted")
    op.execute("ALTER TABLE listing_search RENAME TO listing_search_old")
    op.execute(f"CREATE VIRTUAL TABLE listing_search USING fts5({', '.join(columns)}, {_TOKENIZE})")
    values = [name if name in copied else "''" for name in columns]
    op.execute(
        f"INSERT INTO listing_search (rowid, {', '.join(columns)}) "
        f"SELECT rowid, {', '.join(values)} FROM listing_search_old"
    )
    op.execute("DROP TABLE listing_search_old")
    op.execute(_TRIGGER)


_ARRAYS = ('wide_region_ids', 'pcc_area_ids')


def upgrade():
    if op.get_bind().dialect.name == 'sqlite':
        text = ['title', 'summary', 'body', 'provider']
        _rebuild([*text, 'places'], text)
        return
    for name in _ARRAYS:
        op.add_column(
            'listing_search_rows',
            sa.Column(
                name,
                postgresql.ARRAY(sa.Integer()),
                nullable=False,
                server_default=sa.text("'{}'::integer[]"),
            ),
        )
    op.execute(
        "UPDATE listing_search_rows AS r SET "
        "wide_region_ids = ARRAY(SELECT a.region_id FROM listing_search_areas AS a "
        "WHERE a.listing_id = r.listing_id AND a.pcc_area_id IS NULL ORDER BY a.region_id), "
        "pcc_area_ids = ARRAY(SELECT a.pcc_area_id FROM listing_search_areas AS a "
        "WHERE a.listing_id = r.listing_id AND a.pcc_area_id IS NOT NULL ORDER BY a.pcc_area_id)"
    )


def downgrade():
    if op.get_bind().dialect.name == 'sqlite':
        text = ['title', 'summary', 'body', 'provider']
        _rebuild(text, text)
        return
    for name in _ARRAYS:
        op.drop_column('listing_search_rows', name)
