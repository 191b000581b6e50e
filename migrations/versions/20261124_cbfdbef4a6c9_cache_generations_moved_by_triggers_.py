"""cache generations moved on by database triggers; call-offs record the price version

Revision ID: cbfdbef4a6c9
Revises: 9f3b6c1d2e47
Create Date: 2026-11-24 10:00:00.000000

Every write moves the generations of the cache topics it touches, whatever made it (the ORM,
Core bulk writes, raw SQL, COPY): the triggers below do it in the database, as the declarations
(``watch`` next to the models) stood when this revision was written. A changed declaration needs
a new revision that drops these (``drop_statements`` with this plan, ``functions=False``) and
creates its own; ``tests/test_cache_triggers.py`` says when.

Each call-off records the price version (the ``listing_prices`` row) it was placed at: the one the
buyer was shown on check your answers. Call-offs placed before have none.
"""
from alembic import op
import sqlalchemy as sa

from marketplace.core.cache.triggers import create_statements, drop_statements, plan_from


# revision identifiers, used by Alembic.
revision = 'cbfdbef4a6c9'
down_revision = '9f3b6c1d2e47'
branch_labels = None
depends_on = None

# (table, event, UPDATE's columns or None for any, topics): marketplace.core.cache.triggers.Trigger
PLAN = plan_from([
    ('api_tokens', 'delete', None, ('principals',)),
    ('api_tokens', 'update', ('revoked_at',), ('principals',)),
    ('application_lots', 'delete', None, ('assessment-queue',)),
    ('application_lots', 'insert', None, ('assessment-queue',)),
    ('application_lots', 'update', ('application_id', 'lot_id'), ('assessment-queue',)),
    ('applications', 'delete', None, ('assessment-queue',)),
    ('applications', 'insert', None, ('assessment-queue',)),
    ('applications', 'update', ('arrangement_id', 'decision_due_on', 'extended_at', 'organisation_id', 'reference', 'status', 'submitted_at'), ('assessment-queue',)),
    ('arrangement_lots', 'delete', None, ('register',)),
    ('arrangement_lots', 'insert', None, ('register',)),
    ('arrangement_lots', 'update', None, ('register',)),
    ('arrangements', 'delete', None, ('assessment-queue', 'register')),
    ('arrangements', 'insert', None, ('assessment-queue', 'register')),
    ('arrangements', 'update', None, ('assessment-queue', 'register')),
    ('capacity_commitments', 'delete', None, ('catalogue-search',)),
    ('capacity_commitments', 'insert', None, ('catalogue-search',)),
    ('capacity_commitments', 'update', None, ('catalogue-search',)),
    ('listing_areas', 'delete', None, ('catalogue-search',)),
    ('listing_areas', 'insert', None, ('catalogue-search',)),
    ('listing_areas', 'update', None, ('catalogue-search',)),
    ('listing_prices', 'delete', None, ('catalogue-search',)),
    ('listing_prices', 'insert', None, ('catalogue-search',)),
    ('listing_prices', 'update', None, ('catalogue-search',)),
    ('listing_search_areas', 'delete', None, ('catalogue-search',)),
    ('listing_search_areas', 'insert', None, ('catalogue-search',)),
    ('listing_search_areas', 'update', None, ('catalogue-search',)),
    ('listing_search_rows', 'delete', None, ('catalogue-search',)),
    ('listing_search_rows', 'insert', None, ('catalogue-search',)),
    ('listing_search_rows', 'update', None, ('catalogue-search',)),
    ('listings', 'delete', None, ('catalogue-search',)),
    ('listings', 'insert', None, ('catalogue-search',)),
    ('listings', 'update', None, ('catalogue-search',)),
    ('lot_memberships', 'delete', None, ('catalogue-search', 'register')),
    ('lot_memberships', 'insert', None, ('catalogue-search', 'register')),
    ('lot_memberships', 'update', None, ('register',)),
    ('lot_memberships', 'update', ('lot_id', 'organisation_id', 'pcc_area_id', 'region_id', 'status'), ('catalogue-search',)),
    ('memberships', 'delete', None, ('principals',)),
    ('memberships', 'insert', None, ('principals',)),
    ('memberships', 'update', None, ('principals',)),
    ('organisations', 'delete', None, ('assessment-queue', 'catalogue-search', 'principals', 'register')),
    ('organisations', 'insert', None, ('assessment-queue', 'catalogue-search', 'register')),
    ('organisations', 'update', None, ('principals',)),
    ('organisations', 'update', ('charity_number', 'companies_house_number', 'name', 'type'), ('register',)),
    ('organisations', 'update', ('name',), ('assessment-queue',)),
    ('organisations', 'update', ('name', 'type'), ('catalogue-search',)),
    ('users', 'delete', None, ('principals',)),
    ('users', 'update', None, ('principals',)),
])


def upgrade():
    with op.batch_alter_table('call_offs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('price_version_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f('fk_call_offs_price_version_id_listing_prices'),
            'listing_prices',
            ['price_version_id'],
            ['id'],
        )
    for statement in create_statements(op.get_bind().dialect.name, PLAN):
        op.execute(statement)


def downgrade():
    for statement in drop_statements(op.get_bind().dialect.name, PLAN):
        op.execute(statement)
    with op.batch_alter_table('call_offs', schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f('fk_call_offs_price_version_id_listing_prices'), type_='foreignkey'
        )
        batch_op.drop_column('price_version_id')
