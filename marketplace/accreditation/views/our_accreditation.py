"""A provider's "Our accreditation" page: every lot membership, expiring evidence, what to do.

Provider administrators and editors see the page; administrators renew evidence and answer
requests for a renewed self-declaration. Another organisation's evidence or request answers 404.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import abort, flash, redirect, render_template, url_for
from flask_login import current_user
from sqlalchemy.orm import selectinload

from marketplace.accounts.decorators import roles_required
from marketplace.accounts.models import Role
from marketplace.accounts.session import current_organisation
from marketplace.accreditation import queries, uploads
from marketplace.accreditation.forms.applications import (
    ConfirmForm,
    RenewEvidenceForm,
    parse_day,
)
from marketplace.accreditation.models import (
    Answer,
    Application,
    ArrangementLot,
    Criterion,
    EvidenceRenewal,
    LotMembership,
    RedeclarationRequest,
    RenewalStatus,
)
from marketplace.accreditation.permissions import can_apply
from marketplace.accreditation.services import memberships as services
from marketplace.accreditation.services.evidence import expiring_within
from marketplace.accreditation.views import bp
from marketplace.core.clock import london_date
from marketplace.core.db import commit, db, rollback
from marketplace.core.errors import BusinessRuleViolation
from marketplace.core.views_helpers import apply_errors

RECENT_RENEWALS = 10
RENEW_FIELDS = {"file": "file", "expires_on": "expires_on", "answer": ""}


def _provider_organisation():
    organisation = current_organisation()
    if organisation is None or not organisation.is_provider:
        abort(403)
    return organisation


def _open_requests(organisation) -> list[RedeclarationRequest]:
    return list(
        db.session.scalars(
            sa.select(RedeclarationRequest)
            .join(LotMembership, LotMembership.id == RedeclarationRequest.membership_id)
            .where(
                LotMembership.organisation_id == organisation.id,
                RedeclarationRequest.answered_at.is_(None),
            )
            .options(
                selectinload(RedeclarationRequest.membership).selectinload(
                    LotMembership.arrangement
                ),
                selectinload(RedeclarationRequest.membership)
                .selectinload(LotMembership.lot)
                .selectinload(ArrangementLot.category),
                selectinload(RedeclarationRequest.membership).selectinload(LotMembership.region),
                selectinload(RedeclarationRequest.membership).selectinload(LotMembership.pcc_area),
            )
            .order_by(RedeclarationRequest.due_on, RedeclarationRequest.id)
        )
    )


def _recent_renewals(organisation) -> list[EvidenceRenewal]:
    """The organisation's latest renewed evidence, newest first, with what the page shows."""
    return list(
        db.session.scalars(
            sa.select(EvidenceRenewal)
            .join(Answer, Answer.id == EvidenceRenewal.answer_id)
            .join(Application, Application.id == Answer.application_id)
            .where(
                Application.organisation_id == organisation.id,
                EvidenceRenewal.status != RenewalStatus.SUPERSEDED,
            )
            .options(
                selectinload(EvidenceRenewal.file),
                selectinload(EvidenceRenewal.answer)
                .selectinload(Answer.criterion)
                .selectinload(Criterion.lot)
                .selectinload(ArrangementLot.category),
            )
            .order_by(EvidenceRenewal.submitted_at.desc(), EvidenceRenewal.id.desc())
            .limit(RECENT_RENEWALS)
        )
    )


@bp.get("/memberships")
@roles_required(Role.PROVIDER_ADMIN, Role.PROVIDER_EDITOR)
def memberships():
    organisation = _provider_organisation()
    today = london_date()
    expiring = expiring_within(organisation.id, today)
    return render_template(
        "accreditation/memberships/index.html",
        organisation=organisation,
        memberships=list(db.session.scalars(queries.organisation_memberships_query(organisation))),
        expiring=expiring,
        latest_renewals=services.latest_renewals([answer.id for answer in expiring]),
        renewals=_recent_renewals(organisation),
        requests=_open_requests(organisation),
        today=today,
        can_act=can_apply(current_user, organisation),
    )


def _answer_or_404(answer_id: int) -> Answer:
    answer = db.session.scalar(
        sa.select(Answer)
        .where(Answer.id == answer_id)
        .options(
            selectinload(Answer.application).selectinload(Application.organisation),
            selectinload(Answer.criterion),
            selectinload(Answer.file),
        )
    )
    if answer is None or not can_apply(current_user, answer.application.organisation):
        abort(404)
    return answer


@bp.route("/memberships/evidence/<int:answer_id>/renew", methods=["GET", "POST"])
@roles_required(Role.PROVIDER_ADMIN)
def renew_evidence(answer_id: int):
    answer = _answer_or_404(answer_id)
    form = RenewEvidenceForm()
    if form.validate_on_submit():
        upload = form.file.data
        try:
            evidence = uploads.store_evidence(
                current_user, answer.application.organisation, upload.filename, upload.stream
            )
            services.renew_evidence(current_user, answer, evidence, parse_day(form.expires_on.data))
        except BusinessRuleViolation as error:
            rollback()
            apply_errors(
                form,
                BusinessRuleViolation({RENEW_FIELDS.get(k, k): v for k, v in error.errors.items()}),
            )
            answer = _answer_or_404(answer_id)
        else:
            commit()
            flash(
                "Your renewed evidence has been sent. The contracting authority will check it.",
                "success",
            )
            return redirect(url_for("accreditation.memberships"))
    latest = services.latest_renewals([answer.id]).get(answer.id)
    return render_template(
        "accreditation/memberships/renew.html", form=form, answer=answer, latest=latest
    )


@bp.route("/memberships/redeclarations/<int:request_id>", methods=["GET", "POST"])
@roles_required(Role.PROVIDER_ADMIN)
def redeclare(request_id: int):
    row = db.session.get(RedeclarationRequest, request_id)
    if row is None or not can_apply(current_user, row.membership.organisation):
        abort(404)
    form = ConfirmForm()
    form.submit.label.text = "Confirm declaration"
    errors = None
    if form.validate_on_submit():
        try:
            services.answer_redeclaration(current_user, row)
        except BusinessRuleViolation as error:
            rollback()
            errors = {"": [m for messages in error.errors.values() for m in messages]}
            row = db.session.get(RedeclarationRequest, request_id)
        else:
            commit()
            flash("Thank you. Your declaration has been renewed.", "success")
            return redirect(url_for("accreditation.memberships"))
    return render_template(
        "accreditation/memberships/redeclare.html",
        form=form,
        request_row=row,
        errors=errors or (form.errors or None),
    )
