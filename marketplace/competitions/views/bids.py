"""The provider's side of a competition: its competitions (``invited``), the competition's page
with its documents, published answers and the provider's own bid (``bid``), the bid form
(``edit_bid``), check and submit (``check_bid``), withdraw (``withdraw_bid``), a document
(``document``); and, for the buyer, funders, panel and authority once bids are unsealed, the
bids received (``bids_received``, ``bids_received_csv``) and one bid (``show_bid``).

Sealed: a bid is shown only through ``permissions.can_read_bid`` and the bids received only
through ``services.bids.bids_received`` (refused while ``permissions.bids_are_sealed``)."""

from __future__ import annotations

import csv
import io

from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from marketplace.accounts.decorators import roles_required
from marketplace.accounts.models import Role
from marketplace.accounts.queries import page_number, paginate
from marketplace.accounts.session import current_organisation
from marketplace.competitions import permissions
from marketplace.competitions.forms.bids import (
    COMMITMENT_ROWS,
    CONSORTIUM_ROWS,
    PRICE_LINE_ROWS,
    VAT_LABELS,
    ActionForm,
    bid_form_class,
)
from marketplace.competitions.models import (
    Bid,
    Competition,
    CompetitionStatus,
    QuestionKind,
)
from marketplace.competitions.queries.provider import invitations_query
from marketplace.competitions.services import bids as bid_services
from marketplace.competitions.services.award import summary_for
from marketplace.competitions.services.bids import (
    AnswerInput,
    BidInput,
    CommitmentInput,
    MemberInput,
    PriceLineInput,
)
from marketplace.competitions.services.clarifications import published_answers
from marketplace.competitions.services.common import NOT_INVITED, is_invited
from marketplace.competitions.views import bp, visible_competition
from marketplace.core.clock import utcnow
from marketplace.core.db import commit, db, rollback
from marketplace.core.errors import DomainError, PermissionDenied
from marketplace.core.filters import london_datetime
from marketplace.core.forms import basis_points_from_percent, parse_day
from marketplace.core.money import decimal_pounds, pounds_or_none
from marketplace.core.views_helpers import act_on_click, apply_errors

PROVIDERS = (Role.PROVIDER_ADMIN, Role.PROVIDER_EDITOR)
PER_PAGE = 20
# The services name the price in pence; the form asks for pounds.
_FIELDS = {"unit_price_pence": "unit_price"}


def _published(competition_id: int) -> Competition:
    competition = visible_competition(competition_id)
    if competition.status is CompetitionStatus.DRAFT:
        abort(404)
    return competition


@bp.get("/invited")
@roles_required(*PROVIDERS)
def invited():
    """Your competitions: those your organisation is invited to, with your bid's state."""
    organisation = current_organisation()
    query = invitations_query(organisation.id)
    page = paginate(
        query,
        page_number(request.args.get("page")),
        PER_PAGE,
        url_for_page=lambda n: url_for("competitions.invited", page=n),
        scalars=False,
    )
    return render_template("competitions/invited.html", page=page, organisation=organisation)


@bp.get("/<int:competition_id>/bid")
@roles_required(*PROVIDERS)
def bid(competition_id: int):
    """The competition as an invited provider reads it, with the provider's own bid."""
    competition = _published(competition_id)
    organisation = current_organisation()
    if not is_invited(competition, organisation):
        return render_template(
            "competitions/not_invited.html", competition=competition, reason=NOT_INVITED
        ), 403
    own = bid_services.own_bid(competition, organisation)
    asking_until = competition.clarification_deadline or competition.bid_deadline
    return render_template(
        "competitions/bid.html",
        competition=competition,
        own=own,
        # After the award decision the bidder reads its summary from here as from its home.
        summary=summary_for(own) if own is not None else None,
        questions_open=competition.status is CompetitionStatus.PUBLISHED
        and asking_until is not None
        and utcnow() < asking_until,
        answers=published_answers(competition),
        bids_open=_bids_open(competition),
        is_admin=Role.PROVIDER_ADMIN in current_user.roles_in(organisation),
        action_form=ActionForm(),
        vat_labels=VAT_LABELS,
        missing=bid_services.missing_for_submission(own) if own else {},
    )


def _bids_open(competition: Competition) -> bool:
    return (
        competition.status is CompetitionStatus.PUBLISHED
        and competition.bid_deadline is not None
        and utcnow() < competition.bid_deadline
    )


def _require_invited_page(competition: Competition):
    if not is_invited(competition, current_organisation()):
        abort(404)


def _fill(form, competition: Competition, own: Bid | None) -> None:
    """The form as the saved bid stands (on first view)."""
    if own is None:
        return
    for answer in own.answers:
        getattr(form, f"answer_{answer.question_id}").data = answer.text
        if answer.meets_requirement is not None:
            getattr(form, f"meets_{answer.question_id}").data = (
                "yes" if answer.meets_requirement else "no"
            )
    if own.unit_price_pence is not None:
        form.unit_price.data = decimal_pounds(own.unit_price_pence)
    form.vat_treatment.data = own.vat_treatment.value if own.vat_treatment else None
    for row, line in enumerate(own.price_lines[:PRICE_LINE_ROWS]):
        getattr(form, f"price_lines_{row}_description").data = line.description
        getattr(form, f"price_lines_{row}_amount").data = decimal_pounds(line.amount_pence)
    for row, commitment in enumerate(own.commitments[:COMMITMENT_ROWS]):
        getattr(form, f"commitments_{row}_what").data = commitment.what
        getattr(form, f"commitments_{row}_how_much").data = commitment.how_much
        getattr(form, f"commitments_{row}_by_when").data = commitment.by_when.isoformat()
    for row, member in enumerate(own.consortium[:CONSORTIUM_ROWS]):
        getattr(form, f"consortium_{row}_name").data = member.name
        getattr(form, f"consortium_{row}_role").data = member.role.value
        share = member.share_basis_points
        getattr(form, f"consortium_{row}_share").data = (
            f"{share // 100}" if share % 100 == 0 else f"{share / 100:g}"
        )
    if own.bidder_is_sme is not None:
        form.is_sme.data = "yes" if own.bidder_is_sme else "no"


def _yes_no(value: str | None) -> bool | None:
    return {"yes": True, "no": False}.get(value or "")


def _input(form, competition: Competition) -> BidInput:
    answers = []
    for question in competition.questions:
        meets = None
        if question.kind is QuestionKind.PASS_FAIL:
            meets = _yes_no(getattr(form, f"meets_{question.id}").data)
        answers.append(
            AnswerInput(question.id, getattr(form, f"answer_{question.id}").data or "", meets)
        )
    return BidInput(
        answers=answers,
        unit_price_pence=pounds_or_none(form.unit_price.data),
        vat_treatment=form.vat_treatment.data or None,
        price_lines=[
            PriceLineInput(
                getattr(form, f"price_lines_{row}_description").data or "",
                pounds_or_none(getattr(form, f"price_lines_{row}_amount").data),
            )
            for row in range(PRICE_LINE_ROWS)
        ],
        commitments=[
            CommitmentInput(
                getattr(form, f"commitments_{row}_what").data or "",
                getattr(form, f"commitments_{row}_how_much").data or "",
                parse_day(getattr(form, f"commitments_{row}_by_when").data),
            )
            for row in range(COMMITMENT_ROWS)
        ],
        consortium=[
            MemberInput(
                getattr(form, f"consortium_{row}_name").data or "",
                getattr(form, f"consortium_{row}_role").data or None,
                basis_points_from_percent(
                    getattr(form, f"consortium_{row}_share").data, max_whole_digits=3
                ),
            )
            for row in range(CONSORTIUM_ROWS)
        ],
        is_sme=_yes_no(form.is_sme.data),
    )


def _apply(form, error: DomainError) -> None:
    error.errors = {_FIELDS.get(k, k): v for k, v in error.errors.items()}
    # A refusal of a whole section (the schedule's total, the consortium's shares) is shown on
    # the section's first field, so the summary links somewhere on the page.
    for section, first in (
        ("price_lines", "price_lines_0_amount"),
        ("commitments", "commitments_0_what"),
        ("consortium", "consortium_0_share"),
        ("answers", None),
    ):
        if section in error.errors and first is not None:
            error.errors.setdefault(first, []).extend(error.errors.pop(section))
    apply_errors(form, error)


@bp.route("/<int:competition_id>/bid/edit", methods=["GET", "POST"])
@roles_required(*PROVIDERS)
def edit_bid(competition_id: int):
    """The bid form: answers, price, social value, consortium, SME; saved as a draft."""
    competition = _published(competition_id)
    _require_invited_page(competition)
    organisation = current_organisation()
    own = bid_services.own_bid(competition, organisation)
    form = bid_form_class(competition)()
    if request.method == "GET":
        _fill(form, competition, own)
    if form.validate_on_submit():
        try:
            bid_services.save_bid(
                current_user._get_current_object(),
                organisation,
                competition,
                _input(form, competition),
            )
            commit()
        except DomainError as error:
            rollback()
            _apply(form, error)
        else:
            if form.check.data:
                return redirect(url_for("competitions.check_bid", competition_id=competition.id))
            flash("Your bid is saved as a draft. Nobody else can see it.", "success")
            return redirect(url_for("competitions.bid", competition_id=competition.id))
    return render_template(
        "competitions/edit_bid.html",
        form=form,
        competition=competition,
        own=own,
        price_rows=PRICE_LINE_ROWS,
        commitment_rows=COMMITMENT_ROWS,
        consortium_rows=CONSORTIUM_ROWS,
        is_admin=Role.PROVIDER_ADMIN in current_user.roles_in(organisation),
    ), (422 if form.errors else 200)


@bp.route("/<int:competition_id>/bid/check", methods=["GET", "POST"])
@roles_required(*PROVIDERS)
def check_bid(competition_id: int):
    """Check your bid, then submit it (administrators only)."""
    competition = _published(competition_id)
    _require_invited_page(competition)
    organisation = current_organisation()
    own = bid_services.own_bid(competition, organisation)
    if own is None:
        return redirect(url_for("competitions.edit_bid", competition_id=competition.id))
    form = ActionForm()
    if request.method == "POST":
        act_on_click(
            form,
            lambda: bid_services.submit_bid(current_user._get_current_object(), organisation, own),
            "Your bid is submitted. We have emailed your administrators a receipt.",
        )
        return redirect(url_for("competitions.bid", competition_id=competition.id))
    return render_template(
        "competitions/check_bid.html",
        competition=competition,
        own=own,
        form=form,
        missing=bid_services.missing_for_submission(own),
        is_admin=Role.PROVIDER_ADMIN in current_user.roles_in(organisation),
        bids_open=_bids_open(competition),
        vat_labels=VAT_LABELS,
    )


@bp.post("/<int:competition_id>/bid/withdraw")
@roles_required(*PROVIDERS)
def withdraw_bid(competition_id: int):
    competition = _published(competition_id)
    _require_invited_page(competition)
    organisation = current_organisation()
    own = bid_services.own_bid(competition, organisation)
    if own is None:
        abort(404)
    act_on_click(
        ActionForm(),
        lambda: bid_services.withdraw_bid(current_user._get_current_object(), organisation, own),
        "Your bid is withdrawn. You can change it and submit it again until the deadline.",
    )
    return redirect(url_for("competitions.bid", competition_id=competition.id))


def _overseen(competition_id: int) -> Competition:
    competition = visible_competition(competition_id)
    if not permissions.can_oversee(current_user, current_organisation(), competition):
        abort(404)
    return competition


@bp.get("/<int:competition_id>/bids")
@login_required
def bids_received(competition_id: int):
    """The bids received, once unsealed: bidder, time submitted, price (else 403, saying why)."""
    competition = _overseen(competition_id)
    try:
        received = bid_services.bids_received(
            current_user._get_current_object(), current_organisation(), competition
        )
    except PermissionDenied as sealed:
        return render_template(
            "competitions/bids_sealed.html", competition=competition, reason=sealed.detail
        ), 403
    return render_template(
        "competitions/bids_received.html", competition=competition, received=received
    )


@bp.get("/<int:competition_id>/bids.csv")
@login_required
def bids_received_csv(competition_id: int):
    competition = _overseen(competition_id)
    received = bid_services.bids_received(
        current_user._get_current_object(), current_organisation(), competition
    )
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "Bidder",
            "Submitted (London time)",
            "Unit price (£, before VAT)",
            "Total before VAT (£)",
            "VAT (£)",
            "Total with VAT (£)",
            "VAT treatment",
            "Consortium",
            "VCSE",
            "SME",
            "Status",
        ]
    )
    for row in received:
        writer.writerow(
            [
                _cell(row.organisation.name),
                london_datetime(row.submitted_at),
                decimal_pounds(row.unit_price_pence),
                decimal_pounds(row.net_pence),
                decimal_pounds(row.vat_pence),
                decimal_pounds(row.gross_pence),
                VAT_LABELS[row.vat_treatment],
                "; ".join(_cell(m.name) for m in row.consortium),
                "yes" if row.bidder_is_vcse else "no",
                "yes" if row.bidder_is_sme else "no",
                row.status.label,
            ]
        )
    return Response(
        out.getvalue(),
        mimetype="text/csv",
        headers={
            "Content-Disposition": (
                f'attachment; filename="bids-received-{competition.reference}.csv"'
            ),
            "Cache-Control": "private, no-store",
        },
    )


def _cell(text: str) -> str:
    # A cell a spreadsheet would run as a formula is kept as text.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


@bp.get("/<int:competition_id>/bids/<int:bid_id>")
@login_required
def show_bid(competition_id: int, bid_id: int):
    """One bid: its bidder always; the buyer, funders, panel and authority once unsealed.
    Anyone else, and everyone but the bidder while sealed, is told it is not found."""
    competition = visible_competition(competition_id)
    found = db.session.get(Bid, bid_id)
    if (
        found is None
        or found.competition_id != competition.id
        or not permissions.can_read_bid(current_user, current_organisation(), found)
    ):
        abort(404)
    return render_template(
        "competitions/show_bid.html",
        competition=competition,
        own=found,
        vat_labels=VAT_LABELS,
        is_bidder=permissions.is_bidder(current_user, current_organisation(), found),
    )
