"""Call-off pages: buy from a listing (question page, check your answers, confirmation), the
call-offs one's organisation is party to (with filters and CSV), one call-off with its timeline
and the actions the reader may take, and the organisation's budgets. Views are thin: the rules
are in ``marketplace.orders.services``."""

from __future__ import annotations

import csv
import io
import json
import secrets
from datetime import date

import sqlalchemy as sa
from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_required
from sqlalchemy.exc import IntegrityError

from marketplace.accounts.decorators import roles_required
from marketplace.accounts.models import COMMISSIONER_TYPES, Organisation, Role
from marketplace.accounts.permissions import can_view_audit
from marketplace.accounts.queries import page_number, paginate
from marketplace.accounts.session import current_organisation
from marketplace.catalogue.queries import visible_listing
from marketplace.catalogue.rate_cards import safe_cell
from marketplace.core import clock
from marketplace.core.audit import AuditEvent
from marketplace.core.db import commit, db, parse_id, rollback
from marketplace.core.errors import BusinessRuleViolation, DomainError, NotFound, PermissionDenied
from marketplace.core.filters import govuk_date
from marketplace.core.forms import parse_day, parse_whole_number
from marketplace.core.money import pounds_or_none
from marketplace.core.views_helpers import act_on_click, act_on_form
from marketplace.orders import permissions
from marketplace.orders import signals as orders_signals
from marketplace.orders.forms import (
    CancelForm,
    ConfirmForm,
    DeclineForm,
    DeclineFundingForm,
    DeliveryForm,
    PlaceCallOffForm,
    PlaceConfirmForm,
    RejectVariationForm,
    ResplitForm,
    VariationForm,
    complete_form,
)
from marketplace.orders.models import CallOff, CallOffStatus, ChoiceReason, VariationStatus
from marketplace.orders.queries import CallOffFilters, budgets_of, call_offs_query, waiting_first
from marketplace.orders.services import call_offs, responses, route
from marketplace.orders.services import delivery as order_delivery
from marketplace.orders.services import details as order_details
from marketplace.orders.services import funding as order_funding
from marketplace.orders.services import placing as order_placing
from marketplace.orders.services import variations as order_variations

bp = Blueprint("orders", __name__, url_prefix="/call-offs", template_folder="templates")

PARTIES = tuple(permissions.PARTY_ROLES)
PER_PAGE = 25
WAITING_SHOWN = 10  # above the list; the rest through its "waiting for us" filter
DRAFTS_KEY = "call_off_drafts"
MAX_DRAFTS = 5


def _organisation() -> Organisation:
    organisation = current_organisation()
    if organisation is None:
        abort(403)
    return organisation


def _call_off(call_off_id: int) -> CallOff:
    """A call-off the current organisation is party to (authority staff see all); else 404."""
    call_off = db.session.get(CallOff, call_off_id)
    if call_off is None or not permissions.can_see(current_user, current_organisation(), call_off):
        abort(404)
    return call_off


# ---------------------------------------------------------------------------------------------
# Buying: question page, check your answers, confirmation


def _co_funders(organisation: Organisation) -> list[Organisation]:
    return list(
        db.session.scalars(
            sa.select(Organisation)
            .where(
                Organisation.type.in_(list(COMMISSIONER_TYPES)),
                Organisation.active.is_(True),
                Organisation.id != organisation.id,
            )
            .order_by(Organisation.name)
        )
    )


def _drafts() -> dict:
    return dict(session.get(DRAFTS_KEY) or {})


def _details(draft: dict, organisation: Organisation) -> order_details.CallOffDetails:
    lead = 10_000 - sum(points for _, points in draft["co_funding"])
    shares = [order_details.FundingShare(organisation.id, lead)] + [
        order_details.FundingShare(org_id, points) for org_id, points in draft["co_funding"]
    ]
    return order_details.CallOffDetails(
        quantity=draft["quantity"],
        # None while the question page still has the date wrong (the checks then say so).
        start_date=date.fromisoformat(draft["start_date"]) if draft["start_date"] else None,
        end_date=date.fromisoformat(draft["end_date"]) if draft["end_date"] else None,
        crn=draft["crn"],
        pdu=draft["pdu"],
        po_number=draft["po_number"],
        choice_reason=draft["choice_reason"],
        choice_reason_detail=draft["choice_reason_detail"],
        notes_for_provider=draft["notes_for_provider"],
        shares=tuple(shares) if draft["co_funding"] else (),
        outcome_terms=_outcome_terms(draft),
    )


# The question page's fields of a payment-by-results term, by the term's own field names.
OUTCOME_FIELDS = {
    "outcome": "outcome",
    "tariff_pence": "outcome_tariff",
    "earliest_claim_on": "outcome_earliest_claim_on",
    "evidence_required": "outcome_evidence_required",
    "cap": "outcome_cap",
}


def _outcome_terms(draft: dict) -> tuple:
    term = draft.get("outcome_term")
    if not term:
        return ()
    return (
        order_details.OutcomeTermDetails(
            outcome=term["outcome"],
            tariff_pence=term["tariff_pence"],
            earliest_claim_on=date.fromisoformat(term["earliest_claim_on"]),
            evidence_required=term["evidence_required"],
            cap=term["cap"],
        ),
    )


def _outcome_term_answers(form, listing, start_date) -> tuple[dict | None, dict]:
    """The form's optional outcome term as draft data, and its errors by form field."""
    if not form.outcome.data:
        return None, {}
    term = order_details.OutcomeTermDetails(
        outcome=form.outcome.data,
        tariff_pence=pounds_or_none(form.outcome_tariff.data),
        earliest_claim_on=parse_day(form.outcome_earliest_claim_on.data),
        evidence_required=form.outcome_evidence_required.data or "",
        cap=parse_whole_number(form.outcome_cap.data),
    )
    term_errors, _ = order_placing.check_outcome_terms(
        listing, start_date, listing.vat_treatment, (term,)
    )
    errors = {
        OUTCOME_FIELDS.get(key.rsplit("-", 1)[-1], "outcome"): messages
        for key, messages in term_errors.items()
    }
    if errors:
        return None, errors
    return {
        "outcome": term.outcome,
        "tariff_pence": term.tariff_pence,
        "earliest_claim_on": term.earliest_claim_on.isoformat(),
        "evidence_required": term.evidence_required.strip(),
        "cap": term.cap,
    }, {}


def _form_field(form: PlaceCallOffForm, key: str, rows: list[int]) -> str:
    """The question-page field a service error is about ("" for the page as a whole). ``rows``
    are the form's co-funder row numbers, in the order their shares follow the lead's."""
    parts = key.split("-")
    if parts[0] == "shares":
        if len(parts) == 3 and parts[1].isdigit() and 1 <= int(parts[1]) <= len(rows):
            row = rows[int(parts[1]) - 1]
            return f"co_funder_{row}" if parts[2] == "organisation_id" else f"share_{row}"
        return f"share_{rows[0]}" if rows else ""
    if parts[0] == "outcome_terms":
        return OUTCOME_FIELDS.get(parts[-1], "outcome")
    return key if key and key in form else ""


def _show_errors(
    form: PlaceCallOffForm,
    errors: dict[str, list[str]],
    rows: list[int],
    *,
    unless_shown: bool = False,
) -> None:
    """Each error on the field to change, so that the error summary links to it; errors about
    no one field (the arrangement closed, no price today) at the top of the summary. With
    ``unless_shown``, a field that already shows an error gets no more."""
    for key, messages in errors.items():
        name = _form_field(form, key, rows)
        if unless_shown and name and getattr(form, name).errors:
            continue
        target = form.form_errors if not name else getattr(form, name).errors
        if not isinstance(target, list):
            getattr(form, name).errors = target = list(target)
        target.extend(m for m in messages if m not in target)


@bp.route("/new/<int:listing_id>", methods=["GET", "POST"])
@roles_required(Role.BUYER)
def place(listing_id: int):
    organisation = _organisation()
    listing = visible_listing(listing_id)
    if listing is None:
        abort(404)
    token = request.args.get("draft", "")
    drafts = _drafts()
    draft = drafts.get(token) if token else None
    form = PlaceCallOffForm(co_funders=_co_funders(organisation), outcomes=listing.offered_outcomes)
    limit_explanation: tuple[str, ...] = ()
    if request.method == "GET" and draft:
        form.quantity.data = str(draft["quantity"])
        form.start_date.data = draft["start_date"]
        form.end_date.data = draft["end_date"]
        for name in ("crn", "pdu", "po_number", "choice_reason", "choice_reason_detail"):
            getattr(form, name).data = draft[name]
        form.notes_for_provider.data = draft["notes_for_provider"]
        for n, (org_id, points) in enumerate(draft["co_funding"], start=1):
            getattr(form, f"co_funder_{n}").data = str(org_id)
            getattr(form, f"share_{n}").data = f"{points / 100:g}"
        if term := draft.get("outcome_term"):
            form.outcome.data = term["outcome"]
            form.outcome_tariff.data = (
                f"{term['tariff_pence'] // 100}.{term['tariff_pence'] % 100:02d}"
            )
            form.outcome_earliest_claim_on.data = term["earliest_claim_on"]
            form.outcome_evidence_required.data = term["evidence_required"]
            form.outcome_cap.data = str(term["cap"])
        # Sent back from "Place call-off" (a budget used up meanwhile): shown once, on the
        # answers to change.
        if refused := draft.pop("refused", None):
            drafts[token] = draft
            session[DRAFTS_KEY] = drafts
            _show_errors(form, refused, list(range(1, len(draft["co_funding"]) + 1)))
    if form.is_submitted():
        # Every mistake at once: the form's own checks, then every rule placing checks, by the
        # same service functions, on whatever could be read, so that nothing the page could
        # know of is left to fail at "Place call-off".
        valid = form.validate_on_submit()
        co_funding = form.co_funding()
        rows = [n for n, _, _ in co_funding]
        start_date, end_date = parse_day(form.start_date.data), parse_day(form.end_date.data)
        outcome_term, errors = _outcome_term_answers(form, listing, start_date)
        if (total := sum(points for *_, points in co_funding)) >= 10_000:
            errors[f"share_{rows[0]}"] = [
                f"The co-funders' shares add up to {total / 100:g}%: together they must come "
                "to less than 100%, leaving your organisation a share"
            ]
            co_funding = []  # the rules on shares would only say the same
        answers = {
            "listing_id": listing.id,
            "quantity": parse_whole_number(form.quantity.data),
            "start_date": start_date.isoformat() if start_date else None,
            "end_date": end_date.isoformat() if end_date else None,
            "crn": form.crn.data or "",
            "pdu": form.pdu.data or "",
            "po_number": form.po_number.data or "",
            "choice_reason": form.choice_reason.data,
            "choice_reason_detail": form.choice_reason_detail.data or "",
            "notes_for_provider": form.notes_for_provider.data or "",
            "co_funding": [(org_id, points) for _, org_id, points in co_funding],
            "outcome_term": outcome_term,
        }
        refusals: list = []
        try:
            service_errors = order_placing.check_call_off(
                current_user,
                organisation,
                listing.id,
                _details(answers, organisation),
                refusals=refusals,
            )
        except NotFound:
            service_errors = {"": ["This service cannot be bought at the moment"]}
        for refusal in refusals:
            if isinstance(refusal, route.AboveDirectAwardLimit):
                # A short error on the quantity; why, and what to do instead, beside it.
                [message] = refusal.errors["quantity"]
                service_errors["quantity"] = [
                    refusal.short if m == message else m for m in service_errors["quantity"]
                ]
                limit_explanation = refusal.explanation
        if valid and not errors and not service_errors and not any(f.errors for f in form):
            token = token if token in drafts else secrets.token_urlsafe(16)
            drafts[token] = answers
            session[DRAFTS_KEY] = dict(list(drafts.items())[-MAX_DRAFTS:])
            return redirect(url_for("orders.check", listing_id=listing.id, token=token))
        _show_errors(form, errors, rows)
        # The rules' messages only where the form has not already said what is wrong.
        _show_errors(form, service_errors, rows, unless_shown=True)
    return render_template(
        "orders/place.html",
        form=form,
        listing=listing,
        token=token,
        limit_explanation=limit_explanation,
    )


@bp.route("/new/<int:listing_id>/check/<token>", methods=["GET", "POST"])
@roles_required(Role.BUYER)
def check(listing_id: int, token: str):
    organisation = _organisation()
    listing = visible_listing(listing_id)
    drafts = _drafts()
    draft = drafts.get(token)
    if listing is None:
        abort(404)
    if draft is None or draft["listing_id"] != listing.id:
        flash("Those answers are no longer available. Start again.", "info")
        return redirect(url_for("orders.place", listing_id=listing_id))
    details = _details(draft, organisation)
    form = PlaceConfirmForm()
    errors: dict[str, list[str]] = {}
    if form.validate_on_submit():
        fingerprint = json.dumps(draft, sort_keys=True)
        try:
            call_off, _ = order_placing.place_call_off_once(
                current_user,
                organisation,
                listing.id,
                details,
                key=f"form:{token}",
                request_fingerprint=fingerprint,
                # What this page showed when Place was pressed: a price that has changed
                # since places nothing, and the page shows the new one and asks again.
                price_seen=order_details.PriceSeen.from_token(form.price_seen.data),
            )
            commit()
        except NotFound:
            rollback()
            abort(404)
        except order_details.PriceChanged as error:
            # The price moved after this page showed it: this page again, with the new price
            # and what the call-off would now cost, to be checked and placed again.
            rollback()
            errors = error.errors
        except DomainError as error:
            # Something changed since the question page checked (a budget used up meanwhile):
            # back to the question page, with each error on the answer to change.
            rollback()
            drafts[token] = {**draft, "refused": error.errors}
            session[DRAFTS_KEY] = drafts
            return redirect(url_for("orders.place", listing_id=listing.id, draft=token))
        except IntegrityError:  # the same answers were sent twice at once: show the first
            rollback()
            call_off = order_placing.placed_with_key(current_user, f"form:{token}", fingerprint)
            if call_off is None:
                raise
        if not errors:
            drafts.pop(token, None)
            session[DRAFTS_KEY] = drafts
            return redirect(url_for("orders.placed", call_off_id=call_off.id))
    price = listing.price_on(clock.london_date(None))
    value = (
        call_offs.call_off_value(price.unit_price_pence, details.quantity, listing.vat_treatment)
        if price
        else None
    )
    if price is not None:
        form.price_seen.data = order_details.PriceSeen(
            price.id, price.unit_price_pence, listing.vat_treatment
        ).token
    names = {
        org.id: org.name
        for org in db.session.scalars(
            sa.select(Organisation).where(
                Organisation.id.in_([s.organisation_id for s in details.shares] or [0])
            )
        )
    }
    return render_template(
        "orders/check.html",
        form=form,
        listing=listing,
        token=token,
        draft=draft,
        details=details,
        price=price,
        net=value[0] if value else None,
        gross=value[2] if value else None,
        names=names,
        organisation=organisation,
        choice_label=ChoiceReason(draft["choice_reason"]).label,
        page_errors=errors,
    ), (409 if errors else 200)


@bp.get("/<int:call_off_id>/placed")
@login_required
def placed(call_off_id: int):
    call_off = _call_off(call_off_id)
    return render_template("orders/placed.html", call_off=call_off)


# ---------------------------------------------------------------------------------------------
# Lists


def _filters() -> tuple[CallOffFilters, dict[str, str]]:
    args = request.args
    raw = {
        k: (args.get(k) or "").strip()[:40]
        for k in ("status", "crn", "provider", "from", "to", "waiting")
    }
    if raw["waiting"] != "yes":
        raw["waiting"] = ""  # the one value it has: anything else is no filter
    status = None
    if raw["status"]:
        try:
            status = CallOffStatus(raw["status"])
        except ValueError:
            status = None
    return (
        CallOffFilters(
            status=status,
            provider_id=parse_id(raw["provider"]) if raw["provider"] else None,
            crn=raw["crn"].upper() or None,
            placed_from=parse_day(raw["from"]),
            placed_to=parse_day(raw["to"]),
            waiting_for=_organisation().id if raw["waiting"] else None,
            approver_id=_approver_id(),
        ),
        raw,
    )


def _approver_id() -> int | None:
    """The signed-in person, if they approve for their organisation: what waits for approval
    is, for them, only what they can approve (placed by someone else, within their limit)."""
    return current_user.id if Role.APPROVER in current_user.roles_in(_organisation()) else None


def _query():
    organisation = _organisation()
    is_authority = Role.AUTHORITY_ADMIN in current_user.roles_in(organisation)
    filters, raw = _filters()
    return call_offs_query(None if is_authority else organisation.id, filters), raw


@bp.get("/")
@roles_required(*PARTIES, Role.AUTHORITY_ADMIN)
def index():
    query, raw = _query()

    def url_for_page(number: int) -> str:
        return url_for("orders.index", **{k: v for k, v in raw.items() if v}, page=number)

    page = paginate(
        query, page_number(request.args.get("page")), PER_PAGE, url_for_page=url_for_page
    )
    organisation = _organisation()
    # What waits for the organisation comes first, whichever page of the list is shown.
    waiting, waiting_total = waiting_first(organisation.id, WAITING_SHOWN, _approver_id())
    return render_template(
        "orders/index.html",
        page=page,
        raw=raw,
        statuses=list(CallOffStatus),
        organisation=organisation,
        waiting=waiting,
        waiting_total=waiting_total,
        export_url=url_for("orders.export", **{k: v for k, v in raw.items() if v}),
    )


@bp.get("/export.csv")
@roles_required(*PARTIES, Role.AUTHORITY_ADMIN)
def export():
    query, _ = _query()
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "Reference",
            "Status",
            "Placed",
            "Service",
            "Provider",
            "Lead buyer",
            "CRN",
            "PDU",
            "Purchase order",
            "Units",
            "Delivered",
            "Unit price (pence, ex VAT)",
            "VAT treatment",
            "Value (pence, incl VAT)",
            "Start",
            "End",
            "Cancellation reason",
            "Completion summary",
        ]
    )
    for c in db.session.scalars(query.limit(10_000)):
        writer.writerow(
            [
                c.reference,
                c.status.value,
                c.placed_at.date().isoformat(),
                safe_cell(c.listing.title),
                safe_cell(c.provider.name),
                safe_cell(c.lead_buyer.name),
                c.crn,
                safe_cell(c.pdu),
                safe_cell(c.po_number),
                c.quantity,
                c.delivered_units,
                c.unit_price_pence,
                c.vat_treatment.value,
                c.gross_pence,
                c.start_date.isoformat(),
                c.end_date.isoformat(),
                safe_cell(_cancellation_text(c)),
                safe_cell(c.completion_summary),
            ]
        )
    return Response(
        out.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": "attachment; filename=call-offs.csv"},
    )


@bp.get("/budgets")
@roles_required(Role.BUYER, Role.APPROVER)
def budgets():
    organisation = _organisation()
    return render_template(
        "orders/budgets.html",
        organisation=organisation,
        budgets=budgets_of(organisation.id),
        **_page_values(orders_signals.budgets_page, organisation),
    )


# ---------------------------------------------------------------------------------------------
# One call-off


def _cancellation_text(call_off: CallOff) -> str:
    """The buyer's reason for cancelling, in words, with their explanation."""
    if call_off.cancellation_reason is None:
        return ""
    text = call_off.cancellation_reason.label
    if call_off.cancellation_detail:
        text += f": {call_off.cancellation_detail}"
    return text


def _variation_words(call_off: CallOff, variation) -> str:
    """What a variation changes, in words: "4 more sessions and an end date of 7 March 2027"."""
    parts = []
    if variation.extra_units:
        unit = call_off.unit
        noun = unit.label if variation.extra_units == 1 else unit.plural
        parts.append(f"{variation.extra_units:,} more {noun}")
    if variation.new_end_date:
        parts.append(f"an end date of {govuk_date(variation.new_end_date)}")
    return " and ".join(parts)


def _variation_text(call_off: CallOff, action: str, variation) -> str:
    """A variation's timeline entry: what it changes, and why (proposed) or the decision's
    reason (rejected); the buyer follows each change from the call-off's timeline alone."""
    words = _variation_words(call_off, variation)
    if action == "call_off.variation_proposed":
        return f"{words[0].upper()}{words[1:]}. Reason: {variation.reason}"
    if action == "call_off.variation_agreed":
        return f"{words[0].upper()}{words[1:]}: the call-off is now version {variation.version}"
    if action == "call_off.variation_rejected":
        return variation.decision_reason or ""
    return f"{words[0].upper()}{words[1:]}"


def _timeline(call_off: CallOff) -> list[dict]:
    events = db.session.scalars(
        sa.select(AuditEvent)
        .where(AuditEvent.object_type == "call_off", AuditEvent.object_id == str(call_off.id))
        .order_by(AuditEvent.id.desc())
    ).all()
    titles = {
        "call_off.placed": "Call-off placed",
        "call_off.funding_confirmed": "Co-funder's share confirmed",
        "call_off.funding_declined": "Co-funder declined its share",
        "call_off.funding_resplit": "Shares changed",
        "call_off.approved": "Approved",
        "call_off.accepted": "Accepted by the provider",
        "call_off.declined": "Declined by the provider",
        "call_off.expired": "Expired without a response",
        "call_off.delivery_recorded": "Delivery recorded",
        "call_off.variation_proposed": "Variation proposed",
        "call_off.variation_agreed": "Variation agreed",
        "call_off.variation_rejected": "Variation rejected",
        "call_off.variation_withdrawn": "Variation withdrawn",
        "call_off.cancelled": "Cancelled",
        "call_off.completed": "Completed",
        "call_off.outcome_terms_agreed": "Outcome terms agreed",
    }
    deliveries = {d.id: d for d in call_off.deliveries}
    variations = {v.id: v for v in call_off.variations}
    items = []
    for event in events:
        after = event.after or {}
        text = ""
        if event.action.startswith("call_off.variation_"):
            variation = variations.get(after.get("variation_id"))
            if variation is not None:
                text = _variation_text(call_off, event.action, variation)
        elif event.action == "call_off.delivery_recorded":
            delivery = deliveries.get(after.get("delivery_id"))
            if delivery is not None:
                text = (
                    f"{call_off.unit.count(delivery.units)} on {govuk_date(delivery.delivered_on)}"
                    f": {delivery.attendance.label}"
                    + (f" ({delivery.absence_reason.label})" if delivery.absence_reason else "")
                    + (
                        ""
                        if delivery.payable
                        else ", not paid for (missed sessions are not charged)"
                    )
                    + (f". {delivery.progress_note}" if delivery.progress_note else "")
                )
        elif event.action == "call_off.funding_declined":
            text = f"Reason: {after.get('reason', '')}"
        elif event.action == "call_off.funding_resplit":
            text = _shares_text(after.get("funders") or [])
        elif event.action == "call_off.declined":
            text = call_off.decline_reason or ""
        elif event.action == "call_off.cancelled":
            text = _cancellation_text(call_off)
        elif event.action == "call_off.completed":
            text = call_off.completion_summary
            outcomes = [
                f"{record.outcome}: {record.result.label.lower()}"
                + (f" ({record.comment})" if record.comment else "")
                for record in call_off.outcomes
            ]
            if outcomes:
                text += ("\n" if text else "") + "Outcomes: " + "; ".join(outcomes)
        items.append(
            {
                "title": titles.get(event.action, event.action),
                "by": event.actor.name if event.actor else "The marketplace",
                "at": event.occurred_at,
                "text": text,
            }
        )
    return items


def _shares_text(funders: list[dict]) -> str:
    """The shares a re-split made, in words: "North East Probation 75%, Durham PCC 25%"."""
    names = dict(
        db.session.execute(
            sa.select(Organisation.id, Organisation.name).where(
                Organisation.id.in_([f["organisation_id"] for f in funders] or [0])
            )
        ).all()
    )
    return ", ".join(
        f"{names.get(f['organisation_id'], 'A funder')} {f['basis_points'] / 100:g}%"
        for f in funders
    )


@bp.get("/<int:call_off_id>")
@roles_required(*PARTIES, Role.AUTHORITY_ADMIN)
def show(call_off_id: int):
    call_off = _call_off(call_off_id)
    open_variations = [v for v in call_off.variations if v.status == VariationStatus.PROPOSED]
    return render_template(
        "orders/show.html",
        call_off=call_off,
        cancellation=_cancellation_text(call_off),
        can=permissions.actions(current_user, _organisation(), call_off),
        timeline=_timeline(call_off),
        open_variations=open_variations,
        variations=call_off.variations,
        change_words={v.id: _variation_words(call_off, v) for v in call_off.variations},
        audit_url=(
            url_for("accounts.audit_log", object_type=call_off.audit_type, object_id=call_off.id)
            if can_view_audit(current_user)
            else None
        ),
        **_page_values(
            orders_signals.call_off_page, call_off, user=current_user, organisation=_organisation()
        ),
    )


def _page_values(signal, sender, **values) -> dict:
    """The values the features built on call-offs add to one of its pages (``orders.signals``)."""
    page: dict = {}
    for _, answer in signal.send(sender, **values):
        page.update(answer)
    return page


def _one_click(call_off_id: int, action, success: str):
    call_off = _call_off(call_off_id)
    act_on_click(ConfirmForm(), lambda: action(call_off), success)
    return redirect(url_for("orders.show", call_off_id=call_off_id))


@bp.post("/<int:call_off_id>/confirm-funding")
@roles_required(Role.APPROVER)
def confirm_funding(call_off_id: int):
    organisation = _organisation()
    return _one_click(
        call_off_id,
        lambda c: order_funding.confirm_funding(current_user, c, organisation),
        "You have confirmed your organisation's share.",
    )


@bp.route("/<int:call_off_id>/decline-funding", methods=["GET", "POST"])
@roles_required(Role.APPROVER)
def decline_funding(call_off_id: int):
    organisation = _organisation()
    return _form_action(
        call_off_id,
        DeclineFundingForm(),
        "orders/decline_funding.html",
        lambda c, f: order_funding.decline_funding(current_user, c, organisation, f.reason.data),
        "You have declined your organisation's share. The lead buyer has been told.",
    )


@bp.route("/<int:call_off_id>/funding", methods=["GET", "POST"])
@roles_required(Role.BUYER, Role.APPROVER)
def resplit_funding(call_off_id: int):
    """After a co-funder declined: the lead buyer shares the call-off out again."""
    organisation = _organisation()
    call_off = _call_off(call_off_id)
    if not permissions.actions(current_user, organisation, call_off)["resplit"]:
        if organisation.id != call_off.lead_buyer_id:
            abort(403)
        flash(
            "No co-funder has declined its share of this call-off, so its shares cannot be changed",
            "error",
        )
        return redirect(url_for("orders.show", call_off_id=call_off_id))
    form = ResplitForm(co_funders=_co_funders(organisation))
    declined = [f for f in call_off.funders if f.declined_at is not None]
    if request.method == "GET":
        # The remaining co-funders keep their shares; the lead would pay the declined part.
        kept = [f for f in call_off.funders if not f.is_lead and f.declined_at is None]
        for n, funder in enumerate(kept[:3], start=1):
            getattr(form, f"co_funder_{n}").data = str(funder.organisation_id)
            getattr(form, f"share_{n}").data = f"{funder.basis_points / 100:g}"
    elif form.validate_on_submit():
        co_funding = form.co_funding()
        rows = [n for n, _, _ in co_funding]
        total = sum(points for *_, points in co_funding)
        errors: dict[str, list[str]] = {}
        if not any(f.errors for f in form):
            if total >= 10_000:
                errors[f"share_{rows[0]}"] = [
                    f"The co-funders' shares add up to {total / 100:g}%: together they must "
                    "come to less than 100%, leaving your organisation a share"
                ]
            else:
                shares = [order_details.FundingShare(organisation.id, 10_000 - total)] + [
                    order_details.FundingShare(org_id, points) for _, org_id, points in co_funding
                ]
                try:
                    order_funding.resplit_funding(current_user, call_off, shares)
                    commit()
                except (NotFound, PermissionDenied) as error:
                    rollback()
                    abort(error.status)
                except DomainError as error:
                    rollback()
                    if error.status == 409:
                        flash(" ".join(m for ms in error.errors.values() for m in ms), "error")
                        return redirect(url_for("orders.show", call_off_id=call_off_id))
                    errors = {
                        _form_field(form, key, rows) or "": messages
                        for key, messages in error.errors.items()
                    }
                else:
                    flash(_resplit_message(call_off), "success")
                    return redirect(url_for("orders.show", call_off_id=call_off_id))
                call_off = _call_off(call_off_id)
        for name, messages in errors.items():
            target = form.form_errors if not name else getattr(form, name).errors
            if not isinstance(target, list):
                getattr(form, name).errors = target = list(target)
            target.extend(m for m in messages if m not in target)
    return render_template("orders/resplit.html", form=form, call_off=call_off, declined=declined)


def _resplit_message(call_off: CallOff) -> str:
    if call_off.status == CallOffStatus.AWAITING_FUNDING:
        return "New shares saved. The co-funders asked for a new or larger share have been told."
    if call_off.status == CallOffStatus.AWAITING_APPROVAL:
        return "New shares saved. The call-off now needs an approver."
    return "New shares saved. Every funder has confirmed, so the call-off has gone to the provider."


@bp.post("/<int:call_off_id>/approve")
@roles_required(Role.APPROVER)
def approve(call_off_id: int):
    return _one_click(
        call_off_id,
        lambda c: order_funding.approve(current_user, c),
        "Call-off approved and sent to the provider.",
    )


@bp.post("/<int:call_off_id>/accept")
@roles_required(Role.PROVIDER_ADMIN)
def accept(call_off_id: int):
    return _one_click(
        call_off_id,
        lambda c: responses.accept(current_user, c),
        "Call-off accepted. The buyer has been told.",
    )


def _form_action(call_off_id: int, form, template: str, act, success: str):
    call_off = _call_off(call_off_id)
    if act_on_form(form, lambda: act(call_off, form), success):
        return redirect(url_for("orders.show", call_off_id=call_off_id))
    return render_template(template, form=form, call_off=_call_off(call_off_id))


@bp.route("/<int:call_off_id>/decline", methods=["GET", "POST"])
@roles_required(Role.PROVIDER_ADMIN)
def decline(call_off_id: int):
    return _form_action(
        call_off_id,
        DeclineForm(),
        "orders/decline.html",
        lambda c, f: responses.decline(current_user, c, f.reason.data),
        "Call-off declined. The buyer has been told.",
    )


@bp.route("/<int:call_off_id>/cancel", methods=["GET", "POST"])
@roles_required(Role.BUYER, Role.APPROVER)
def cancel(call_off_id: int):
    return _form_action(
        call_off_id,
        CancelForm(),
        "orders/cancel.html",
        lambda c, f: responses.cancel(current_user, c, f.reason.data, f.detail.data or ""),
        "Call-off cancelled.",
    )


@bp.route("/<int:call_off_id>/deliveries/new", methods=["GET", "POST"])
@roles_required(Role.PROVIDER_ADMIN, Role.PROVIDER_EDITOR)
def record_delivery(call_off_id: int):
    def act(call_off, form):
        order_delivery.record_delivery(
            current_user,
            call_off,
            order_delivery.DeliveryDetails(
                delivered_on=parse_day(form.delivered_on.data),
                units=parse_whole_number(form.units.data),
                attendance=form.attendance.data,
                absence_reason=form.absence_reason.data or None,
                progress_note=form.progress_note.data or "",
            ),
        )

    return _form_action(
        call_off_id, DeliveryForm(), "orders/delivery.html", act, "Delivery recorded."
    )


@bp.route("/<int:call_off_id>/complete", methods=["GET", "POST"])
@roles_required(Role.PROVIDER_ADMIN)
def complete(call_off_id: int):
    offered = _call_off(call_off_id).listing.offered_outcomes
    form = complete_form(offered)

    def act(call_off, form):
        results = [
            order_delivery.OutcomeDetails(outcome, getattr(form, f"outcome_{n}").data)
            for n, outcome in enumerate(offered)
        ]
        try:
            order_delivery.complete(current_user, call_off, form.summary.data, results)
        except BusinessRuleViolation as error:
            # The service names each outcome by its place in the list: the form's outcome_<n>.
            raise BusinessRuleViolation(
                {k.replace("outcomes-", "outcome_"): v for k, v in error.errors.items()}
            ) from None

    return _form_action(
        call_off_id,
        form,
        "orders/complete.html",
        act,
        "Call-off completed. The buyer has been told.",
    )


@bp.route("/<int:call_off_id>/variations/new", methods=["GET", "POST"])
@roles_required(Role.BUYER, Role.APPROVER, Role.PROVIDER_ADMIN)
def propose_variation(call_off_id: int):
    return _form_action(
        call_off_id,
        VariationForm(),
        "orders/variation.html",
        lambda c, f: order_variations.propose_variation(
            current_user,
            c,
            extra_units=parse_whole_number(f.extra_units.data),
            new_end_date=parse_day(f.new_end_date.data) if f.new_end_date.data else None,
            reason=f.reason.data,
        ),
        "Change proposed. The other side has been asked to agree it.",
    )


@bp.post("/<int:call_off_id>/variations/<int:variation_id>/agree")
@roles_required(Role.BUYER, Role.APPROVER, Role.PROVIDER_ADMIN)
def agree_variation(call_off_id: int, variation_id: int):
    call_off = _call_off(call_off_id)
    form = ConfirmForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        variation = order_variations.agree_variation(current_user, call_off, variation_id)
        commit()
    except DomainError as error:
        rollback()
        if isinstance(error, NotFound):
            abort(404)
        flash(" ".join(m for ms in error.errors.values() for m in ms) or error.detail, "error")
    else:
        flash(
            # Not yet in force: above the person's spend limit it waits for an approver.
            "Change sent to your organisation's approvers: it is above your spend limit."
            if variation.awaiting_approval
            else "Change agreed: the call-off has a new version.",
            "success",
        )
    return redirect(url_for("orders.show", call_off_id=call_off_id))


@bp.post("/<int:call_off_id>/variations/<int:variation_id>/approve")
@roles_required(Role.APPROVER)
def approve_variation(call_off_id: int, variation_id: int):
    return _one_click(
        call_off_id,
        lambda c: order_variations.approve_variation(current_user, c, variation_id),
        "Change approved.",
    )


@bp.post("/<int:call_off_id>/variations/<int:variation_id>/withdraw")
@roles_required(Role.BUYER, Role.APPROVER, Role.PROVIDER_ADMIN)
def withdraw_variation(call_off_id: int, variation_id: int):
    return _one_click(
        call_off_id,
        lambda c: order_variations.withdraw_variation(current_user, c, variation_id),
        "Proposed change withdrawn.",
    )


@bp.route("/<int:call_off_id>/variations/<int:variation_id>/reject", methods=["GET", "POST"])
@roles_required(Role.BUYER, Role.APPROVER, Role.PROVIDER_ADMIN)
def reject_variation(call_off_id: int, variation_id: int):
    return _form_action(
        call_off_id,
        RejectVariationForm(),
        "orders/reject_variation.html",
        lambda c, f: order_variations.reject_variation(
            current_user, c, variation_id, f.reason.data
        ),
        "Change rejected. The other side has been told.",
    )
