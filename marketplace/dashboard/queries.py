"""What each role should do next, for the home page (read-only)."""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa
from flask import url_for
from sqlalchemy.orm import selectinload

from marketplace.accounts.models import (
    COMMISSIONER_TYPES,
    PROVIDER_TYPES,
    Invitation,
    Membership,
    Organisation,
    Role,
    User,
)
from marketplace.accreditation.models import (
    Application,
    ApplicationStatus,
    ArrangementLot,
    LotMembership,
    MembershipStatus,
    RedeclarationRequest,
)
from marketplace.accreditation.services.evidence import EXPIRY_WARNING_DAYS, expiring_within
from marketplace.accreditation.services.memberships import count_pending_renewals
from marketplace.catalogue.services.vat import listings_needing_vat_registration
from marketplace.competitions.home import (
    CommissionerCounts,
    commissioner_counts_columns,
)
from marketplace.competitions.home import home_items as competition_home_items
from marketplace.competitions.queries.provider import home_invitations
from marketplace.core.cache import read_committed
from marketplace.core.clock import financial_year, financial_year_label, london_date, utcnow
from marketplace.core.db import db
from marketplace.core.filters import london_datetime, pounds
from marketplace.core.store import PrecompiledRead
from marketplace.core.urls import fixed_url
from marketplace.orders.permissions import PARTY_ROLES
from marketplace.orders.queries import (
    HOME_FIGURES_WIDTH,
    HomeFigures,
    home_figures,
    home_figures_from_row,
    home_figures_statement,
)


@dataclass
class Action:
    title: str
    body: str
    href: str
    link_text: str
    count: int | None = None
    # Further (text, href) links under the first: other pages the same work needs.
    more_links: list[tuple[str, str]] = field(default_factory=list)


def _pending_invitations(organisation: Organisation) -> int:
    return (
        db.session.scalar(
            sa.select(sa.func.count(Invitation.id)).where(
                Invitation.organisation_id == organisation.id,
                Invitation.accepted_at.is_(None),
                Invitation.revoked_at.is_(None),
                Invitation.expires_at > utcnow(),
            )
        )
        or 0
    )


def _team_size(organisation: Organisation) -> int:
    return (
        db.session.scalar(
            sa.select(sa.func.count(sa.distinct(Membership.user_id))).where(
                Membership.organisation_id == organisation.id
            )
        )
        or 0
    )


def _team_actions(organisation: Organisation) -> list[Action]:
    actions = []
    if _team_size(organisation) <= 1:
        actions.append(
            Action(
                "Invite your colleagues",
                f"You are the only person in {organisation.name}. "
                "Invite colleagues so the work does not depend on one person.",
                fixed_url("accounts.team"),
                "Invite a colleague",
            )
        )
    pending = _pending_invitations(organisation)
    if pending:
        actions.append(
            Action(
                "Invitations waiting to be accepted",
                f"{pending} invitation{'s' if pending != 1 else ''} not yet accepted.",
                fixed_url("accounts.team"),
                "See your team",
                pending,
            )
        )
    return actions


def _invoicing_actions(organisation: Organisation) -> list[Action]:
    """What a provider's invoices cannot go out without, and listings that charge VAT while it
    is not registered for VAT (one query, only for an unregistered provider)."""
    actions = []
    charging = (
        [] if organisation.vat_registered else listings_needing_vat_registration(organisation)
    )
    if charging:
        actions.append(
            Action(
                "Listings that charge VAT while you are not registered for VAT",
                f"{len(charging)} of your listings charge VAT. Record your VAT registration, or "
                "change their VAT treatment to exempt or outside the scope of VAT.",
                fixed_url("accounts.organisation_settings"),
                "See which listings and your VAT registration",
                len(charging),
            )
        )
    if not (organisation.endpoint_id and organisation.has_bank_details):
        actions.append(
            Action(
                "Record what your invoices need",
                "Your invoices cannot be issued until you record your organisation's electronic "
                "address and the bank account you are paid into.",
                fixed_url("accounts.organisation_settings"),
                "Organisation settings",
            )
        )
    return actions


def _applications_waiting() -> tuple[int, int]:
    """Submitted applications not yet decided, and how many are past their decision deadline."""
    open_states = (ApplicationStatus.SUBMITTED, ApplicationStatus.UNDER_ASSESSMENT)
    today = london_date()
    waiting, overdue = db.session.execute(
        sa.select(
            sa.func.count(Application.id),
            sa.func.count(Application.id).filter(Application.decision_due_on < today),
        ).where(Application.status.in_(open_states))
    ).one()
    return waiting, overdue


def _renewals_waiting() -> int:
    """Renewed evidence from members waiting for an assessor."""
    return count_pending_renewals()


def _accreditation_action(organisation: Organisation) -> Action | None:
    """Evidence that has expired or expires soon, for a provider: renewed and accepted in time,
    its memberships never lapse."""
    today = london_date()
    expiring = expiring_within(organisation.id, today)
    if not expiring:
        return None
    expired = [a for a in expiring if a.evidence_expires_on < today]
    first = expiring[0].evidence_expires_on
    if expired:
        body = (
            f"{len(expired)} evidence file{'s have' if len(expired) != 1 else ' has'} expired: "
            "memberships that need it are suspended until renewed evidence is accepted."
        )
    else:
        body = (
            f"{len(expiring)} evidence file{'s expire' if len(expiring) != 1 else ' expires'} "
            f"within {EXPIRY_WARNING_DAYS} days, the first on {first.day} {first:%B %Y}. Upload "
            "renewed evidence before then, so that your memberships are not suspended."
        )
    return Action(
        "Evidence to renew",
        body,
        fixed_url("accreditation.memberships"),
        "Renew your evidence",
        len(expiring),
    )


def _membership_actions(organisation: Organisation) -> list[Action]:
    """A provider's memberships that the authority suspended or asked to re-declare: suspended,
    buyers cannot use it under them; a declaration not renewed in time suspends them."""
    page = fixed_url("accreditation.memberships")
    actions: list[Action] = []
    asked, due_on = db.session.execute(
        sa.select(sa.func.count(RedeclarationRequest.id), sa.func.min(RedeclarationRequest.due_on))
        .join(LotMembership, LotMembership.id == RedeclarationRequest.membership_id)
        .where(
            LotMembership.organisation_id == organisation.id,
            LotMembership.status != MembershipStatus.REMOVED,
            RedeclarationRequest.answered_at.is_(None),
        )
    ).one()
    if asked:
        actions.append(
            Action(
                "Self-declaration to renew",
                f"The contracting authority has asked you to renew your self-declaration for "
                f"{asked} membership{'s' if asked != 1 else ''}, by {due_on.day} "
                f"{due_on:%B %Y}. A membership not renewed by then is suspended until it is.",
                page,
                "Renew your self-declaration",
                asked,
            )
        )
    suspended = list(
        db.session.scalars(
            sa.select(LotMembership)
            .where(
                LotMembership.organisation_id == organisation.id,
                LotMembership.status == MembershipStatus.SUSPENDED,
            )
            .options(
                selectinload(LotMembership.lot).selectinload(ArrangementLot.category),
                selectinload(LotMembership.region),
                selectinload(LotMembership.pcc_area),
            )
            .order_by(LotMembership.id)
        )
    )
    if suspended:
        which = (
            f"Your membership of {suspended[0].lot.category.name} in {suspended[0].area_name} is"
            if len(suspended) == 1
            else f"{len(suspended)} of your memberships are"
        )
        actions.append(
            Action(
                "Membership suspended" if len(suspended) == 1 else "Memberships suspended",
                f"{which} suspended: buyers cannot place call-offs with you under "
                f"{'it' if len(suspended) == 1 else 'them'} and your listings there are hidden. "
                "See why and what to do.",
                page,
                "See your memberships",
                len(suspended),
            )
        )
    return actions


def _call_offs(count: int) -> str:
    return f"{count} call-off{'s' if count != 1 else ''}"


def _call_off_actions(counts: HomeFigures, roles: set[Role]) -> list[Action]:
    """What waits for the organisation's people on its call-offs."""
    waiting_url = fixed_url("orders.index", waiting="yes")
    actions: list[Action] = []
    if roles & {Role.PROVIDER_ADMIN, Role.PROVIDER_EDITOR}:
        if counts.to_respond:
            body = (
                f"{_call_offs(counts.to_respond)} waiting for your organisation to accept or "
                "decline"
                + (f"; {counts.due_today} must be answered today." if counts.due_today else ".")
                + " One not answered by its respond-by date expires."
            )
        else:
            body = "No call-offs are waiting for your response."
        actions.append(
            Action(
                "Call-offs to respond to",
                body,
                waiting_url,
                "See call-offs to respond to",
                counts.to_respond,
            )
        )
        if counts.in_delivery:
            actions.append(
                Action(
                    "Delivery to record",
                    f"{_call_offs(counts.in_delivery)} accepted and not yet completed: record "
                    "delivery as it happens, so that invoices and budgets follow it.",
                    fixed_url("orders.index"),
                    "See call-offs",
                    counts.in_delivery,
                )
            )
    if Role.APPROVER in roles:
        actions.append(
            Action(
                "Call-offs waiting for your approval",
                f"{_call_offs(counts.to_approve)} above the spend limit of the person who placed "
                "it waiting for an approver, within your approval limit."
                if counts.to_approve
                else "Nothing is waiting for approval.",
                waiting_url,
                "See call-offs to approve",
                counts.to_approve,
            )
        )
        if counts.shares_to_confirm:
            actions.append(
                Action(
                    "Funding shares to confirm",
                    f"{_call_offs(counts.shares_to_confirm)} co-funded by your organisation "
                    "waiting for you to confirm its share.",
                    waiting_url,
                    "See shares to confirm",
                    counts.shares_to_confirm,
                )
            )
    if counts.funding_declined and roles & {Role.BUYER, Role.APPROVER}:
        actions.append(
            Action(
                "Co-funding declined",
                f"{_call_offs(counts.funding_declined)} where a co-funder declined its share: "
                "share the call-off out again or cancel it.",
                waiting_url,
                "See call-offs with a declined share",
                counts.funding_declined,
            )
        )
    if counts.variations_to_decide:
        actions.append(
            Action(
                "Variations to decide",
                f"{_call_offs(counts.variations_to_decide)} with a change proposed by the other "
                "side, waiting for your organisation to agree or reject it.",
                waiting_url,
                "See variations to decide",
                counts.variations_to_decide,
            )
        )
    return actions


def _placed_action(figures: HomeFigures) -> Action:
    """The call-offs the organisation leads that are still open, where its people follow them."""
    parts = []
    if figures.with_provider:
        parts.append(
            f"{_call_offs(figures.with_provider)} sent, waiting for the provider to accept or "
            "decline"
        )
    if figures.delivering_for_it:
        parts.append(f"{_call_offs(figures.delivering_for_it)} accepted or being delivered")
    body = (
        "; ".join(parts) + "."
        if parts
        else "None of your organisation's call-offs is open. Find a service and choose "
        "\u201cBuy this service\u201d to place one."
    )
    return Action(
        "Your call-offs",
        body,
        fixed_url("orders.index"),
        "See your call-offs",
        figures.with_provider + figures.delivering_for_it,
    )


def _budget_action(figures: HomeFigures, roles: set[Role]) -> Action:
    """The buyer organisation's budget for this financial year, added up; its approvers set
    and change the budgets."""
    label = financial_year_label(figures.financial_year)
    if figures.budget_allocated_pence is None or figures.budget_available_pence is None:
        body = (
            f"Your organisation has no budget for {label}, so it cannot place or fund "
            "call-offs starting this year."
            + ("" if Role.APPROVER in roles else " Your organisation's approvers set it.")
        )
    else:
        body = (
            f"{pounds(figures.budget_available_pence)} available of "
            f"{pounds(figures.budget_allocated_pence)} allocated, after what open call-offs may "
            "cost and what has been spent."
        )
    more = [("Set a budget", fixed_url("funding.new_budget"))] if Role.APPROVER in roles else []
    # Buyers and approvers belong to commissioning organisations only: each sees its own spend.
    more += [
        ("Your spend", fixed_url("insight.spend")),
        ("The voluntary sector's share of your spend", fixed_url("insight.vcse_share")),
    ]
    return Action(
        f"Budget for {label}",
        body,
        fixed_url("orders.budgets"),
        "See your budgets",
        more_links=more,
    )


def _authorisations_action() -> Action:
    """A commissioner's approvers give lead buyers standing authorisations to commit its share
    of their call-offs (and see the ones their organisation holds)."""
    return Action(
        "Standing authorisations",
        "Let a lead buyer commit your organisation's share of its call-offs without asking "
        "each time, up to a limit per call-off and a total for the year.",
        fixed_url("funding.authorisations"),
        "Manage standing authorisations",
    )


def _competitions_action(organisation: Organisation) -> Action:
    """The further competitions the provider is invited to and still open, with their
    deadlines and its own bid's state (never anyone else's), then its assessment summaries."""
    rows = home_invitations(organisation.id)
    open_ones = [(c, status) for c, status, summary in rows if summary is None]
    links = [
        (
            f"{competition.title}: bids close {london_datetime(competition.bid_deadline)}; "
            f"your bid: {status.label.lower() if status else 'not started'}",
            url_for("competitions.bid", competition_id=competition.id),
        )
        for competition, status in open_ones
    ] + [
        (
            f"Your assessment summary for {competition.reference}: {competition.title}",
            url_for("competitions.assessment_summary", competition_id=competition.id),
        )
        for competition, _status, summary in rows
        if summary is not None
    ]
    return Action(
        "Further competitions you are invited to",
        f"{len(open_ones)} open for bids."
        if open_ones
        else "None open for bids now. When a buyer publishes one for a lot and area you are a "
        "member of, it appears here.",
        fixed_url("competitions.invited"),
        "Your competitions",
        len(open_ones),
        more_links=links,
    )


# A commissioner's call-off figures and further-competition counts, in one statement.
_COMMISSIONER_HOME = PrecompiledRead(
    home_figures_statement().add_columns(*commissioner_counts_columns())
)


def _home_reads(
    user: User, organisation: Organisation, roles: set[Role]
) -> tuple[HomeFigures | None, CommissionerCounts | None]:
    """What the home page reads of the database besides what it keeps: one statement of
    committed data (what waits for approval is what this person can approve)."""
    if not roles & PARTY_ROLES:
        return None, None
    today = london_date()
    year = financial_year(today)
    if not organisation.type.is_commissioner:
        return home_figures(organisation.id, today, year, user.id), None
    row = read_committed(
        _COMMISSIONER_HOME,
        organisation_id=organisation.id,
        today=today,
        financial_year=year,
        user_id=user.id,
        now=utcnow(),
    )
    return (
        home_figures_from_row(row, year),
        CommissionerCounts.from_row(row[HOME_FIGURES_WIDTH:]),
    )


def next_actions(user: User, organisation: Organisation | None) -> list[Action]:
    """The real next steps for this person in this organisation, most important first."""
    if organisation is None:
        return []
    roles = user.roles_in(organisation)
    actions: list[Action] = []
    if Role.AUTHORITY_ADMIN in roles:
        counts = dict(
            db.session.execute(
                sa.select(Organisation.type, sa.func.count(Organisation.id))
                .where(Organisation.active.is_(True))
                .group_by(Organisation.type)
            ).all()
        )
        providers = sum(counts.get(t, 0) for t in PROVIDER_TYPES)
        commissioners = sum(counts.get(t, 0) for t in COMMISSIONER_TYPES)
        actions.append(
            Action(
                "Organisations",
                f"{providers} provider and {commissioners} commissioning organisations are active.",
                fixed_url("accounts.organisations"),
                "Manage organisations",
            )
        )
        actions.append(
            Action(
                "Set up an arrangement",
                "Create the dynamic purchasing system's "
                "arrangements, lots and criteria so that providers can apply.",
                fixed_url("accreditation.arrangements"),
                "Go to arrangements",
            )
        )
        actions.append(
            Action(
                "Members",
                "Suspend, reinstate or remove members of the arrangements, and ask them to renew "
                "their self-declarations.",
                fixed_url("accreditation.members"),
                "Go to the members page",
            )
        )
        actions.append(
            Action(
                "Further competitions",
                "Every further competition: its invited list, the applications from providers "
                "in its lot and areas to decide first, and its bids once they close.",
                fixed_url("competitions.yours"),
                "See every further competition",
            )
        )
        actions.append(
            Action(
                "Audit log",
                "Every change in the marketplace is recorded.",
                fixed_url("accounts.audit_log"),
                "Search the audit log",
            )
        )
        actions.append(
            Action(
                "Budgets",
                "Every commissioning organisation's budgets by financial year: allocated, "
                "committed, spent and available.",
                fixed_url("funding.all_budgets"),
                "See every organisation's budgets",
                more_links=[
                    ("Spend by region, category and commissioner", fixed_url("insight.spend")),
                    ("The voluntary sector's share of spend", fixed_url("insight.vcse_share")),
                ],
            )
        )
    if roles & {Role.ASSESSOR, Role.AUTHORITY_ADMIN}:
        waiting, overdue = _applications_waiting()
        body = (
            f"{waiting} application{'s' if waiting != 1 else ''} waiting for a decision"
            + (f", {overdue} past the decision deadline." if overdue else ".")
            if waiting
            else "No applications are waiting for a decision."
        )
        actions.append(
            Action(
                "Applications to assess",
                body,
                fixed_url("accreditation.assessments"),
                "Go to the assessment queue",
                waiting,
            )
        )
        renewals = _renewals_waiting()
        actions.append(
            Action(
                "Renewed evidence to check",
                f"{renewals} renewed evidence file{'s' if renewals != 1 else ''} from members "
                "waiting to be accepted or rejected. It counts only once accepted."
                if renewals
                else "No renewed evidence is waiting to be checked.",
                fixed_url("accreditation.renewals"),
                "Check renewed evidence",
                renewals,
            )
        )
    # What waits for the organisation comes before what it could do at any time.
    figures, counts = _home_reads(user, organisation, roles)
    # Competitions to evaluate or award, and questions to answer.
    actions.extend(
        Action(i.title, i.body, i.href, i.link_text, i.count, list(i.more_links))
        for i in competition_home_items(user, organisation, roles, counts)
    )
    if figures is not None:
        actions.extend(_call_off_actions(figures, roles))
    if roles & {Role.BUYER, Role.APPROVER} and organisation.type.is_commissioner:
        actions.append(
            Action(
                "Further competitions",
                "For a need too big for the rate card: put it to every member of the lot in "
                "its areas, with co-funders, scored on price, quality and social value.",
                fixed_url("competitions.yours"),
                "Your competitions",
                more_links=[
                    ("Start a further competition", fixed_url("competitions.start")),
                    ("Open competitions", fixed_url("competitions.index")),
                ],
            )
        )
    if roles & {Role.PROVIDER_ADMIN, Role.PROVIDER_EDITOR}:
        actions.append(_competitions_action(organisation))
        actions.extend(_membership_actions(organisation))
        accreditation = _accreditation_action(organisation)
        if accreditation is not None:
            actions.append(accreditation)
    if Role.PROVIDER_ADMIN in roles:
        actions.extend(_invoicing_actions(organisation))
        actions.append(
            Action(
                "Join the dynamic purchasing system",
                "Apply to the lots and regions you "
                "deliver in. Every provider that meets the criteria is admitted, and "
                "decisions come within 10 working days.",
                fixed_url("accreditation.applications"),
                "Your applications",
            )
        )
    if roles & {Role.PROVIDER_ADMIN, Role.PROVIDER_EDITOR}:
        actions.append(
            Action(
                "Your rate card",
                "List your services with unit prices and capacity once you are admitted. See "
                "your rate card as buyers do, download it as a spreadsheet, and import your "
                "changes.",
                fixed_url("catalogue.index"),
                "Your listings",
                more_links=[
                    (
                        "Your published rate card and downloads",
                        url_for("catalogue.rate_card", provider_id=organisation.id),
                    ),
                    (
                        "Update your rate card from a spreadsheet",
                        fixed_url("catalogue.import_rate_card"),
                    ),
                ],
            )
        )
    if roles & {Role.BUYER, Role.APPROVER}:
        actions.append(
            Action(
                "Find a service",
                "Search the rate cards for a service for a person on "
                "probation, by need, area and availability.",
                # The search itself: /catalogue/ is a provider's own rate card.
                fixed_url("catalogue_search.search"),
                "Find services",
            )
        )
        if figures is not None:
            actions.append(_placed_action(figures))
            actions.append(_budget_action(figures, roles))
        if Role.APPROVER in roles and organisation.type.is_commissioner:
            actions.append(_authorisations_action())
    if roles & {Role.PROVIDER_ADMIN, Role.APPROVER, Role.AUTHORITY_ADMIN}:
        actions.extend(_team_actions(organisation))
    if not user.two_factor_enabled:
        actions.append(
            Action(
                "Protect your account",
                "Turn on two-factor authentication so that a "
                "stolen password is not enough to sign in as you.",
                fixed_url("accounts.two_factor_setup"),
                "Set up two-factor authentication",
            )
        )
    return actions
