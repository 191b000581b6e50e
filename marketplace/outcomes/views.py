"""Outcome pages: the provider claims an outcome with evidence; the lead buyer verifies or
rejects a claim, and proposes outcome terms for a live call-off, which the provider agrees or
rejects; evidence downloads; each funder's contingent liability. Views are thin: the rules are in
``marketplace.outcomes.services``."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user

from marketplace.accounts.decorators import roles_required
from marketplace.accounts.models import Role
from marketplace.accounts.session import current_organisation
from marketplace.accreditation import uploads
from marketplace.core.db import db
from marketplace.core.errors import BusinessRuleViolation
from marketplace.core.forms import parse_day, parse_whole_number
from marketplace.core.money import pounds_or_none
from marketplace.core.views_helpers import act_on_click, act_on_form
from marketplace.orders import permissions as order_permissions
from marketplace.orders import signals as orders_signals
from marketplace.orders.forms import ConfirmForm
from marketplace.orders.models import CallOff
from marketplace.outcomes import permissions, queries, services
from marketplace.outcomes.forms import ClaimForm, OutcomeTermForm, RejectForm
from marketplace.outcomes.models import OutcomeClaim, OutcomeTermStatus

bp = Blueprint("outcomes", __name__, template_folder="templates")

BUYERS = (Role.BUYER, Role.APPROVER)
PROVIDERS = (Role.PROVIDER_ADMIN, Role.PROVIDER_EDITOR)


def _call_off(call_off_id: int) -> CallOff:
    """A call-off the current organisation is party to (authority staff see all); else 404."""
    call_off = db.session.get(CallOff, call_off_id)
    if call_off is None or not order_permissions.can_see(
        current_user, current_organisation(), call_off
    ):
        abort(404)
    return call_off


def _claim(call_off: CallOff, claim_id: int) -> OutcomeClaim:
    claim = db.session.get(OutcomeClaim, claim_id)
    if claim is None or claim.call_off_id != call_off.id:
        abort(404)
    return claim


def _back(call_off_id: int):
    return redirect(url_for("orders.show", call_off_id=call_off_id, _anchor="outcomes"))


def _form_action(call_off: CallOff, form, template: str, act, success: str, **context):
    """Run ``act`` on a valid post and commit; a refusal shows its errors on the form."""
    if act_on_form(form, lambda: act(form), success):
        return _back(call_off.id)
    call_off = db.session.get(CallOff, call_off.id)
    return render_template(template, form=form, call_off=call_off, **context), (
        422 if form.errors else 200
    )


def _one_click(call_off: CallOff, act, success: str):
    act_on_click(ConfirmForm(), act, success)
    return _back(call_off.id)


# ---------------------------------------------------------------------------------------------
# Claims


@bp.route("/call-offs/<int:call_off_id>/outcome-claims/new", methods=["GET", "POST"])
@roles_required(*PROVIDERS)
def claim(call_off_id: int):
    call_off = _call_off(call_off_id)
    if not permissions.can_claim(current_user, current_organisation(), call_off):
        abort(403)
    terms = claimable_terms(call_off.id)
    if not terms:
        # Every agreed outcome has been claimed up to its cap (or none is agreed): nothing can
        # be claimed, so no form that could only be refused.
        flash(
            "There is nothing left to claim on this call-off: each agreed outcome has been "
            "claimed as many times as its cap allows.",
            "info",
        )
        return _back(call_off.id)
    form = ClaimForm()
    form.term_id.choices = [("", "Choose an outcome")] + [
        (str(t.id), f"{t.outcome} ({t.claims_left} of {t.cap} claims left)") for t in terms
    ]

    def act(form):
        upload = form.file.data
        has_file = upload is not None and getattr(upload, "filename", "")
        services.claim_outcome(
            current_user,
            call_off,
            services.ClaimDetails(
                term_id=parse_whole_number(form.term_id.data),
                achieved_on=parse_day(form.achieved_on.data),
                note=form.note.data or "",
            ),
            upload.filename if has_file else None,
            upload.stream if has_file else None,
        )

    return _form_action(
        call_off,
        form,
        "outcomes/claim.html",
        act,
        "Outcome claimed. The buyer has been asked to verify it.",
        terms=terms,
    )


@bp.post("/call-offs/<int:call_off_id>/outcome-claims/<int:claim_id>/verify")
@roles_required(*BUYERS)
def verify(call_off_id: int, claim_id: int):
    call_off = _call_off(call_off_id)
    claim = _claim(call_off, claim_id)
    return _one_click(
        call_off,
        lambda: services.verify_claim(current_user, claim),
        f"Claim {claim.reference} verified. It will be invoiced by the next invoice run.",
    )


@bp.route(
    "/call-offs/<int:call_off_id>/outcome-claims/<int:claim_id>/reject", methods=["GET", "POST"]
)
@roles_required(*BUYERS)
def reject(call_off_id: int, claim_id: int):
    call_off = _call_off(call_off_id)
    claim = _claim(call_off, claim_id)
    if not permissions.can_decide_claims(current_user, current_organisation(), call_off):
        abort(403)
    return _form_action(
        call_off,
        RejectForm(),
        "outcomes/reject_claim.html",
        lambda form: services.reject_claim(current_user, claim, form.reason.data),
        f"Claim {claim.reference} rejected. The provider has been told why.",
        claim=claim,
    )


@bp.get("/call-offs/<int:call_off_id>/outcome-claims/<int:claim_id>/evidence")
@roles_required(*BUYERS, *PROVIDERS, Role.AUTHORITY_ADMIN)
def evidence(call_off_id: int, claim_id: int):
    """Send a claim's evidence to the provider, the lead buyer and the authority."""
    call_off = _call_off(call_off_id)
    claim = _claim(call_off, claim_id)
    if not permissions.can_download_evidence(current_user, current_organisation(), call_off):
        abort(404)
    row = claim.evidence
    return uploads.evidence_download(row)


# ---------------------------------------------------------------------------------------------
# Terms added to a live call-off


@bp.route("/call-offs/<int:call_off_id>/outcome-terms/new", methods=["GET", "POST"])
@roles_required(*BUYERS)
def propose_term(call_off_id: int):
    call_off = _call_off(call_off_id)
    if not permissions.can_propose_terms(current_user, current_organisation(), call_off):
        abort(403)
    form = OutcomeTermForm()
    offered = call_off.offered_outcomes
    form.outcome.choices = [("", "Choose an outcome")] + [(o, o) for o in offered]

    def act(form):
        try:
            services.propose_term(
                current_user,
                call_off,
                services.OutcomeTermDetails(
                    outcome=form.outcome.data,
                    tariff_pence=pounds_or_none(form.tariff.data),
                    earliest_claim_on=parse_day(form.earliest_claim_on.data),
                    evidence_required=form.evidence_required.data,
                    cap=parse_whole_number(form.cap.data),
                ),
            )
        except BusinessRuleViolation as error:
            # The service names the tariff in pence; the form asks for pounds.
            raise BusinessRuleViolation(
                {("tariff" if k == "tariff_pence" else k): v for k, v in error.errors.items()}
            ) from None

    return _form_action(
        call_off,
        form,
        "outcomes/propose_term.html",
        act,
        "Outcome terms proposed. The provider has been asked to agree them.",
    )


@bp.post("/call-offs/<int:call_off_id>/outcome-terms/<int:term_id>/agree")
@roles_required(Role.PROVIDER_ADMIN)
def agree_term(call_off_id: int, term_id: int):
    call_off = _call_off(call_off_id)
    return _one_click(
        call_off,
        lambda: services.agree_term(current_user, call_off, term_id),
        "Outcome terms agreed: the call-off has a new version.",
    )


@bp.route(
    "/call-offs/<int:call_off_id>/outcome-terms/<int:term_id>/reject", methods=["GET", "POST"]
)
@roles_required(Role.PROVIDER_ADMIN)
def reject_term(call_off_id: int, term_id: int):
    call_off = _call_off(call_off_id)
    term = next((t for t in queries.terms_of(call_off.id) if t.id == term_id), None)
    if term is None:
        abort(404)
    if not permissions.can_decide_terms(current_user, current_organisation(), call_off):
        abort(403)
    return _form_action(
        call_off,
        RejectForm(),
        "outcomes/reject_term.html",
        lambda form: services.reject_term(current_user, call_off, term_id, form.reason.data),
        "Outcome terms rejected. The buyer has been told why.",
        term=term,
    )


# ---------------------------------------------------------------------------------------------
# Contingent liability


@bp.get("/contingent-liability")
@roles_required(*BUYERS)
def contingent_liability():
    organisation = current_organisation()
    if organisation is None:
        abort(403)
    return render_template(
        "outcomes/liability.html",
        organisation=organisation,
        liability=queries.contingent_liability(organisation.id),
    )


def claimable_terms(call_off_id: int) -> list:
    """The agreed outcome terms of a call-off that can still be claimed (claims left under the
    cap): the claim form offers these, and the call-off page offers the form only if any."""
    return [
        t
        for t in queries.terms_of(call_off_id)
        if t.status == OutcomeTermStatus.AGREED and t.claims_left > 0
    ]


def call_off_context(user, organisation, call_off: CallOff) -> dict:
    """What the call-off page shows of payment by results, and which actions it offers."""
    terms = queries.terms_of(call_off.id)
    return {
        "outcome_terms": terms,
        "outcome_claims": queries.claims_of(call_off.id),
        "outcome_can": {
            "claim": organisation is not None
            and permissions.can_claim(user, organisation, call_off)
            and any(t.status == OutcomeTermStatus.AGREED and t.claims_left > 0 for t in terms),
            "decide_claims": organisation is not None
            and permissions.can_decide_claims(user, organisation, call_off),
            "propose_terms": organisation is not None
            and permissions.can_propose_terms(user, organisation, call_off),
            "decide_terms": organisation is not None
            and permissions.can_decide_terms(user, organisation, call_off),
            "evidence": organisation is not None
            and permissions.can_download_evidence(user, organisation, call_off),
        },
    }


@orders_signals.call_off_page.connect
def call_off_page_values(call_off: CallOff, *, user, organisation) -> dict:
    """Payment by results on the call-off's page (``orders.signals.call_off_page``)."""
    return call_off_context(user, organisation, call_off)


@orders_signals.budgets_page.connect
def budgets_page_values(organisation) -> dict:
    """What payment by results could still cost, on the budgets page."""
    return {"contingent_pence": queries.contingent_liability(organisation.id).total_pence}
