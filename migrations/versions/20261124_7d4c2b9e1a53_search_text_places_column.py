"""search text: a places column in the SQLite full-text index

Revision ID: 7d4c2b9e1a53
Revises: 04a05a84474a
Create Date: 2026-11-24 09:00:00.000000

A listing's text now carries the names of the places it is covered in (its regions and the PCC
areas in them), so that "housing Manchester" finds housing in Greater Manchester; they rank below
the listing's own words. On SQLite that is a fifth FTS5 column (an FTS5 table cannot gain a
column: it is rebuilt, its rows copied with no places); on PostgreSQL the places are one more
weighted part of the ``document`` tsvector, with no change of schema.

The indexed words are now stems (Porter2): rows written before this revision hold the old
words and no places. Run `flask catalogue reindex` after upgrading.
"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '7d4c2b9e1a53'
down_revision = '04a05a84474a'
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


def upgrade():
    if op.get_bind().dialect.name == 'sqlite':
        text = ['title', 'summary', 'body', 'provider']
        _rebuild([*text, 'places'], text)


def downgrade():
    if op.get_bind().dialect.name == 'sqlite':
        text = ['title', 'summary', 'body', 'provider']
        _rebuild(text, text)
