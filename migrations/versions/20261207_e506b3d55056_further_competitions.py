"""further competitions

Revision ID: e506b3d55056
Revises: e3a91f0c7d42
Create Date: 2026-12-07 20:39:39.413755

"""
from alembic import op
import sqlalchemy as sa

import marketplace.core.db


# revision identifiers, used by Alembic.
revision = 'e506b3d55056'
down_revision = 'e3a91f0c7d42'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('competitions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('reference', sa.String(length=20), nullable=True),
    sa.Column('status', sa.Enum('draft', 'published', 'closed', 'evaluated', 'awarded', 'cancelled', 'no_award', name='competition_status', native_enum=False, create_constraint=True, length=17), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('arrangement_id', sa.Integer(), nullable=False),
    sa.Column('lot_id', sa.Integer(), nullable=False),
    sa.Column('category_id', sa.Integer(), nullable=False),
    sa.Column('buyer_id', sa.Integer(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('title', sa.String(length=120), nullable=False),
    sa.Column('need', sa.Text(), nullable=False),
    sa.Column('estimated_value_pence', sa.BigInteger(), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('unit', sa.Enum('session', 'hour', 'day', 'week', 'place', 'programme', 'bed_night', 'referral', name='competition_unit', native_enum=False, create_constraint=True, length=17), nullable=False),
    sa.Column('contract_start', sa.Date(), nullable=False),
    sa.Column('contract_end', sa.Date(), nullable=False),
    sa.Column('missed_sessions_chargeable', sa.Boolean(), nullable=False),
    sa.Column('price_weight', sa.Integer(), nullable=False),
    sa.Column('price_formula', sa.Enum('lowest_over_price', name='price_formula', native_enum=False, create_constraint=True, length=25), nullable=False),
    sa.Column('tie_break', sa.Enum('quality_then_price', 'price_then_quality', name='tie_break', native_enum=False, create_constraint=True, length=26), nullable=False),
    sa.Column('clarification_deadline', marketplace.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('bid_deadline', marketplace.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('standstill_working_days', sa.Integer(), nullable=False),
    sa.Column('standstill_reason', sa.String(length=2000), nullable=False),
    sa.Column('single_evaluator_reason', sa.String(length=2000), nullable=False),
    sa.Column('published_at', marketplace.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('published_by_id', sa.Integer(), nullable=True),
    sa.Column('closed_at', marketplace.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('evaluated_at', marketplace.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('award_decided_at', marketplace.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('award_decided_by_id', sa.Integer(), nullable=True),
    sa.Column('award_reason', sa.Text(), nullable=False),
    sa.Column('winning_bid_id', sa.Integer(), nullable=True),
    sa.Column('standstill_ends_at', marketplace.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('awarded_at', marketplace.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('awarded_by_id', sa.Integer(), nullable=True),
    sa.Column('call_off_id', sa.Integer(), nullable=True),
    sa.Column('cancelled_at', marketplace.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('cancelled_by_id', sa.Integer(), nullable=True),
    sa.Column('cancellation_reason', sa.String(length=2000), nullable=False),
    sa.Column('no_award_at', marketplace.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('no_award_reason', sa.String(length=2000), nullable=False),
    sa.Column('bids_received', sa.Integer(), nullable=True),
    sa.Column('bids_from_vcse', sa.Integer(), nullable=True),
    sa.Column('bids_from_sme', sa.Integer(), nullable=True),
    sa.Column('created_at', marketplace.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', marketplace.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status <> 'awarded' OR (awarded_at IS NOT NULL AND winning_bid_id IS NOT NULL AND call_off_id IS NOT NULL)", name=op.f('ck_competitions_awarded_has_call_off')),
    sa.CheckConstraint("status <> 'cancelled' OR (cancelled_at IS NOT NULL AND cancellation_reason <> '')", name=op.f('ck_competitions_cancelled_has_reason')),
    sa.CheckConstraint("status <> 'no_award' OR (no_award_at IS NOT NULL AND no_award_reason <> '')", name=op.f('ck_competitions_no_award_has_reason')),
    sa.CheckConstraint("status = 'draft' OR (published_at IS NOT NULL AND bid_deadline IS NOT NULL)", name=op.f('ck_competitions_published_has_date')),
    sa.CheckConstraint('bid_deadline IS NULL OR clarification_deadline IS NULL OR clarification_deadline <= bid_deadline', name=op.f('ck_competitions_clarifications_before_bids')),
    sa.CheckConstraint('contract_end >= contract_start', name=op.f('ck_competitions_contract_dates_in_order')),
    sa.CheckConstraint('estimated_value_pence > 0 AND estimated_value_pence <= 100000000000', name=op.f('ck_competitions_estimated_value_range')),
    sa.CheckConstraint('price_weight >= 0 AND price_weight <= 100', name=op.f('ck_competitions_price_weight_range')),
    sa.CheckConstraint('quantity > 0 AND quantity <= 1000000', name=op.f('ck_competitions_quantity_range')),
    sa.CheckConstraint('standstill_working_days >= 0', name=op.f('ck_competitions_standstill_not_negative')),
    sa.ForeignKeyConstraint(['arrangement_id'], ['arrangements.id'], name=op.f('fk_competitions_arrangement_id_arrangements')),
    sa.ForeignKeyConstraint(['award_decided_by_id'], ['users.id'], name=op.f('fk_competitions_award_decided_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['awarded_by_id'], ['users.id'], name=op.f('fk_competitions_awarded_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['buyer_id'], ['organisations.id'], name=op.f('fk_competitions_buyer_id_organisations')),
    sa.ForeignKeyConstraint(['call_off_id'], ['call_offs.id'], name=op.f('fk_competitions_call_off_id_call_offs')),
    sa.ForeignKeyConstraint(['cancelled_by_id'], ['users.id'], name=op.f('fk_competitions_cancelled_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['category_id'], ['service_categories.id'], name=op.f('fk_competitions_category_id_service_categories')),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_competitions_created_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['lot_id'], ['arrangement_lots.id'], name=op.f('fk_competitions_lot_id_arrangement_lots')),
    sa.ForeignKeyConstraint(['published_by_id'], ['users.id'], name=op.f('fk_competitions_published_by_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_competitions')),
    sa.UniqueConstraint('call_off_id', name=op.f('uq_competitions_call_off_id')),
    sa.UniqueConstraint('reference', name=op.f('uq_competitions_reference'))
    )
    with op.batch_alter_table('competitions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_competitions_arrangement_id'), ['arrangement_id'], unique=False)
        batch_op.create_index('ix_competitions_buyer_status', ['buyer_id', 'status'], unique=False)
        batch_op.create_index(batch_op.f('ix_competitions_lot_id'), ['lot_id'], unique=False)
        batch_op.create_index('ix_competitions_status_deadline', ['status', 'bid_deadline'], unique=False)

    op.create_table('bids',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('competition_id', sa.Integer(), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.Enum('draft', 'submitted', 'withdrawn', 'excluded', 'scored', name='bid_status', native_enum=False, create_constraint=True, length=17), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', marketplace.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', marketplace.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('unit_price_pence', sa.BigInteger(), nullable=True),
    sa.Column('vat_treatment', sa.Enum('standard', 'reduced', 'zero', 'exempt', 'outside_scope', name='bid_vat_treatment', native_enum=False, create_constraint=True, length=21), nullable=True),
    sa.Column('net_pence', sa.BigInteger(), nullable=True),
    sa.Column('vat_pence', sa.BigInteger(), nullable=True),
    sa.Column('gross_pence', sa.BigInteger(), nullable=True),
    sa.Column('bidder_is_vcse', sa.Boolean(), nullable=True),
        sa.Column('bidder_is_sme', sa.Boolean(), nullable=True),
        sa.Column('submitted_at', marketplace.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('submitted_by_id', sa.Integer(), nullable=True),
    sa.Column('withdrawn_at', marketplace.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('excluded_at', marketplace.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('exclusion_reason', sa.String(length=2000), nullable=False),
    sa.Column('price_score', sa.Integer(), nullable=True),
    sa.Column('quality_score', sa.Integer(), nullable=True),
    sa.Column('social_value_score', sa.Integer(), nullable=True),
    sa.Column('total_score', sa.Integer(), nullable=True),
    sa.Column('rank', sa.Integer(), nullable=True),
    sa.CheckConstraint("status <> 'excluded' OR exclusion_reason <> ''", name=op.f('ck_bids_excluded_has_reason')),
    sa.CheckConstraint("status <> 'submitted' OR (submitted_at IS NOT NULL AND unit_price_pence IS NOT NULL AND vat_treatment IS NOT NULL)", name=op.f('ck_bids_submitted_has_price')),
    sa.CheckConstraint('gross_pence IS NULL OR gross_pence <= 100000000000', name=op.f('ck_bids_value_range')),
    sa.CheckConstraint('unit_price_pence IS NULL OR unit_price_pence >= 0', name=op.f('ck_bids_price_not_negative')),
    sa.ForeignKeyConstraint(['competition_id'], ['competitions.id'], name=op.f('fk_bids_competition_id_competitions'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_bids_created_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id'], name=op.f('fk_bids_organisation_id_organisations')),
    sa.ForeignKeyConstraint(['submitted_by_id'], ['users.id'], name=op.f('fk_bids_submitted_by_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bids')),
    sa.UniqueConstraint('competition_id', 'organisation_id', name='uq_bids_bidder')
    )
    with op.batch_alter_table('bids', schema=None) as batch_op:
        batch_op.create_index('ix_bids_competition_status', ['competition_id', 'status'], unique=False)
        batch_op.create_index(batch_op.f('ix_bids_organisation_id'), ['organisation_id'], unique=False)

    # The winning bid's key is added once bids exist (the two tables refer to each other).
    with op.batch_alter_table('competitions', schema=None) as batch_op:
        batch_op.create_foreign_key(
            'fk_competitions_winning_bid', 'bids', ['winning_bid_id'], ['id']
        )

    op.create_table('clarifications',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('competition_id', sa.Integer(), nullable=False),
    sa.Column('asked_by_organisation_id', sa.Integer(), nullable=False),
    sa.Column('asked_by_id', sa.Integer(), nullable=True),
    sa.Column('question', sa.String(length=4000), nullable=False),
    sa.Column('asked_at', marketplace.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('answer', sa.String(length=4000), nullable=True),
    sa.Column('answered_at', marketplace.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('answered_by_id', sa.Integer(), nullable=True),
    sa.CheckConstraint('(answered_at IS NULL) = (answer IS NULL)', name=op.f('ck_clarifications_answered_has_answer')),
    sa.ForeignKeyConstraint(['answered_by_id'], ['users.id'], name=op.f('fk_clarifications_answered_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['asked_by_id'], ['users.id'], name=op.f('fk_clarifications_asked_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['asked_by_organisation_id'], ['organisations.id'], name=op.f('fk_clarifications_asked_by_organisation_id_organisations')),
    sa.ForeignKeyConstraint(['competition_id'], ['competitions.id'], name=op.f('fk_clarifications_competition_id_competitions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_clarifications'))
    )
    with op.batch_alter_table('clarifications', schema=None) as batch_op:
        batch_op.create_index('ix_clarifications_competition', ['competition_id', 'asked_at'], unique=False)

    op.create_table('competition_areas',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('competition_id', sa.Integer(), nullable=False),
    sa.Column('region_id', sa.Integer(), nullable=True),
    sa.Column('pcc_area_id', sa.Integer(), nullable=True),
    sa.CheckConstraint('(region_id IS NULL) != (pcc_area_id IS NULL)', name=op.f('ck_competition_areas_region_or_pcc_area')),
    sa.ForeignKeyConstraint(['competition_id'], ['competitions.id'], name=op.f('fk_competition_areas_competition_id_competitions'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['pcc_area_id'], ['pcc_areas.id'], name=op.f('fk_competition_areas_pcc_area_id_pcc_areas')),
    sa.ForeignKeyConstraint(['region_id'], ['probation_regions.id'], name=op.f('fk_competition_areas_region_id_probation_regions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_competition_areas'))
    )
    with op.batch_alter_table('competition_areas', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_competition_areas_competition_id'), ['competition_id'], unique=False)

    op.create_table('competition_documents',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('competition_id', sa.Integer(), nullable=False),
    sa.Column('original_name', sa.String(length=255), nullable=False),
    sa.Column('stored_name', sa.String(length=64), nullable=False),
    sa.Column('content_type', sa.String(length=100), nullable=False),
    sa.Column('size_bytes', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('uploaded_by_id', sa.Integer(), nullable=True),
    sa.Column('uploaded_at', marketplace.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('size_bytes > 0 AND size_bytes <= 10485760', name=op.f('ck_competition_documents_size')),
    sa.ForeignKeyConstraint(['competition_id'], ['competitions.id'], name=op.f('fk_competition_documents_competition_id_competitions'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['uploaded_by_id'], ['users.id'], name=op.f('fk_competition_documents_uploaded_by_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_competition_documents')),
    sa.UniqueConstraint('stored_name', name=op.f('uq_competition_documents_stored_name'))
    )
    with op.batch_alter_table('competition_documents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_competition_documents_competition_id'), ['competition_id'], unique=False)

    op.create_table('competition_evaluators',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('competition_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('declared_at', marketplace.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('has_conflict', sa.Boolean(), nullable=True),
    sa.Column('conflict_details', sa.String(length=2000), nullable=False),
    sa.CheckConstraint('(declared_at IS NULL) = (has_conflict IS NULL)', name=op.f('ck_competition_evaluators_declared_has_answer')),
    sa.ForeignKeyConstraint(['competition_id'], ['competitions.id'], name=op.f('fk_competition_evaluators_competition_id_competitions'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id'], name=op.f('fk_competition_evaluators_organisation_id_organisations')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_competition_evaluators_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_competition_evaluators')),
    sa.UniqueConstraint('competition_id', 'user_id', name='uq_competition_evaluators')
    )
    with op.batch_alter_table('competition_evaluators', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_competition_evaluators_competition_id'), ['competition_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_competition_evaluators_user_id'), ['user_id'], unique=False)

    op.create_table('competition_funders',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('competition_id', sa.Integer(), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('basis_points', sa.Integer(), nullable=False),
    sa.CheckConstraint('basis_points > 0 AND basis_points <= 10000', name=op.f('ck_competition_funders_basis_points_range')),
    sa.ForeignKeyConstraint(['competition_id'], ['competitions.id'], name=op.f('fk_competition_funders_competition_id_competitions'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id'], name=op.f('fk_competition_funders_organisation_id_organisations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_competition_funders')),
    sa.UniqueConstraint('competition_id', 'organisation_id', name='uq_competition_funders')
    )
    with op.batch_alter_table('competition_funders', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_competition_funders_competition_id'), ['competition_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_competition_funders_organisation_id'), ['organisation_id'], unique=False)

    op.create_table('competition_questions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('competition_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('quality', 'social_value', 'pass_fail', name='question_kind', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('text', sa.String(length=2000), nullable=False),
    sa.Column('scoring_scheme', sa.String(length=4000), nullable=False),
    sa.Column('word_limit', sa.Integer(), nullable=True),
    sa.Column('weight', sa.Integer(), nullable=False),
    sa.Column('max_score', sa.Integer(), nullable=False),
    sa.CheckConstraint("kind <> 'pass_fail' OR weight = 0", name=op.f('ck_competition_questions_pass_fail_has_no_weight')),
    sa.CheckConstraint('max_score >= 1 AND max_score <= 10', name=op.f('ck_competition_questions_max_score_range')),
    sa.CheckConstraint('weight >= 0 AND weight <= 100', name=op.f('ck_competition_questions_weight_range')),
    sa.CheckConstraint('word_limit IS NULL OR (word_limit > 0 AND word_limit <= 5000)', name=op.f('ck_competition_questions_word_limit_range')),
    sa.ForeignKeyConstraint(['competition_id'], ['competitions.id'], name=op.f('fk_competition_questions_competition_id_competitions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_competition_questions'))
    )
    with op.batch_alter_table('competition_questions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_competition_questions_competition_id'), ['competition_id'], unique=False)

    op.create_table('invited_providers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('competition_id', sa.Integer(), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('invited_at', marketplace.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('because', sa.Enum('member_at_publication', 'admitted_before_deadline', name='invited_because', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.ForeignKeyConstraint(['competition_id'], ['competitions.id'], name=op.f('fk_invited_providers_competition_id_competitions'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id'], name=op.f('fk_invited_providers_organisation_id_organisations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_invited_providers')),
    sa.UniqueConstraint('competition_id', 'organisation_id', name='uq_invited_providers')
    )
    with op.batch_alter_table('invited_providers', schema=None) as batch_op:
        batch_op.create_index('ix_invited_providers_organisation', ['organisation_id', 'competition_id'], unique=False)

    op.create_table('assessment_summaries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('bid_id', sa.Integer(), nullable=False),
    sa.Column('competition_id', sa.Integer(), nullable=False),
    sa.Column('successful', sa.Boolean(), nullable=False),
    sa.Column('content', sa.JSON(), nullable=False),
    sa.Column('created_at', marketplace.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['bid_id'], ['bids.id'], name=op.f('fk_assessment_summaries_bid_id_bids'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['competition_id'], ['competitions.id'], name=op.f('fk_assessment_summaries_competition_id_competitions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_assessment_summaries')),
    sa.UniqueConstraint('bid_id', name=op.f('uq_assessment_summaries_bid_id'))
    )
    with op.batch_alter_table('assessment_summaries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_assessment_summaries_competition_id'), ['competition_id'], unique=False)

    op.create_table('bid_answers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('bid_id', sa.Integer(), nullable=False),
    sa.Column('question_id', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('meets_requirement', sa.Boolean(), nullable=True),
    sa.ForeignKeyConstraint(['bid_id'], ['bids.id'], name=op.f('fk_bid_answers_bid_id_bids'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['question_id'], ['competition_questions.id'], name=op.f('fk_bid_answers_question_id_competition_questions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bid_answers')),
    sa.UniqueConstraint('bid_id', 'question_id', name='uq_bid_answers')
    )
    with op.batch_alter_table('bid_answers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_bid_answers_question_id'), ['question_id'], unique=False)

    op.create_table('bid_price_lines',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('bid_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('description', sa.String(length=500), nullable=False),
    sa.Column('amount_pence', sa.BigInteger(), nullable=False),
    sa.CheckConstraint('amount_pence >= 0', name=op.f('ck_bid_price_lines_amount_not_negative')),
    sa.ForeignKeyConstraint(['bid_id'], ['bids.id'], name=op.f('fk_bid_price_lines_bid_id_bids'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bid_price_lines'))
    )
    with op.batch_alter_table('bid_price_lines', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_bid_price_lines_bid_id'), ['bid_id'], unique=False)

    op.create_table('consortium_members',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('bid_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.Enum('member', 'subcontractor', name='consortium_role', native_enum=False, create_constraint=True, length=21), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=True),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('share_basis_points', sa.Integer(), nullable=False),
    sa.CheckConstraint("role <> 'member' OR organisation_id IS NOT NULL", name=op.f('ck_consortium_members_member_is_organisation')),
    sa.CheckConstraint('share_basis_points > 0 AND share_basis_points < 10000', name=op.f('ck_consortium_members_share_range')),
    sa.ForeignKeyConstraint(['bid_id'], ['bids.id'], name=op.f('fk_consortium_members_bid_id_bids'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id'], name=op.f('fk_consortium_members_organisation_id_organisations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consortium_members'))
    )
    with op.batch_alter_table('consortium_members', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_consortium_members_bid_id'), ['bid_id'], unique=False)

    op.create_table('evaluator_scores',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('bid_id', sa.Integer(), nullable=False),
    sa.Column('question_id', sa.Integer(), nullable=False),
    sa.Column('evaluator_id', sa.Integer(), nullable=False),
    sa.Column('score', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(length=2000), nullable=False),
    sa.Column('scored_at', marketplace.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('score >= 0', name=op.f('ck_evaluator_scores_score_not_negative')),
    sa.ForeignKeyConstraint(['bid_id'], ['bids.id'], name=op.f('fk_evaluator_scores_bid_id_bids'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['evaluator_id'], ['competition_evaluators.id'], name=op.f('fk_evaluator_scores_evaluator_id_competition_evaluators'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['question_id'], ['competition_questions.id'], name=op.f('fk_evaluator_scores_question_id_competition_questions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_evaluator_scores')),
    sa.UniqueConstraint('bid_id', 'question_id', 'evaluator_id', name='uq_evaluator_scores')
    )
    with op.batch_alter_table('evaluator_scores', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_evaluator_scores_bid_id'), ['bid_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_evaluator_scores_evaluator_id'), ['evaluator_id'], unique=False)

    op.create_table('moderated_scores',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('bid_id', sa.Integer(), nullable=False),
    sa.Column('question_id', sa.Integer(), nullable=False),
    sa.Column('score', sa.Integer(), nullable=True),
    sa.Column('passed', sa.Boolean(), nullable=True),
    sa.Column('reason', sa.String(length=2000), nullable=False),
    sa.Column('moderated_at', marketplace.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('moderated_by_id', sa.Integer(), nullable=True),
    sa.CheckConstraint('(score IS NULL) != (passed IS NULL)', name=op.f('ck_moderated_scores_score_or_pass')),
    sa.CheckConstraint('score IS NULL OR score >= 0', name=op.f('ck_moderated_scores_score_not_negative')),
    sa.ForeignKeyConstraint(['bid_id'], ['bids.id'], name=op.f('fk_moderated_scores_bid_id_bids'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['moderated_by_id'], ['users.id'], name=op.f('fk_moderated_scores_moderated_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['question_id'], ['competition_questions.id'], name=op.f('fk_moderated_scores_question_id_competition_questions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_moderated_scores')),
    sa.UniqueConstraint('bid_id', 'question_id', name='uq_moderated_scores')
    )
    with op.batch_alter_table('moderated_scores', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_moderated_scores_bid_id'), ['bid_id'], unique=False)

    op.create_table('social_value_commitments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('bid_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('what', sa.String(length=500), nullable=False),
    sa.Column('how_much', sa.String(length=500), nullable=False),
    sa.Column('by_when', sa.Date(), nullable=False),
    sa.ForeignKeyConstraint(['bid_id'], ['bids.id'], name=op.f('fk_social_value_commitments_bid_id_bids'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_social_value_commitments'))
    )
    with op.batch_alter_table('social_value_commitments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_social_value_commitments_bid_id'), ['bid_id'], unique=False)



def downgrade():
    with op.batch_alter_table('competitions', schema=None) as batch_op:
        batch_op.drop_constraint('fk_competitions_winning_bid', type_='foreignkey')

    with op.batch_alter_table('social_value_commitments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_social_value_commitments_bid_id'))

    op.drop_table('social_value_commitments')
    with op.batch_alter_table('moderated_scores', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_moderated_scores_bid_id'))

    op.drop_table('moderated_scores')
    with op.batch_alter_table('evaluator_scores', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_evaluator_scores_evaluator_id'))
        batch_op.drop_index(batch_op.f('ix_evaluator_scores_bid_id'))

    op.drop_table('evaluator_scores')
    with op.batch_alter_table('consortium_members', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_consortium_members_bid_id'))

    op.drop_table('consortium_members')
    with op.batch_alter_table('bid_price_lines', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_bid_price_lines_bid_id'))

    op.drop_table('bid_price_lines')
    with op.batch_alter_table('bid_answers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_bid_answers_question_id'))

    op.drop_table('bid_answers')
    with op.batch_alter_table('assessment_summaries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_assessment_summaries_competition_id'))

    op.drop_table('assessment_summaries')
    with op.batch_alter_table('invited_providers', schema=None) as batch_op:
        batch_op.drop_index('ix_invited_providers_organisation')

    op.drop_table('invited_providers')
    with op.batch_alter_table('competition_questions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_competition_questions_competition_id'))

    op.drop_table('competition_questions')
    with op.batch_alter_table('competition_funders', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_competition_funders_organisation_id'))
        batch_op.drop_index(batch_op.f('ix_competition_funders_competition_id'))

    op.drop_table('competition_funders')
    with op.batch_alter_table('competition_evaluators', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_competition_evaluators_user_id'))
        batch_op.drop_index(batch_op.f('ix_competition_evaluators_competition_id'))

    op.drop_table('competition_evaluators')
    with op.batch_alter_table('competition_documents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_competition_documents_competition_id'))

    op.drop_table('competition_documents')
    with op.batch_alter_table('competition_areas', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_competition_areas_competition_id'))

    op.drop_table('competition_areas')
    with op.batch_alter_table('clarifications', schema=None) as batch_op:
        batch_op.drop_index('ix_clarifications_competition')

    op.drop_table('clarifications')
    with op.batch_alter_table('bids', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_bids_organisation_id'))
        batch_op.drop_index('ix_bids_competition_status')

    op.drop_table('bids')
    with op.batch_alter_table('competitions', schema=None) as batch_op:
        batch_op.drop_index('ix_competitions_status_deadline')
        batch_op.drop_index(batch_op.f('ix_competitions_lot_id'))
        batch_op.drop_index('ix_competitions_buyer_status')
        batch_op.drop_index(batch_op.f('ix_competitions_arrangement_id'))

    op.drop_table('competitions')
