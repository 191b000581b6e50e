"""Budget and standing-authorisation pages: forms and their errors, redirects with banners, who
may use each page, and 404 for another organisation's budget or authorisation."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from marketplace.accounts.models import OrganisationType, Role
from marketplace.core import clock
from marketplace.core.db import commit, db
from marketplace.funding import services
from marketplace.funding.models import BudgetChange
from marketplace.orders.models import Budget, FundingAuthorisation
from tests.factories import make_member, make_organisation
from tests.orders.factories import build_orders_world
from tests.pages import count, error_messages, hidden_value, main, text

YEAR = clock.financial_year(clock.london_date())


@pytest.fixture
def world(app):
    world = build_orders_world()
    commit()
    return world


def test_an_approver_sets_a_budget_and_sees_it_with_its_history(web, world):
    web.as_user(world.approver, world.region)
    home = text(web.get("/"))
    assert 'href="/budgets/new"' in home and "Standing authorisations" in home
    budgets = text(web.get("/call-offs/budgets"))
    assert 'href="/budgets/new"' in budgets and f'href="/budgets/{world.budget.id}"' in budgets
    form = web.get("/budgets/new")
    assert form.status_code == 200 and f'value="{YEAR + 2}"' in text(form)
    assert f'value="{YEAR + 3}"' not in text(form)

    answer = web.post(
        "/budgets/new",
        data={"financial_year": str(YEAR + 1), "category_id": "", "allocated": "£120,000.50"},
    )
    budget = db.session.scalar(sa.select(Budget).where(Budget.financial_year == YEAR + 1))
    assert answer.status_code == 302 and answer.location.endswith(f"/budgets/{budget.id}")
    assert budget.allocated_pence == 12_000_050
    page = web.get(answer.location)
    body = main(page)
    assert "Budget set." in text(page)
    for figure in ("£120,000.50", "£0.00"):
        assert figure in body
    assert "Raise or lower this budget" in body and "Abe Approver" in body
    # Each figure is shown as text beside its name, not as the data the page was given.
    assert "&#39;text&#39;" not in body and "'text'" not in body


@pytest.mark.parametrize(
    ("allocated", "message"),
    [
        ("", "Enter the amount of the budget"),
        ("-5", "Amount cannot be negative"),
        ("12.345", "Enter amount in pounds and pence"),
        ("lots", "Enter amount in pounds and pence"),
        ("99999999999999", "Amount must be £1,000,000,000 or less"),
    ],
)
def test_a_bad_amount_is_shown_on_the_form(web, world, allocated, message):
    web.as_user(world.approver, world.region)
    answer = web.post(
        "/budgets/new", data={"financial_year": str(YEAR + 1), "allocated": allocated}
    )
    assert answer.status_code == 422
    assert any(m.startswith(message) for m in error_messages(answer)), error_messages(answer)
    assert 'href="#allocated"' in text(answer)
    assert count(Budget) == 2


def test_a_form_with_errors_says_so_in_its_title_not_in_its_heading(web, world):
    """GOV.UK: "Error: " begins the page title; the heading stays the question's."""
    web.as_user(world.approver, world.region)
    answer = web.post("/budgets/new", data={"financial_year": str(YEAR + 1), "allocated": "x"})
    page = text(answer)
    assert re.search(r"<title>\s*Error: Set a budget", page)
    heading = re.search(r"<h1[^>]*>(.*?)</h1>", page, re.S).group(1)
    assert " ".join(heading.split()) == "Set a budget"


def test_a_year_not_offered_or_a_duplicate_is_shown_on_the_form(web, world):
    web.as_user(world.approver, world.region)
    for year in (YEAR + 3, YEAR - 1, "soon"):
        answer = web.post("/budgets/new", data={"financial_year": str(year), "allocated": "10"})
        assert answer.status_code == 422
        assert error_messages(answer) == ["Choose one of the financial years listed"]
    twice = web.post("/budgets/new", data={"financial_year": str(YEAR), "allocated": "10"})
    assert twice.status_code == 422
    assert "already has a" in error_messages(twice)[0]
    assert 'href="#financial_year"' in text(twice)
    assert count(Budget) == 2


def test_raising_a_budget_needs_a_reason_and_keeps_above_the_floor(web, world):
    world.budget.committed_pence = 300_000
    commit()
    web.as_user(world.approver, world.region)
    page = web.get(f"/budgets/{world.budget.id}/change")
    assert page.status_code == 200 and hidden_value(page, "expected") == "10000000"
    no_reason = web.post(
        f"/budgets/{world.budget.id}/change",
        data={"allocated": "150000", "reason": "", "expected": "10000000"},
    )
    assert no_reason.status_code == 422
    assert error_messages(no_reason) == ["Enter the reason for the change"]
    too_low = web.post(
        f"/budgets/{world.budget.id}/change",
        data={"allocated": "2999.99", "reason": "Cut", "expected": "10000000"},
    )
    assert too_low.status_code == 422
    assert "cannot be less than £3,000.00" in error_messages(too_low)[0]
    assert 'href="#allocated"' in text(too_low)
    raised = web.post(
        f"/budgets/{world.budget.id}/change",
        data={"allocated": "150000", "reason": "Grant from the PCC", "expected": "10000000"},
    )
    assert raised.status_code == 302
    shown = web.get(raised.location)
    assert "Budget changed." in text(shown) and "Grant from the PCC" in main(shown)
    assert db.session.get(Budget, world.budget.id).allocated_pence == 15_000_000
    # The same form again, from the allocation read before: refused, the page says why.
    stale = web.post(
        f"/budgets/{world.budget.id}/change",
        data={"allocated": "120000", "reason": "Mine", "expected": "10000000"},
    )
    assert stale.status_code == 302
    assert "Someone else changed this budget" in text(web.get(stale.location))
    assert db.session.get(Budget, world.budget.id).allocated_pence == 15_000_000
    assert count(BudgetChange) == 1


def test_buyers_read_budgets_and_others_find_nothing(web, world):
    web.as_user(world.buyer, world.region)
    assert web.get(f"/budgets/{world.budget.id}").status_code == 200
    assert "Raise or lower" not in text(web.get(f"/budgets/{world.budget.id}"))
    assert web.get("/budgets/new").status_code == 403
    assert web.get(f"/budgets/{world.budget.id}/change").status_code == 403
    assert web.post("/budgets/new", data={"financial_year": str(YEAR + 1)}).status_code == 403
    # Another organisation's approver: the budget is not found.
    web.as_user(world.pcc_approver, world.pcc)
    assert web.get(f"/budgets/{world.budget.id}").status_code == 404
    assert web.get(f"/budgets/{world.budget.id}/change").status_code == 404
    assert web.post(f"/budgets/{world.budget.id}/change", data={}).status_code == 404
    provider = make_member(Role.PROVIDER_ADMIN, world.provider)
    commit()
    web.as_user(provider, world.provider)
    assert web.get(f"/budgets/{world.budget.id}").status_code == 403
    assert web.get("/budgets/all").status_code == 403


def test_the_authority_sees_every_budget_filtered_and_paginated(web, world):
    authority = make_organisation(OrganisationType.AUTHORITY, name="HMPPS")
    admin = make_member(Role.AUTHORITY_ADMIN, authority)
    commit()
    web.as_user(admin, authority)
    assert 'href="/budgets/all"' in text(web.get("/"))
    every = web.get("/budgets/all")
    assert every.status_code == 200 and "2 budgets found" in text(every)
    assert "North East Probation" in main(every) and "Durham PCC" in main(every)
    only = web.get(f"/budgets/all?organisation={world.pcc.id}&year={YEAR}")
    table = main(only).split("<table", 1)[1]
    assert "1 budget found" in text(only) and "North East Probation" not in table
    assert web.get("/budgets/all?organisation=nonsense").status_code == 400
    shown = web.get(f"/budgets/{world.budget.id}")
    assert shown.status_code == 200 and "Raise or lower" not in text(shown)
    assert web.get(f"/budgets/{world.budget.id}/change").status_code == 403


def test_a_pcc_approver_sets_up_changes_and_revokes_an_authorisation(web, world):
    web.as_user(world.pcc_approver, world.pcc)
    home = text(web.get("/"))
    assert 'href="/funding-authorisations"' in home
    assert "Set up a standing authorisation" in text(web.get("/funding-authorisations"))
    form = web.get("/funding-authorisations/new")
    assert world.region.name in text(form)
    missing = web.post("/funding-authorisations/new", data={"lead_buyer_id": str(world.region.id)})
    assert missing.status_code == 422 and len(error_messages(missing)) == 3
    too_much = web.post(
        "/funding-authorisations/new",
        data={
            "lead_buyer_id": str(world.region.id),
            "financial_year": str(YEAR),
            "per_call_off": "5000",
            "annual": "1000",
        },
    )
    assert too_much.status_code == 422
    assert error_messages(too_much) == [
        "The limit per call-off cannot be more than the total for the year"
    ]
    itself = web.post(
        "/funding-authorisations/new",
        data={
            "lead_buyer_id": str(world.pcc.id),
            "financial_year": str(YEAR),
            "per_call_off": "500",
            "annual": "1000",
        },
    )
    assert itself.status_code == 422
    created = web.post(
        "/funding-authorisations/new",
        data={
            "lead_buyer_id": str(world.region.id),
            "financial_year": str(YEAR),
            "per_call_off": "500",
            "annual": "2,000",
        },
    )
    given = db.session.scalar(sa.select(FundingAuthorisation))
    assert created.status_code == 302 and created.location.endswith(
        f"/funding-authorisations/{given.id}"
    )
    page = web.get(created.location)
    assert "Standing authorisation set up." in text(page) and "£2,000.00" in main(page)
    changed = web.post(
        f"/funding-authorisations/{given.id}/change",
        data={"per_call_off": "600", "annual": "3000", "reason": ""},
    )
    assert error_messages(changed) == ["Enter the reason for the change"]
    changed = web.post(
        f"/funding-authorisations/{given.id}/change",
        data={"per_call_off": "600", "annual": "3000", "reason": "More co-funding"},
    )
    assert changed.status_code == 302
    assert db.session.get(FundingAuthorisation, given.id).annual_limit_pence == 300_000
    revoked = web.post(
        f"/funding-authorisations/{given.id}/revoke", data={"reason": "Budget frozen"}
    )
    assert revoked.status_code == 302 and "Revoked on" in main(web.get(revoked.location))
    assert web.get(f"/funding-authorisations/{given.id}/change").status_code == 403

    # The lead buyer sees what it holds; nobody else finds it.
    web.as_user(world.buyer, world.region)
    held = text(web.get("/funding-authorisations"))
    assert "Held by North East Probation" in held and "Durham PCC" in held
    assert web.get(f"/funding-authorisations/{given.id}").status_code == 200
    assert web.get("/funding-authorisations/new").status_code == 403
    other = make_organisation(OrganisationType.PCC, name="Cleveland PCC")
    stranger = make_member(Role.APPROVER, other)
    commit()
    web.as_user(stranger, other)
    assert web.get(f"/funding-authorisations/{given.id}").status_code == 404
    assert web.post(f"/funding-authorisations/{given.id}/revoke", data={}).status_code == 404


def test_a_new_commissioning_organisation_sets_its_budgets_through_its_pages(web, world):
    """No demo data: an organisation the authority has just made, with one approver."""
    new = make_organisation(OrganisationType.OTHER_COMMISSIONER, name="HMP Example")
    approver = make_member(Role.APPROVER, new)
    commit()
    web.as_user(approver, new)
    assert "no budget for" in text(web.get("/"))
    assert "Set your budget for the year" in text(web.get("/call-offs/budgets"))
    for year in (YEAR, YEAR + 1):
        answer = web.post("/budgets/new", data={"financial_year": str(year), "allocated": "50000"})
        assert answer.status_code == 302
    budgets = db.session.scalars(
        sa.select(Budget).where(Budget.organisation_id == new.id).order_by(Budget.financial_year)
    ).all()
    assert [(b.financial_year, b.allocated_pence) for b in budgets] == [
        (YEAR, 5_000_000),
        (YEAR + 1, 5_000_000),
    ]
    assert "£50,000.00 available of £50,000.00" in text(web.get("/"))
    assert services.open_years()[0] == YEAR


def test_the_budgets_page_is_the_one_current_item_of_the_navigation(web, world):
    web.as_user(world.approver, world.region)
    page = text(web.get("/call-offs/budgets"))
    nav = page.split('class="govuk-service-navigation__list"', 1)[1].split("</ul>", 1)[0]
    current = re.findall(
        r'govuk-service-navigation__item--active">\s*<a[^>]*>\s*(?:<strong[^>]*>)?\s*([^<]+?)\s*<',
        nav,
    )
    assert current == ["Budgets"], current


def test_the_authoritys_list_of_budgets_comes_in_pages(web, world):
    from marketplace.funding.views import PER_PAGE

    for n in range(PER_PAGE):
        organisation = make_organisation(OrganisationType.PRISON, name=f"HMP {n:02d}")
        db.session.add(Budget(organisation=organisation, financial_year=YEAR, allocated_pence=n))
    authority = make_organisation(OrganisationType.AUTHORITY, name="HMPPS")
    admin = make_member(Role.AUTHORITY_ADMIN, authority)
    commit()
    web.as_user(admin, authority)
    first = text(web.get("/budgets/all"))
    assert f"{PER_PAGE + 2} budgets found" in first
    assert first.count('href="/budgets/') - first.count('href="/budgets/all') == PER_PAGE
    second = text(web.get("/budgets/all?page=2"))
    rows = second.split("<tbody", 1)[1].split("</tbody>", 1)[0]
    assert rows.count("<tr") == 2 and "page=1" in second
