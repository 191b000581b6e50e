"""The public list of open further competitions and each published competition's public page:
anyone may read them, signed out too. A provider that is not invited is pointed to joining the
arrangement; an invited one to its bid."""

from __future__ import annotations

from flask import abort, current_app, render_template, request, url_for
from flask_login import current_user

from marketplace.accounts.queries import page_number, paginate
from marketplace.accounts.session import current_organisation
from marketplace.competitions import permissions, queries
from marketplace.competitions.models import CompetitionStatus
from marketplace.competitions.views import bp, visible_competition

PER_PAGE = 20


@bp.get("")
def index():
    """Open competitions: title, lot, areas, value band, deadlines."""
    results = paginate(
        queries.open_competitions_query(),
        page_number(request.args.get("page")),
        PER_PAGE,
        url_for_page=lambda n: url_for("competitions.index", page=n),
    )
    return render_template(
        "competitions/index.html", results=results, value_band=queries.value_band
    )


@bp.get("/<int:competition_id>")
def public(competition_id: int):
    """A published competition's public page: the need, the criteria and weights, deadlines."""
    competition = visible_competition(competition_id)
    if competition.status is CompetitionStatus.DRAFT:
        abort(404)
    organisation = current_organisation() if current_user.is_authenticated else None
    is_provider = organisation is not None and bool(
        current_user.roles_in(organisation) & permissions.PROVIDER_ROLES
    )
    invited = (
        queries.invitation(competition.id, organisation.id) is not None if is_provider else False
    )
    return render_template(
        "competitions/public.html",
        competition=competition,
        value_band=queries.value_band(competition.estimated_value_pence),
        is_provider=is_provider,
        invited=invited,
        bid_link="competitions.bid" in current_app.view_functions,
        overseer=organisation is not None
        and permissions.can_oversee(current_user, organisation, competition),
        documents_visible=organisation is not None
        and queries.can_read_documents(current_user, organisation, competition),
    )
