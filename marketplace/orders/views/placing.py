"""Buying from a listing: the question page (every mistake at once, by the same rules placing
checks), check your answers (places the call-off once, whatever is pressed twice) and the
confirmation. The answers wait between the pages in the person's session, under a random token.
"""

from __future__ import annotations

import json
import secrets
from datetime import date

import sqlalchemy as sa
from flask import abort, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required
from sqlalchemy.exc import IntegrityError

from marketplace.accounts.decorators import roles_required
from marketplace.accounts.models import COMMISSIONER_TYPES, Organisation, Role
from marketplace.catalogue.queries import visible_listing
from marketplace.core import clock
from marketplace.core.db import commit, db, rollback
from marketplace.core.errors import DomainError, NotFound
from marketplace.core.forms import parse_day, parse_whole_number
from marketplace.core.money import pounds_or_none
from marketplace.orders.forms import PlaceCallOffForm, PlaceConfirmForm
from marketplace.orders.models import CallOff, ChoiceReason
from marketplace.orders.services import call_offs, route
from marketplace.orders.services import details as order_details
from marketplace.orders.services import placing as order_placing
from marketplace.orders.views import bp, own_organisation, visible_call_off

DRAFTS_KEY = "call_off_drafts"
MAX_DRAFTS = 5


def co_funders(organisation: Organisation) -> list[Organisation]:
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


def form_field(form: PlaceCallOffForm, key: str, rows: list[int]) -> str:
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
        name = form_field(form, key, rows)
        if unless_shown and name and getattr(form, name).errors:
            continue
        target = form.form_errors if not name else getattr(form, name).errors
        if not isinstance(target, list):
            getattr(form, name).errors = target = list(target)
        target.extend(m for m in messages if m not in target)


@bp.route("/new/<int:listing_id>", methods=["GET", "POST"])
@roles_required(Role.BUYER)
def place(listing_id: int):
    organisation = own_organisation()
    listing = visible_listing(listing_id)
    if listing is None:
        abort(404)
    token = request.args.get("draft", "")
    drafts = _drafts()
    draft = drafts.get(token) if token else None
    form = PlaceCallOffForm(co_funders=co_funders(organisation), outcomes=listing.offered_outcomes)
    limit_explanation: tuple[str, ...] = ()
    start_competition_url = None
    if request.method == "GET" and draft:
        _fill_in(form, draft)
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
        answers, errors, rows = _read_answers(form, listing)
        service_errors, limit_explanation, start_competition_url = _check_answers(
            organisation, listing, answers
        )
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
        start_competition_url=start_competition_url,
    )


def _fill_in(form: PlaceCallOffForm, draft: dict) -> None:
    """The question page with the draft's answers, to change them."""
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
        form.outcome_tariff.data = f"{term['tariff_pence'] // 100}.{term['tariff_pence'] % 100:02d}"
        form.outcome_earliest_claim_on.data = term["earliest_claim_on"]
        form.outcome_evidence_required.data = term["evidence_required"]
        form.outcome_cap.data = str(term["cap"])


def _read_answers(form: PlaceCallOffForm, listing) -> tuple[dict, dict, list[int]]:
    """The question page's answers as a draft (whatever could be read), the errors the page
    itself finds by form field, and the form's co-funder row numbers."""
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
    return answers, errors, rows


def _check_answers(
    organisation: Organisation, listing, answers: dict
) -> tuple[dict[str, list[str]], tuple[str, ...], str | None]:
    """Every rule placing checks, by the service, on the answers: its errors by service key,
    and, above the direct-award limit, why, what to do instead and where to start it."""
    limit_explanation: tuple[str, ...] = ()
    start_competition_url = None
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
            start_competition_url = refusal.start_competition_url
    return service_errors, limit_explanation, start_competition_url


@bp.route("/new/<int:listing_id>/check/<token>", methods=["GET", "POST"])
@roles_required(Role.BUYER)
def check(listing_id: int, token: str):
    organisation = own_organisation()
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
        try:
            call_off = _place_once(organisation, listing.id, details, draft, token, form)
        except order_details.PriceChanged as error:
            # The price moved after this page showed it: this page again, with the new price
            # and what the call-off would now cost, to be checked and placed again.
            errors = error.errors
        except DomainError as error:
            # Something changed since the question page checked (a budget used up meanwhile):
            # back to the question page, with each error on the answer to change.
            drafts[token] = {**draft, "refused": error.errors}
            session[DRAFTS_KEY] = drafts
            return redirect(url_for("orders.place", listing_id=listing.id, draft=token))
        else:
            drafts.pop(token, None)
            session[DRAFTS_KEY] = drafts
            return redirect(url_for("orders.placed", call_off_id=call_off.id))
    return _check_page(form, organisation, listing, token, draft, details, errors)


def _place_once(
    organisation: Organisation,
    listing_id: int,
    details: order_details.CallOffDetails,
    draft: dict,
    token: str,
    form: PlaceConfirmForm,
) -> CallOff:
    """The call-off the draft describes, placed and committed once whatever is pressed twice
    (the same answers sent twice at once: the first). A rule refusing it: rolled back and
    raised; no such listing: 404."""
    fingerprint = json.dumps(draft, sort_keys=True)
    try:
        call_off, _ = order_placing.place_call_off_once(
            current_user,
            organisation,
            listing_id,
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
    except DomainError:
        rollback()
        raise
    except IntegrityError:  # the same answers were sent twice at once: show the first
        rollback()
        call_off = order_placing.placed_with_key(current_user, f"form:{token}", fingerprint)
        if call_off is None:
            raise
    return call_off


def _check_page(
    form: PlaceConfirmForm,
    organisation: Organisation,
    listing,
    token: str,
    draft: dict,
    details: order_details.CallOffDetails,
    errors: dict[str, list[str]],
):
    """Check your answers, at today's price (the one "Place call-off" is then held to); with a
    changed price's errors, 409."""
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
    call_off = visible_call_off(call_off_id)
    return render_template("orders/placed.html", call_off=call_off)
