"""The assessor's pages for renewed evidence: what waits, and checking one renewal.

A member uploads renewed evidence before (or after) the evidence it holds expires; it counts only
once an assessor accepts it here. Assessors and authority admins use these pages (anyone else gets
403); a renewal that does not exist answers 404.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import abort, flash, redirect, render_template, url_for
from flask_login import current_user
from sqlalchemy.orm import selectinload

from marketplace.accreditation.forms.assessment import RenewalDecisionForm
from marketplace.accreditation.models import (
    Answer,
    Application,
    ArrangementLot,
    Criterion,
    EvidenceRenewal,
    LotMembership,
)
from marketplace.accreditation.services import memberships as services
from marketplace.accreditation.views import bp
from marketplace.accreditation.views.assessment import assessor_required
from marketplace.core.clock import london_date
from marketplace.core.db import commit, db, rollback
from marketplace.core.errors import BusinessRuleViolation
from marketplace.core.views_helpers import apply_errors

# Service error keys → the form's fields.
DECISION_FIELDS = {"decision": "decision", "reason": "reason", "comment": "reason"}


@bp.get("/assessments/evidence")
@assessor_required
def renewals():
    return render_template(
        "accreditation/assessment/renewals.html",
        renewals=list(db.session.scalars(services.pending_renewals_query())),
        today=london_date(),
    )


def _renewal_or_404(renewal_id: int) -> EvidenceRenewal:
    renewal = db.session.scalar(
        sa.select(EvidenceRenewal)
        .where(EvidenceRenewal.id == renewal_id)
        .options(
            selectinload(EvidenceRenewal.file),
            selectinload(EvidenceRenewal.replaces_file),
            selectinload(EvidenceRenewal.submitted_by),
            selectinload(EvidenceRenewal.decided_by),
            selectinload(EvidenceRenewal.answer)
            .selectinload(Answer.application)
            .selectinload(Application.organisation),
            selectinload(EvidenceRenewal.answer)
            .selectinload(Answer.application)
            .selectinload(Application.arrangement),
            selectinload(EvidenceRenewal.answer)
            .selectinload(Answer.criterion)
            .selectinload(Criterion.lot)
            .selectinload(ArrangementLot.category),
        )
    )
    if renewal is None:
        abort(404)
    return renewal


def _memberships(renewal: EvidenceRenewal) -> list[LotMembership]:
    application = renewal.answer.application
    return list(
        db.session.scalars(
            sa.select(LotMembership)
            .where(
                LotMembership.organisation_id == application.organisation_id,
                LotMembership.arrangement_id == application.arrangement_id,
            )
            .options(
                selectinload(LotMembership.lot).selectinload(ArrangementLot.category),
                selectinload(LotMembership.region),
                selectinload(LotMembership.pcc_area),
            )
            .order_by(LotMembership.id)
        )
    )


@bp.route("/assessments/evidence/<int:renewal_id>", methods=["GET", "POST"])
@assessor_required
def renewed_evidence(renewal_id: int):
    renewal = _renewal_or_404(renewal_id)
    form = RenewalDecisionForm()
    if form.validate_on_submit():
        try:
            if form.accept:
                reinstated = services.accept_renewed_evidence(
                    current_user, renewal, form.reason.data or ""
                )
            else:
                services.reject_renewed_evidence(current_user, renewal, form.reason.data or "")
        except BusinessRuleViolation as error:
            rollback()
            apply_errors(
                form,
                BusinessRuleViolation(
                    {DECISION_FIELDS.get(k, "decision"): v for k, v in error.errors.items()}
                ),
            )
            renewal = _renewal_or_404(renewal_id)
        else:
            commit()
            organisation = renewal.answer.application.organisation.name
            if form.accept:
                message = f"The renewed evidence from {organisation} has been accepted."
                if len(reinstated) == 1:
                    message += " Its suspended membership is active again."
                elif reinstated:
                    message += f" Its {len(reinstated)} suspended memberships are active again."
            else:
                message = f"The renewed evidence from {organisation} has been rejected."
            flash(message + " The provider has been emailed.", "success")
            return redirect(url_for("accreditation.renewals"))
    return render_template(
        "accreditation/assessment/renewal.html",
        renewal=renewal,
        memberships=_memberships(renewal),
        form=form,
        today=london_date(),
    )
