"""The buyer's side up to publication: start (also from a listing or the refusal above the
direct-award limit: ``listing_id`` and ``value_pence`` prefill it), the task list and its
sections, check your answers and publish; "Your competitions"; the buyer's competition page
with the invited list (and its CSV) and cancelling.

Views are thin: each parses the form, calls one service (``competitions.services``) and commits.
A draft the person may not manage is 404."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import sqlalchemy as sa
from flask import Response, abort, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from wtforms.fields.choices import SelectChoice

from marketplace.accounts.decorators import roles_required
from marketplace.accounts.models import Role
from marketplace.accounts.queries import page_number, paginate
from marketplace.accounts.session import current_organisation
from marketplace.accreditation.models import ArrangementLot, ArrangementStatus
from marketplace.catalogue.models import Listing
from marketplace.competitions import permissions, queries
from marketplace.competitions.forms.setup import (
    FUNDER_ROWS,
    CancelForm,
    ClickForm,
    DeadlinesForm,
    DetailsForm,
    DocumentForm,
    FundingForm,
    PanelForm,
    PriceForm,
    PublishForm,
    QuestionForm,
)
from marketplace.competitions.models import Competition, CompetitionDocument, CompetitionStatus
from marketplace.competitions.services import cancelling, documents, publishing, setup
from marketplace.competitions.views import bp, visible_competition
from marketplace.core.clock import LONDON, london_date, utcnow
from marketplace.core.db import db
from marketplace.core.errors import BusinessRuleViolation, DomainError
from marketplace.core.forms import (
    basis_points_from_percent,
    parse_day,
    parse_time_of_day,
    parse_whole_number,
)
from marketplace.core.money import BASIS_POINTS_WHOLE, pounds_or_none
from marketplace.core.views_helpers import act_on_click, act_on_form
from marketplace.orders.services.details import FundingShare
from marketplace.reference.models import PccArea

BUYER_ROLES = (Role.BUYER, Role.APPROVER)
PER_PAGE = 20
SECTION_TITLES = {
    "details": "Details of the need",
    "documents": "Documents",
    "funding": "Funding",
    "criteria": "Award criteria",
    "deadlines": "Deadlines and standstill",
    "panel": "Evaluation panel",
}
_DETAIL_FIELDS = {"estimated_value_pence": "estimated_value"}
_DEADLINE_FIELDS = {"clarification_deadline": "clarification_date", "bid_deadline": "bid_date"}


def _renamed(act, names: dict[str, str]):
    """``act``, with the services' field names in its refusals turned into the form's."""

    def run():
        try:
            return act()
        except BusinessRuleViolation as error:
            error.errors = {names.get(k, k): v for k, v in error.errors.items()}
            raise

    return run


def _managed(competition_id: int) -> Competition:
    try:
        return setup.managed_competition(current_user, current_organisation(), competition_id)
    except DomainError:
        abort(404)


def _draft(competition_id: int) -> Competition:
    competition = _managed(competition_id)
    if competition.status is not CompetitionStatus.DRAFT:
        return abort(redirect(url_for("competitions.manage", competition_id=competition.id)))
    return competition


# ---------------------------------------------------------------------------------------------
# Your competitions, and starting one


@bp.get("/yours")
@roles_required(*BUYER_ROLES, Role.AUTHORITY_ADMIN)
def yours():
    """The competitions of the organisation acted for (as lead buyer or co-funder); for the
    authority, which oversees them all, every competition."""
    organisation = current_organisation()
    authority = permissions.is_authority(current_user, organisation)
    results = paginate(
        queries.all_competitions_query()
        if authority
        else queries.organisation_competitions_query(organisation.id),
        page_number(request.args.get("page")),
        PER_PAGE,
        url_for_page=lambda n: url_for("competitions.yours", page=n),
    )
    return render_template(
        "competitions/yours.html", results=results, organisation=organisation, authority=authority
    )


def _lot_choices() -> list[SelectChoice]:
    return [SelectChoice("", "Choose the arrangement and lot")] + [
        SelectChoice(str(lot.id), f"{lot.arrangement.name}: {lot.category.name}")
        for lot in setup.buyable_lots()
    ]


def _area_choices() -> list[SelectChoice]:
    lots = setup.buyable_lots()
    region_rows = {r.id: r for lot in lots for r in lot.arrangement.regions}
    regions = sorted(region_rows.values(), key=lambda r: r.name)
    pccs = db.session.scalars(
        sa.select(PccArea)
        .where(PccArea.region_id.in_(list(region_rows) or [0]))
        .order_by(PccArea.name)
    ).all()
    return [SelectChoice(f"region:{r.id}", f"{r.name} (probation region)") for r in regions] + [
        SelectChoice(f"pcc:{p.id}", f"{p.name} (PCC area)") for p in pccs
    ]


def _details_from(form: DetailsForm) -> setup.CompetitionDetails:
    region_ids, pcc_ids = [], []
    for value in form.areas.data or []:
        kind, _, pk = value.partition(":")
        number = parse_whole_number(pk)
        (region_ids if kind == "region" else pcc_ids).append(number)
    chargeable = form.missed_sessions_chargeable.data
    return setup.CompetitionDetails(
        title=form.title.data or "",
        need=form.need.data or "",
        lot_id=parse_whole_number(form.lot_id.data),
        region_ids=region_ids,
        pcc_area_ids=pcc_ids,
        estimated_value_pence=pounds_or_none(form.estimated_value.data),
        quantity=parse_whole_number(form.quantity.data),
        unit=form.unit.data or None,
        contract_start=parse_day(form.contract_start.data),
        contract_end=parse_day(form.contract_end.data),
        missed_sessions_chargeable=chargeable == "yes",
    )


def _details_form() -> DetailsForm:
    form = DetailsForm()
    form.lot_id.choices = _lot_choices()
    form.areas.choices = _area_choices()
    return form


def _prefill_from_listing(form: DetailsForm) -> None:
    """From a listing (or the refusal above the limit): its lot, its areas and the value."""
    listing_id = parse_whole_number(request.args.get("listing_id"))
    value = parse_whole_number(request.args.get("value_pence"), max_digits=12)
    listing = db.session.get(Listing, listing_id) if listing_id else None
    if listing is not None:
        lot = db.session.scalar(
            sa.select(ArrangementLot)
            .join(ArrangementLot.arrangement)
            .where(
                ArrangementLot.id == listing.lot_id,
                ArrangementLot.arrangement.has(status=ArrangementStatus.LIVE),
            )
        )
        if lot is not None:
            form.lot_id.data = str(lot.id)
        form.areas.data = [
            f"region:{a.region_id}" if a.region_id else f"pcc:{a.pcc_area_id}"
            for a in queries.listing_areas(listing)
        ]
    if value and value > 0:
        pounds, pence = divmod(value, 100)
        form.estimated_value.data = f"{pounds}" if not pence else f"{pounds}.{pence:02d}"


@bp.route("/new", methods=["GET", "POST"])
@roles_required(*BUYER_ROLES)
def start():
    """Start a competition: the details section of a new draft. ``listing_id`` and
    ``value_pence`` (query) prefill the lot, the listing's areas and the estimated value."""
    organisation = current_organisation()
    form = _details_form()
    if request.method == "GET":
        _prefill_from_listing(form)
        form.missed_sessions_chargeable.data = form.missed_sessions_chargeable.data or "no"
    created: list[Competition] = []

    def act():
        created.append(setup.start_competition(current_user, organisation, _details_from(form)))

    if act_on_form(form, _renamed(act, _DETAIL_FIELDS), "Competition started. Saved as a draft."):
        return redirect(url_for("competitions.task_list", competition_id=created[0].id))
    return render_template(
        "competitions/details.html", form=form, competition=None, organisation=organisation
    ), (422 if form.errors else 200)


# ---------------------------------------------------------------------------------------------
# The task list and its sections


@bp.get("/<int:competition_id>/set-up")
@roles_required(*BUYER_ROLES)
def task_list(competition_id: int):
    competition = _draft(competition_id)
    errors = setup.section_errors(competition, utcnow())
    return render_template(
        "competitions/task_list.html",
        competition=competition,
        sections=[
            (key, SECTION_TITLES[key], not errors[key], key == "documents")
            for key in setup.SECTIONS
        ],
        ready=not any(errors.values()),
    )


@bp.route("/<int:competition_id>/details", methods=["GET", "POST"])
@roles_required(*BUYER_ROLES)
def details(competition_id: int):
    competition = _draft(competition_id)
    form = _details_form()
    if request.method == "GET":
        form.title.data = competition.title
        form.need.data = competition.need
        form.lot_id.data = str(competition.lot_id)
        form.areas.data = [
            f"region:{a.region_id}" if a.region_id else f"pcc:{a.pcc_area_id}"
            for a in competition.areas
        ]
        pounds, pence = divmod(competition.estimated_value_pence, 100)
        form.estimated_value.data = f"{pounds}" if not pence else f"{pounds}.{pence:02d}"
        form.quantity.data = str(competition.quantity)
        form.unit.data = competition.unit.value
        form.contract_start.data = competition.contract_start.isoformat()
        form.contract_end.data = competition.contract_end.isoformat()
        form.missed_sessions_chargeable.data = (
            "yes" if competition.missed_sessions_chargeable else "no"
        )
    act = _renamed(
        lambda: setup.change_details(current_user, competition, _details_from(form)),
        _DETAIL_FIELDS,
    )
    if act_on_form(form, act, "Details saved."):
        return redirect(url_for("competitions.task_list", competition_id=competition_id))
    return render_template("competitions/details.html", form=form, competition=competition), (
        422 if form.errors else 200
    )


@bp.route("/<int:competition_id>/documents", methods=["GET", "POST"])
@roles_required(*BUYER_ROLES)
def documents_page(competition_id: int):
    competition = _draft(competition_id)
    form = DocumentForm()

    def act():
        upload = form.file.data
        if upload is None or not getattr(upload, "filename", ""):
            raise BusinessRuleViolation({"file": ["Select a file to upload"]})
        documents.add_document(current_user, competition, upload.filename, upload.stream)

    if act_on_form(form, act, "Document uploaded."):
        return redirect(url_for("competitions.documents_page", competition_id=competition_id))
    competition = db.session.get(Competition, competition_id)
    return render_template(
        "competitions/documents.html",
        form=form,
        competition=competition,
        remove_form=ClickForm(),
    ), (422 if form.errors else 200)


@bp.post("/<int:competition_id>/documents/<int:document_id>/remove")
@roles_required(*BUYER_ROLES)
def remove_document(competition_id: int, document_id: int):
    competition = _draft(competition_id)
    act_on_click(
        ClickForm(),
        lambda: documents.remove_document(current_user, competition, document_id),
        "Document removed.",
    )
    return redirect(url_for("competitions.documents_page", competition_id=competition_id))


@bp.get("/<int:competition_id>/documents/<int:document_id>")
@login_required
def document(competition_id: int, document_id: int):
    """Download a document: the buyer, funders, panel and authority; invited providers once
    it is published."""
    competition = visible_competition(competition_id)
    found = db.session.get(CompetitionDocument, document_id)
    if (
        found is None
        or found.competition_id != competition.id
        or not queries.can_read_documents(current_user, current_organisation(), competition)
    ):
        abort(404)
    return documents.document_download(found)


def _funding_rows(form) -> tuple[list[FundingShare], dict[int, str]]:
    """The shares as entered (the lead's first), and for each share's index the form row."""
    organisation = current_organisation()
    shares = [FundingShare(organisation.id, basis_points_from_percent(form.lead_share.data) or 0)]
    rows = {0: "lead_share"}
    for n in range(1, FUNDER_ROWS + 1):
        funder = getattr(form, f"funder_{n}").data
        share = getattr(form, f"share_{n}").data
        if not funder and not share:
            continue
        rows[len(shares)] = str(n)
        shares.append(
            FundingShare(parse_whole_number(funder), basis_points_from_percent(share) or 0)
        )
    return shares, rows


@bp.route("/<int:competition_id>/funding", methods=["GET", "POST"])
@roles_required(*BUYER_ROLES)
def funding(competition_id: int):
    competition = _draft(competition_id)
    form = FundingForm()
    choices = [SelectChoice("", "No co-funder")] + [
        SelectChoice(str(o.id), o.name) for o in setup.funder_choices(competition)
    ]
    for n in range(1, FUNDER_ROWS + 1):
        getattr(form, f"funder_{n}").choices = choices
    if request.method == "GET":
        co = [f for f in competition.funders if f.organisation_id != competition.buyer_id]
        lead = next(
            (f for f in competition.funders if f.organisation_id == competition.buyer_id), None
        )
        form.lead_share.data = _percent(lead.basis_points if lead else BASIS_POINTS_WHOLE)
        for n, funder in enumerate(co[:FUNDER_ROWS], start=1):
            getattr(form, f"funder_{n}").data = str(funder.organisation_id)
            getattr(form, f"share_{n}").data = _percent(funder.basis_points)
    shares, rows = _funding_rows(form)

    def field_for(key: str) -> str:
        if not key.startswith("shares-"):
            return "lead_share"
        _, index, what = key.split("-", 2)
        row = rows.get(int(index), "lead_share")
        if row == "lead_share":
            return row
        return f"funder_{row}" if what == "organisation_id" else f"share_{row}"

    def act():
        try:
            setup.set_funding(current_user, competition, shares)
        except BusinessRuleViolation as error:
            renamed: dict[str, list[str]] = {}
            for key, messages in error.errors.items():
                renamed.setdefault(field_for(key), []).extend(messages)
            error.errors = renamed
            raise

    if act_on_form(form, act, "Funding saved."):
        return redirect(url_for("competitions.task_list", competition_id=competition_id))
    return render_template(
        "competitions/funding.html", form=form, competition=competition, rows=FUNDER_ROWS
    ), (422 if form.errors else 200)


def _percent(points: int) -> str:
    whole, part = divmod(points, 100)
    return f"{whole}" if not part else f"{whole}.{part:02d}".rstrip("0")


@bp.route("/<int:competition_id>/criteria", methods=["GET", "POST"])
@roles_required(*BUYER_ROLES)
def criteria(competition_id: int):
    competition = _draft(competition_id)
    form = PriceForm()
    if request.method == "GET":
        form.price_weight.data = str(competition.price_weight)
        form.price_formula.data = competition.price_formula.value
        form.tie_break.data = competition.tie_break.value
    act = lambda: setup.set_price_criteria(  # noqa: E731
        current_user,
        competition,
        price_weight=parse_whole_number(form.price_weight.data),
        price_formula=form.price_formula.data,
        tie_break=form.tie_break.data,
    )
    if act_on_form(form, act, "Price and tie-break saved."):
        return redirect(url_for("competitions.criteria", competition_id=competition_id))
    competition = db.session.get(Competition, competition_id)
    return render_template(
        "competitions/criteria.html",
        form=form,
        competition=competition,
        problems=setup.criteria_errors(competition).get("questions", []),
        remove_form=ClickForm(),
    ), (422 if form.errors else 200)


@bp.route("/<int:competition_id>/questions/new", methods=["GET", "POST"])
@roles_required(*BUYER_ROLES)
def add_question(competition_id: int):
    competition = _draft(competition_id)
    form = QuestionForm()
    if request.method == "GET":
        form.kind.data = request.args.get("kind") or "quality"
        form.max_score.data = "4"
    act = lambda: setup.add_question(  # noqa: E731
        current_user,
        competition,
        setup.QuestionDetails(
            kind=form.kind.data,
            text=form.text.data or "",
            scoring_scheme=form.scoring_scheme.data or "",
            word_limit=parse_whole_number(form.word_limit.data),
            max_score=parse_whole_number(form.max_score.data),
            weight=parse_whole_number(form.weight.data),
        ),
    )
    if act_on_form(form, act, "Question added."):
        return redirect(url_for("competitions.criteria", competition_id=competition_id))
    return render_template("competitions/question.html", form=form, competition=competition), (
        422 if form.errors else 200
    )


@bp.post("/<int:competition_id>/questions/<int:question_id>/remove")
@roles_required(*BUYER_ROLES)
def remove_question(competition_id: int, question_id: int):
    competition = _draft(competition_id)
    act_on_click(
        ClickForm(),
        lambda: setup.remove_question(current_user, competition, question_id),
        "Question removed.",
    )
    return redirect(url_for("competitions.criteria", competition_id=competition_id))


def london_moment(day_text: str | None, time_text: str | None) -> datetime | None:
    """A London date and time of day as typed, as a UTC moment; None if either is unreadable."""
    day, moment = parse_day(day_text), parse_time_of_day(time_text)
    if day is None or moment is None:
        return None
    return datetime.combine(day, moment, tzinfo=LONDON).astimezone(UTC)


def _london_parts(moment: datetime | None) -> tuple[str, str]:
    if moment is None:
        return "", ""
    local = moment.astimezone(LONDON)
    return local.date().isoformat(), local.strftime("%H:%M")


@bp.route("/<int:competition_id>/deadlines", methods=["GET", "POST"])
@roles_required(*BUYER_ROLES)
def deadlines(competition_id: int):
    competition = _draft(competition_id)
    form = DeadlinesForm()
    if request.method == "GET":
        form.clarification_date.data, form.clarification_time.data = _london_parts(
            competition.clarification_deadline
        )
        form.bid_date.data, form.bid_time.data = _london_parts(competition.bid_deadline)
        form.bid_time.data = form.bid_time.data or "12:00"
        form.clarification_time.data = form.clarification_time.data or "12:00"
        form.standstill_working_days.data = str(competition.standstill_working_days)
        form.standstill_reason.data = competition.standstill_reason
    act = _renamed(
        lambda: setup.set_deadlines(
            current_user,
            competition,
            clarification_deadline=london_moment(
                form.clarification_date.data, form.clarification_time.data
            ),
            bid_deadline=london_moment(form.bid_date.data, form.bid_time.data),
            standstill_working_days=parse_whole_number(form.standstill_working_days.data),
            standstill_reason=form.standstill_reason.data or "",
        ),
        _DEADLINE_FIELDS,
    )
    if act_on_form(form, act, "Deadlines saved."):
        return redirect(url_for("competitions.task_list", competition_id=competition_id))
    return render_template(
        "competitions/deadlines.html",
        form=form,
        competition=competition,
        min_days=setup.min_bid_days(),
        today=london_date(),
    ), (422 if form.errors else 200)


@bp.route("/<int:competition_id>/panel", methods=["GET", "POST"])
@roles_required(*BUYER_ROLES)
def panel(competition_id: int):
    competition = _draft(competition_id)
    form = PanelForm()
    form.user_ids.choices = [
        SelectChoice(user.id, f"{user.name} ({organisation.name})")
        for user, organisation in setup.panel_choices(competition)
    ]
    if request.method == "GET":
        form.user_ids.data = [e.user_id for e in competition.evaluators]
        form.single_evaluator_reason.data = competition.single_evaluator_reason
    act = lambda: setup.set_panel(  # noqa: E731
        current_user,
        competition,
        setup.PanelDetails(form.user_ids.data or [], form.single_evaluator_reason.data or ""),
    )
    if act_on_form(form, act, "Evaluation panel saved."):
        return redirect(url_for("competitions.task_list", competition_id=competition_id))
    return render_template("competitions/panel.html", form=form, competition=competition), (
        422 if form.errors else 200
    )


# ---------------------------------------------------------------------------------------------
# Check your answers, publish


@bp.route("/<int:competition_id>/check", methods=["GET", "POST"])
@roles_required(*BUYER_ROLES)
def check(competition_id: int):
    """Check your answers; the button publishes."""
    competition = _draft(competition_id)
    form = PublishForm()

    def act():
        try:
            publishing.publish(current_user, competition)
        except BusinessRuleViolation as error:
            # Whatever section it names, the answer is on this page: shown at its button.
            error.errors = {"confirm": [m for ms in error.errors.values() for m in ms]}
            raise

    if act_on_form(form, act, "Competition published. Every invited provider has been emailed."):
        return redirect(url_for("competitions.manage", competition_id=competition_id))
    competition = db.session.get(Competition, competition_id)
    problems = [
        (
            SECTION_TITLES[key],
            message,
            url_for(f"competitions.{key}", competition_id=competition_id),
        )
        for key, errors in setup.section_errors(competition, utcnow()).items()
        for messages in errors.values()
        for message in messages
    ]
    # A refusal to publish lists every problem, each linking to the section that fixes it
    # (not one message at the button, which fixes nothing); anything else links to the button.
    refused = [m for ms in form.errors.values() for m in ms]
    listed = {message for _, message, _ in problems}
    summary = []
    if refused:
        summary = [{"text": f"{s}: {message}", "href": href} for s, message, href in problems]
        summary += [{"text": m, "href": "#publish"} for m in refused if m not in listed]
    return render_template(
        "competitions/check.html",
        form=form,
        competition=competition,
        problems=problems,
        summary=summary,
        min_days=setup.min_bid_days(),
    ), (422 if form.errors else 200)


# ---------------------------------------------------------------------------------------------
# The buyer's competition page, the invited list, cancelling


@bp.get("/<int:competition_id>/manage")
@login_required
def manage(competition_id: int):
    """The overview for the buyer, funders, panel and authority."""
    competition = visible_competition(competition_id)
    organisation = current_organisation()
    if not permissions.can_oversee(current_user, organisation, competition):
        abort(404)
    authority = permissions.is_authority(current_user, organisation)
    return render_template(
        "competitions/manage.html",
        competition=competition,
        invited=queries.invited_list(competition.id),
        pending=(
            db.session.scalars(publishing.pending_applications_query(competition)).all()
            if authority and competition.status is not CompetitionStatus.DRAFT
            else []
        ),
        authority=authority,
        can_manage=permissions.can_manage(current_user, organisation, competition),
        can_cancel=permissions.can_manage(current_user, organisation, competition)
        and competition.is_open,
        sealed=permissions.bids_are_sealed(competition),
    )


@bp.get("/<int:competition_id>/invited.csv")
@login_required
def invited_csv(competition_id: int):
    competition = visible_competition(competition_id)
    if not permissions.can_oversee(current_user, current_organisation(), competition):
        abort(404)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["provider", "type", "invited_at_london", "how_invited"])
    for invitation in queries.invited_list(competition.id):
        writer.writerow(
            [
                _csv_safe(invitation.organisation.name),
                invitation.organisation.type.value,
                invitation.invited_at.astimezone(LONDON).strftime("%Y-%m-%d %H:%M"),
                invitation.because.value,
            ]
        )
    name = competition.reference or f"competition-{competition.id}"
    return Response(
        out.getvalue(),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="{name}-invited.csv"',
            "Cache-Control": "private, no-store",
        },
    )


def _csv_safe(text: str) -> str:
    """A cell a spreadsheet will not run as a formula."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


@bp.route("/<int:competition_id>/cancel", methods=["GET", "POST"])
@roles_required(*BUYER_ROLES)
def cancel(competition_id: int):
    competition = _managed(competition_id)
    form = CancelForm()
    if act_on_form(
        form,
        lambda: cancelling.cancel(current_user, competition, form.reason.data or ""),
        "Competition cancelled. Everyone invited has been told.",
    ):
        return redirect(url_for("competitions.manage", competition_id=competition_id))
    return render_template("competitions/cancel.html", form=form, competition=competition), (
        422 if form.errors else 200
    )
