"""What waits for an organisation on its call-offs (the list's filter, the home page's counts),
the home page's cards for each side, and the list's "waiting for us" panel and filter."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from marketplace.accounts.models import Role
from marketplace.core.clock import financial_year, london_date
from marketplace.core.db import commit, db
from marketplace.orders import queries
from marketplace.orders.models import Budget, CallOff, CallOffStatus
from marketplace.orders.services import placing, responses
from marketplace.orders.services import variations as order_variations
from marketplace.reference.models import ServiceCategory
from tests.factories import add_membership, make_member, make_organisation
from tests.orders.factories import build_orders_world, details, shares


@pytest.fixture
def world(app):
    return build_orders_world(price_pence=10_000)


def place(world, **fields):
    return placing.place_call_off(
        world.buyer, world.region, world.listing.id, details(world, **fields)
    )


def one_of_each(world, app, monkeypatch) -> dict[str, CallOff]:
    """A call-off in each state that can wait for someone, and some that cannot."""
    made = {}
    made["co_funded"] = place(world, shares=shares((world.region, 6_000), (world.pcc, 4_000)))
    monkeypatch.setitem(app.config, "BUYER_SPEND_LIMIT_PENCE", 50_000)
    made["over_limit"] = place(world, quantity=6)  # £600 over a £500 limit
    monkeypatch.setitem(app.config, "BUYER_SPEND_LIMIT_PENCE", 10_000_000)
    made["sent"] = place(world)
    made["provider_proposed"] = place(world)
    responses.accept(world.provider_admin, made["provider_proposed"])
    order_variations.propose_variation(
        world.provider_admin, made["provider_proposed"], extra_units=2, reason="More sessions"
    )
    made["buyer_proposed"] = place(world)
    responses.accept(world.provider_admin, made["buyer_proposed"])
    order_variations.propose_variation(
        world.buyer, made["buyer_proposed"], extra_units=1, reason="One more session"
    )
    made["accepted"] = place(world)
    responses.accept(world.provider_admin, made["accepted"])
    made["declined"] = place(world)
    responses.decline(world.provider_admin, made["declined"], "No places left")
    db.session.flush()
    return made


def waiting_in_sql(organisation) -> set[int]:
    return set(
        db.session.scalars(sa.select(CallOff.id).where(queries.waiting_condition(organisation.id)))
    )


def test_what_waits_for_each_party_and_for_nobody_else(world, app, monkeypatch):
    made = one_of_each(world, app, monkeypatch)
    assert made["co_funded"].status == CallOffStatus.AWAITING_FUNDING
    assert made["over_limit"].status == CallOffStatus.AWAITING_APPROVAL
    outsider = make_organisation()
    expected = {
        world.region: {"over_limit", "provider_proposed"},
        world.pcc: {"co_funded"},
        world.provider: {"sent", "buyer_proposed"},
        outsider: set(),
    }
    for organisation, names in expected.items():
        ids = {made[name].id for name in names}
        assert waiting_in_sql(organisation) == ids, organisation.name


def counts_of(figures: queries.HomeFigures) -> tuple[int, ...]:
    return (
        figures.to_respond,
        figures.due_today,
        figures.to_approve,
        figures.shares_to_confirm,
        figures.variations_to_decide,
        figures.in_delivery,
    )


def test_the_home_page_figures_read_what_is_committed_outside_the_session(
    world, app, monkeypatch, count_queries
):
    made = one_of_each(world, app, monkeypatch)
    commit()
    today, year = london_date(), financial_year(world.start)
    provider_id = world.provider.id
    # What is committed, in one query (on a connection of its own: see page_cache).
    with count_queries() as counter:
        provider = queries.home_figures(provider_id, today, year)
    assert counter.count == 1, counter.statements
    # to respond, due today, to approve, shares to confirm, variations, in delivery
    assert counts_of(provider) == (1, 0, 0, 0, 1, 3)
    assert counts_of(queries.home_figures(world.region.id, today, year)) == (0, 0, 1, 0, 1, 0)
    assert counts_of(queries.home_figures(world.pcc.id, today, year)) == (0, 0, 0, 1, 0, 0)
    # On its respond-by date the provider is told it must answer today.
    due = queries.home_figures(world.provider.id, made["sent"].respond_by, year)
    assert (due.to_respond, due.due_today) == (1, 1)
    nobody = queries.home_figures(make_organisation().id, today, year)
    assert counts_of(nobody) == (0, 0, 0, 0, 0, 0)
    assert nobody.budget_allocated_pence is None and nobody.budget_available_pence is None


def test_the_budget_figures_add_up_the_years_budgets(world):
    year = financial_year(world.start)
    other_category = db.session.scalar(
        sa.select(ServiceCategory.id).where(ServiceCategory.id != world.listing.lot.category_id)
    )
    db.session.add(
        Budget(
            organisation=world.region,
            financial_year=year,
            category_id=other_category,
            allocated_pence=50_000,
            spent_pence=1_000,
        )
    )
    db.session.add(Budget(organisation=world.region, financial_year=year + 1, allocated_pence=7))
    place(world, quantity=3)  # £300 committed from the general budget
    figures = queries.home_figures(world.region.id, london_date(), year)
    assert figures.budget_allocated_pence is None  # what is committed: nothing yet
    commit()
    figures = queries.home_figures(world.region.id, london_date(), year)
    assert figures.budget_allocated_pence == 10_000_000 + 50_000
    assert figures.budget_available_pence == 10_000_000 + 50_000 - 30_000 - 1_000
    # The PCC is party to no call-off: its budget is added up all the same.
    assert queries.home_figures(world.pcc.id, london_date(), year).budget_allocated_pence == (
        10_000_000
    )


# --- the home page


def card(html: str, title: str) -> str:
    """The text of the home page's card with this title ('' if there is none)."""
    for chunk in html.split('class="app-dashboard-card"')[1:]:
        if title in chunk.split("</h3>", 1)[0]:
            return " ".join(chunk.split("</div>", 1)[0].split())
    return ""


def test_the_home_page_says_what_waits_for_each_side(web, world, app, monkeypatch):
    one_of_each(world, app, monkeypatch)
    commit()

    web.as_user(world.provider_admin, world.provider)
    html = web.get("/").get_data(as_text=True)
    respond = card(html, "Call-offs to respond to")
    assert ">1</strong>" in respond and "1 call-off waiting for your organisation" in respond
    assert 'href="/call-offs/?waiting=yes"' in respond
    # What waits comes before what can be done at any time.
    assert html.index("Call-offs to respond to") < html.index("Join the dynamic purchasing")
    assert "3 call-offs accepted and not yet completed" in card(html, "Delivery to record")
    assert "1 call-off with a change proposed" in card(html, "Variations to decide")

    web.as_user(world.approver, world.region)
    html = web.get("/").get_data(as_text=True)
    assert "1 call-off above the spend limit" in card(html, "Call-offs waiting for your approval")
    assert "1 call-off with a change proposed" in card(html, "Variations to decide")
    assert card(html, "Funding shares to confirm") == ""

    web.as_user(world.pcc_approver, world.pcc)
    html = web.get("/").get_data(as_text=True)
    assert "1 call-off co-funded by your organisation" in card(html, "Funding shares to confirm")
    assert "Nothing is waiting for approval." in card(html, "Call-offs waiting for your approval")
    assert card(html, "Variations to decide") == ""
    # Each card's link says where it leads: two cards on one page, one link text each.
    links = re.findall(r"<a class=\"govuk-link\" href=\"[^\"]*\">([^<]+)</a>", html)
    assert "See shares to confirm" in links and "See call-offs to approve" in links
    assert len(links) == len(set(links)), links


def test_a_buyer_sees_the_years_budget_and_a_clear_word_without_one(web, world):
    place(world, quantity=2)  # £200 committed
    commit()
    web.as_user(world.buyer, world.region)
    html = web.get("/").get_data(as_text=True)
    year = financial_year(london_date())
    label = f"{year}-{str(year + 1)[-2:]}"
    budget = card(html, f"Budget for {label}")
    if financial_year(world.start) == year:
        assert "£99,800.00 available of £100,000.00 allocated" in budget
    assert 'href="/call-offs/budgets"' in budget

    newcomer_org = make_organisation(name="New Region")
    newcomer = make_member(Role.BUYER, newcomer_org)
    commit()
    web.as_user(newcomer, newcomer_org)
    html = web.get("/").get_data(as_text=True)
    assert f"has no budget for {label}" in card(html, f"Budget for {label}")


def test_another_provider_is_told_of_nothing_that_is_not_its_own(web, world, app, monkeypatch):
    one_of_each(world, app, monkeypatch)
    other_org = make_organisation(name="Other Provider")
    other = make_member(Role.PROVIDER_ADMIN, other_org)
    commit()
    web.as_user(other, other_org)
    html = web.get("/").get_data(as_text=True)
    assert "No call-offs are waiting for your response." in card(html, "Call-offs to respond to")
    assert card(html, "Delivery to record") == "" and card(html, "Variations to decide") == ""
    listed = web.get("/call-offs/?waiting=yes").get_data(as_text=True)
    assert "CO-" not in listed and "No call-offs match these filters" in listed


def test_the_home_page_with_call_offs_stays_within_its_queries(
    web, world, app, monkeypatch, count_queries
):
    one_of_each(world, app, monkeypatch)
    both = make_member(Role.APPROVER, world.region)
    add_membership(both, world.region, Role.BUYER)
    commit()
    web.as_user(both, world.region)
    web.get("/")
    with count_queries() as counter:
        assert web.get("/").status_code == 200
    assert counter.count <= 8, counter.statements


# --- the list


def test_the_list_puts_what_waits_first_whatever_the_page(web, world, app, monkeypatch):
    from marketplace.orders.views import lists

    made = one_of_each(world, app, monkeypatch)
    newer = [place(world) for _ in range(3)]  # sent: these wait for the provider too
    for call_off in newer:
        responses.accept(world.provider_admin, call_off)  # … no longer
    commit()
    monkeypatch.setattr(lists, "PER_PAGE", 2)
    web.as_user(world.provider_admin, world.provider)
    first_page = web.get("/call-offs/").get_data(as_text=True)
    panel = first_page.split('class="govuk-inset-text"', 1)[1].split("</div>", 1)[0]
    # The newest two fill the first page; what waits is older and is shown above it.
    assert newer[-1].reference in first_page.split("<table", 1)[1]
    assert made["sent"].reference not in first_page.split("<table", 1)[1]
    assert "2 need your organisation" in panel
    assert made["sent"].reference in panel and made["buyer_proposed"].reference in panel
    assert made["provider_proposed"].reference not in panel

    monkeypatch.setattr(lists, "WAITING_SHOWN", 1)
    panel = web.get("/call-offs/").get_data(as_text=True).split('class="govuk-inset-text"', 1)[1]
    assert "the 1 most pressing first" in panel and "See all 2 waiting" in panel

    monkeypatch.setattr(lists, "PER_PAGE", 25)
    waiting = web.get("/call-offs/?waiting=yes").get_data(as_text=True)
    table = waiting.split("<table", 1)[1]
    assert made["sent"].reference in table and made["buyer_proposed"].reference in table
    assert made["accepted"].reference not in table and newer[0].reference not in table
    assert "2 call-offs" in table
    csv = web.get("/call-offs/export.csv?waiting=yes").get_data(as_text=True)
    assert csv.count("\n") == 3

    # Any other value is no filter at all, not an error.
    everything = web.get("/call-offs/?waiting=no%27%3B").get_data(as_text=True)
    assert everything.count("/call-offs/") and f"{len(made) + 3} call-offs" in everything


def test_nothing_waiting_shows_no_panel(web, world):
    call_off = place(world)
    responses.accept(world.provider_admin, call_off)
    commit()
    web.as_user(world.provider_admin, world.provider)
    html = web.get("/call-offs/").get_data(as_text=True)
    assert "need your organisation" not in html and "needs your organisation" not in html
    assert call_off.reference in html
    assert queries.waiting_first(world.provider.id, 10) == ([], 0)
